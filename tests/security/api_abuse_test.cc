// API abuse (docs/security.md): thousands of malformed and boundary
// requests mixed with valid ones, from a fixed seed. Every malformed one
// gets a definite error (never OK, UNKNOWN or INTERNAL; INVALID_ARGUMENT
// names the field), the server keeps serving, and afterwards the database
// holds exactly what the acknowledged requests made it.
#include <grpcpp/grpcpp.h>

#include <map>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/address.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace ila::server {
namespace {

using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;

struct Bad {
  const char* what;
  v1::RegisterTaskRequest req;
  const char* field;  // named in the INVALID_ARGUMENT message ("" = any code)
};

std::vector<Bad> BadRegistrations(int n) {
  auto reg = [&](std::string task, std::string locator) {
    v1::RegisterTaskRequest r;
    r.set_task(std::move(task));
    r.set_locator(std::move(locator));
    return r;
  };
  std::vector<Bad> out;
  out.push_back({"empty task", reg("", "2001:db8:1::"), "task"});
  out.push_back(
      {"huge task", reg(std::string(100000, 'a'), "2001:db8:1::"), "task"});
  out.push_back(
      {"254-byte task", reg(std::string(254, 'a'), "2001:db8:1::"), "task"});
  out.push_back({"task with a space", reg("a b", "2001:db8:1::"), "task"});
  out.push_back(
      {"task with NUL", reg(std::string("a\0b", 3), "2001:db8:1::"), "task"});
  out.push_back({"no locator", reg(absl::StrCat("x", n), ""), "locator"});
  out.push_back(
      {"zero locator", reg(absl::StrCat("x", n), "0:0:0:0"), "locator"});
  out.push_back({"bad locator", reg(absl::StrCat("x", n), "zz"), "locator"});
  out.push_back({"huge locator",
                 reg(absl::StrCat("x", n), std::string(50000, '1')),
                 "locator"});
  out.push_back({"locator of 5 groups", reg(absl::StrCat("x", n), "1:2:3:4:5"),
                 "locator"});
  auto r = reg(absl::StrCat("x", n), "2001:db8:1::");
  r.set_checksum_mode(static_cast<v1::ChecksumMode>(99));
  out.push_back({"checksum mode 99", r, "checksum_mode"});
  r = reg(absl::StrCat("x", n), "2001:db8:1::");
  r.set_checksum_mode(static_cast<v1::ChecksumMode>(-1));
  out.push_back({"checksum mode -1", r, "checksum_mode"});
  r = reg(absl::StrCat("x", n), "2001:db8:1::");
  r.set_identifier("ffff:ffff:ffff:ffff:ffff");
  out.push_back({"identifier of 5 groups", r, "identifier"});
  r = reg(absl::StrCat("x", n), "2001:db8:1::");
  r.set_sir_prefix("not a prefix");
  out.push_back({"bad SIR prefix", r, "sir_prefix"});
  return out;
}

TEST(ApiAbuse, MalformedRequestsGetErrorsAndChangeNothing) {
  testing::TempDir dir;
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.store.path = dir.Sub("db");
  o.store.sync_mode = storage::SyncMode::kNone;
  o.max_apply_operations = 100;
  auto srv = IlaServer::Start(o);
  ASSERT_TRUE(srv.ok()) << srv.status();
  auto stub = v1::MappingService::NewStub(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", (*srv)->port()),
                          grpc::InsecureChannelCredentials()));
  auto ctx = [] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::seconds(10));
    return c;
  };
  auto definite = [](const grpc::Status& s, const std::string& what) {
    EXPECT_FALSE(s.ok()) << what << " was accepted";
    EXPECT_THAT(s.error_code(), Not(AnyOf(grpc::StatusCode::UNKNOWN,
                                          grpc::StatusCode::INTERNAL)))
        << what << ": " << s.error_message();
    EXPECT_FALSE(s.error_message().empty()) << what;
  };

  std::map<std::string, uint64_t> model;  // task -> locator (acknowledged)
  auto loc = [](const std::string& text) { return ParseLocator(text)->value; };
  std::mt19937 rng(20261205);
  int valid = 0, refused = 0;
  for (int n = 0; n < 3000; ++n) {
    const int kind = static_cast<int>(rng() % 6);
    if (kind == 0) {  // valid registration
      v1::RegisterTaskRequest r;
      r.set_task(absl::StrCat("ok/", n));
      r.set_locator(absl::StrCat("2001:db8:", rng() % 16 + 1, "::"));
      v1::RegisterTaskResponse resp;
      grpc::Status s = stub->RegisterTask(ctx().get(), r, &resp);
      ASSERT_TRUE(s.ok()) << s.error_message();
      model[r.task()] = loc(r.locator());
      ++valid;
    } else if (kind == 1) {  // a malformed registration
      auto bads = BadRegistrations(n);
      const Bad& b = bads[rng() % bads.size()];
      v1::RegisterTaskResponse resp;
      grpc::Status s = stub->RegisterTask(ctx().get(), b.req, &resp);
      definite(s, b.what);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << b.what;
      EXPECT_THAT(s.error_message(), HasSubstr(b.field)) << b.what;
      ++refused;
    } else if (kind == 2) {  // moves: of unknown tasks, to bad locators,
                             // with a stale expected revision
      v1::MoveTaskRequest m;
      const int sub = static_cast<int>(rng() % 3);
      m.set_task(sub == 0 || model.empty() ? absl::StrCat("nobody/", n)
                                           : model.begin()->first);
      m.set_locator(sub == 1 ? "1:2:3" : "2001:db8:99::");
      if (sub == 2) m.set_expected_mod_revision(1000000000);
      v1::MoveTaskResponse resp;
      grpc::Status s = stub->MoveTask(ctx().get(), m, &resp);
      if (s.ok()) {
        model[m.task()] = loc(m.locator());  // only when nothing was wrong
        ++valid;
      } else {
        definite(s, "bad move");
        ++refused;
      }
    } else if (kind == 3) {  // Apply: duplicates, too many, empty, mixed
      v1::ApplyRequest a;
      const int sub = static_cast<int>(rng() % 4);
      const std::string task = absl::StrCat("apply/", n);
      if (sub == 0) {  // the same task registered at two locators
        auto* r1 = a.add_operations()->mutable_register_();
        r1->set_task(task);
        r1->set_locator("2001:db8:1::");
        auto* r2 = a.add_operations()->mutable_register_();
        r2->set_task(task);
        r2->set_locator("2001:db8:2::");
      } else if (sub == 1) {  // over --max-apply-operations
        for (int i = 0; i < 101; ++i) {
          auto* r = a.add_operations()->mutable_register_();
          r->set_task(absl::StrCat(task, "/", i));
          r->set_locator("2001:db8:1::");
        }
      } else if (sub == 2) {  // an empty operation among valid ones
        auto* r = a.add_operations()->mutable_register_();
        r->set_task(task);
        r->set_locator("2001:db8:1::");
        a.add_operations();
      } else {  // a valid one, then one of a bad kind: all or nothing
        auto* r = a.add_operations()->mutable_register_();
        r->set_task(task);
        r->set_locator("2001:db8:1::");
        auto bads = BadRegistrations(n);
        *a.add_operations()->mutable_register_() =
            bads[rng() % bads.size()].req;
      }
      v1::ApplyResponse resp;
      grpc::Status s = stub->Apply(ctx().get(), a, &resp);
      definite(s, absl::StrCat("Apply case ", sub));
      ++refused;
    } else if (kind == 4) {  // unregister unknown, empty, huge
      v1::UnregisterTaskRequest u;
      const int sub = static_cast<int>(rng() % 3);
      u.set_task(sub == 0   ? absl::StrCat("nobody/", n)
                 : sub == 1 ? ""
                            : std::string(300000, 'z'));
      v1::UnregisterTaskResponse resp;
      definite(stub->UnregisterTask(ctx().get(), u, &resp), "bad unregister");
      ++refused;
    } else {  // lookups and lists with bad keys and page tokens
      v1::ListRequest l;
      l.set_page_token("garbage");
      v1::ListResponse resp;
      definite(stub->List(ctx().get(), l, &resp), "bad page token");
      // Invalid UTF-8 in a string field fails protobuf parsing inside gRPC,
      // before any handler: INVALID_ARGUMENT naming the field
      // (server/parse_errors.h), nothing written.
      v1::RegisterTaskRequest r;
      r.set_task(std::string("caf\xc3", 4));
      r.set_locator("2001:db8:1::");
      v1::RegisterTaskResponse rr;
      grpc::Status s = stub->RegisterTask(ctx().get(), r, &rr);
      EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
          << s.error_message();
      EXPECT_THAT(s.error_message(),
                  HasSubstr("task: not valid UTF-8 (field "
                            "ila.v1.RegisterTaskRequest.task"));
      v1::LookupRequest lk;
      lk.set_identifier("not-an-identifier");
      v1::LookupResponse lr;
      definite(stub->Lookup(ctx().get(), lk, &lr), "bad lookup");
      ++refused;
    }
  }
  EXPECT_GT(valid, 300);
  EXPECT_GT(refused, 2000);

  // The database is exactly the model: the same tasks at the same locators.
  std::map<std::string, uint64_t> db;
  std::string token;
  for (int page = 0; page < 100; ++page) {
    v1::ListRequest l;
    l.set_page_size(10000);
    l.set_page_token(token);
    v1::ListResponse resp;
    grpc::Status s = stub->List(ctx().get(), l, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    for (const auto& m : resp.mappings()) db[m.task()] = m.locator();
    token = resp.next_page_token();
    if (token.empty()) break;
  }
  EXPECT_EQ(db, model);
  (*srv)->Shutdown();
}

}  // namespace
}  // namespace ila::server
