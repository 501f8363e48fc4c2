// Component tests: the real server in-process on a loopback port 0 with a
// temporary RocksDB, driven through the generated gRPC stub.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace ila::server {
namespace {

using ::testing::HasSubstr;

class MappingServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { StartServer(); }
  void TearDown() override { server_.reset(); }

  void StartServer() {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.store.path = dir_.Sub("db");
    o.max_apply_operations = 100;
    auto s = IlaServer::Start(std::move(o));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = v1::MappingService::NewStub(channel_);
  }

  grpc::Status Register(const std::string& task, const std::string& locator,
                        v1::RegisterTaskResponse* resp,
                        const std::string& identifier = "") {
    v1::RegisterTaskRequest req;
    req.set_task(task);
    req.set_locator(locator);
    req.set_identifier(identifier);
    grpc::ClientContext ctx;
    return stub_->RegisterTask(&ctx, req, resp);
  }

  v1::StatusResponse GetStatus() {
    grpc::ClientContext ctx;
    v1::StatusResponse resp;
    EXPECT_TRUE(stub_->Status(&ctx, v1::StatusRequest(), &resp).ok());
    return resp;
  }

  testing::TempDir dir_;
  std::unique_ptr<IlaServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::MappingService::Stub> stub_;
};

TEST(ListenAddress, LoopbackAndUnixSocketsAreLocal) {
  for (const char* local : {"localhost:1", "127.0.0.1:0", "[::1]:50051",
                            "unix:/run/ila/ila.sock"}) {
    EXPECT_TRUE(IsLoopbackListenAddress(local)) << local;
  }
  for (const char* remote :
       {"0.0.0.0:50051", "[::]:1", "10.0.0.1:5", "myhost:50051"}) {
    EXPECT_FALSE(IsLoopbackListenAddress(remote)) << remote;
  }
}

// ila-server on a Unix socket: what agents in other network namespaces of
// the same machine use (the kernel VM scenarios do).
TEST(ListenAddress, ServesOnAUnixSocket) {
  testing::TempDir dir;
  ServerOptions so;
  so.listen = absl::StrCat("unix:", dir.Sub("ila.sock"));
  so.store.path = dir.Sub("db");
  auto srv = IlaServer::Start(std::move(so));
  ASSERT_TRUE(srv.ok()) << srv.status();
  auto stub = v1::MappingService::NewStub(
      grpc::CreateChannel(absl::StrCat("unix:", dir.Sub("ila.sock")),
                          grpc::InsecureChannelCredentials()));
  v1::StatusResponse resp;
  grpc::ClientContext ctx;
  EXPECT_TRUE(stub->Status(&ctx, v1::StatusRequest(), &resp).ok());
  (*srv)->Shutdown();
}

TEST_F(MappingServiceTest, RegisterReturnsIdentifierAddressAndRevision) {
  v1::RegisterTaskResponse resp;
  ASSERT_TRUE(Register("web/1", "2001:db8:100:0", &resp).ok());
  EXPECT_TRUE(resp.created());
  EXPECT_EQ(resp.revision(), 1);
  EXPECT_EQ(Identifier{resp.mapping().identifier()}.type(),
            IdentifierType::kLuid);
  EXPECT_EQ(resp.mapping().locator(), 0x20010db801000000u);
  EXPECT_EQ(resp.sir_address(),
            FormatSirAddress({SirPrefix{0xfd00000000000000},
                              Identifier{resp.mapping().identifier()}}));
  // Idempotent retry: same identifier, no new revision.
  v1::RegisterTaskResponse again;
  ASSERT_TRUE(Register("web/1", "2001:db8:100:0", &again).ok());
  EXPECT_FALSE(again.created());
  EXPECT_EQ(again.mapping().identifier(), resp.mapping().identifier());
  EXPECT_EQ(again.revision(), 1);
  // Same name elsewhere: ALREADY_EXISTS pointing at MoveTask.
  v1::RegisterTaskResponse other;
  grpc::Status s = Register("web/1", "2001:db8:200:0", &other);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_THAT(s.error_message(), HasSubstr("use MoveTask"));
}

TEST_F(MappingServiceTest, InvalidFieldsAreInvalidArgumentNamingTheField) {
  v1::RegisterTaskResponse resp;
  grpc::Status s = Register("web/1", "2001:db8:zz:0", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("locator: \"2001:db8:zz:0\""));
  s = Register("web/1", "2001:db8:100:0", &resp, "0x1");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("identifier: 0:0:0:1"));
  s = Register("", "2001:db8:100:0", &resp);
  EXPECT_THAT(s.error_message(), HasSubstr("task: task name is empty"));
  v1::LookupRequest empty;
  v1::LookupResponse lr;
  grpc::ClientContext ctx;
  s = stub_->Lookup(&ctx, empty, &lr);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(), HasSubstr("key: set one of"));
  EXPECT_EQ(GetStatus().revision(), 0);
}

TEST_F(MappingServiceTest, LookupByTaskIdentifierAndSirAddress) {
  v1::RegisterTaskResponse reg;
  ASSERT_TRUE(Register("db/7", "2001:db8:100:0", &reg, "2000:0:0:42").ok());
  EXPECT_EQ(reg.sir_address(), "fd00::2000:0:0:42");
  auto lookup = [&](auto set) {
    v1::LookupRequest req;
    set(req);
    v1::LookupResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->Lookup(&ctx, req, &resp);
    return std::make_pair(s, resp);
  };
  auto [s1, r1] = lookup([](auto& r) { r.set_task("db/7"); });
  ASSERT_TRUE(s1.ok());
  EXPECT_EQ(r1.mapping().identifier(), 0x2000000000000042u);
  auto [s2, r2] = lookup([](auto& r) { r.set_identifier("2000:0:0:42"); });
  ASSERT_TRUE(s2.ok());
  EXPECT_EQ(r2.mapping().task(), "db/7");
  auto [s3, r3] =
      lookup([](auto& r) { r.set_sir_address("fd00::2000:0:0:42"); });
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ(r3.mapping().task(), "db/7");
  auto [s4, r4] =
      lookup([](auto& r) { r.set_sir_address("fd01::2000:0:0:42"); });
  EXPECT_EQ(s4.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(s4.error_message(), HasSubstr("belongs to task \"db/7\""));
  auto [s5, r5] = lookup([](auto& r) { r.set_task("nope"); });
  EXPECT_EQ(s5.error_code(), grpc::StatusCode::NOT_FOUND);
  auto [s6, r6] = lookup([](auto& r) { r.set_sir_address("not-an-address"); });
  EXPECT_THAT(s6.error_message(), HasSubstr("sir_address: \"not-an-address\""));
}

TEST_F(MappingServiceTest, MoveWithCompareAndSwapAndUnregister) {
  v1::RegisterTaskResponse reg;
  ASSERT_TRUE(Register("web/1", "2001:db8:100:0", &reg).ok());
  v1::MoveTaskRequest mv;
  mv.set_task("web/1");
  mv.set_locator("2001:db8:200:0");
  mv.set_expected_mod_revision(5);
  v1::MoveTaskResponse mr;
  {
    grpc::ClientContext ctx;
    grpc::Status s = stub_->MoveTask(&ctx, mv, &mr);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }
  mv.set_expected_mod_revision(reg.mapping().mod_revision());
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->MoveTask(&ctx, mv, &mr).ok());
  }
  EXPECT_TRUE(mr.changed());
  EXPECT_EQ(mr.revision(), 2);
  EXPECT_EQ(mr.previous_locator(), 0x20010db801000000u);
  EXPECT_EQ(mr.mapping().locator(), 0x20010db802000000u);
  v1::UnregisterTaskRequest un;
  un.set_task("web/1");
  v1::UnregisterTaskResponse ur;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->UnregisterTask(&ctx, un, &ur).ok());
  }
  EXPECT_EQ(ur.revision(), 3);
  EXPECT_EQ(ur.mapping().task(), "web/1");
  {
    grpc::ClientContext ctx;
    EXPECT_EQ(stub_->UnregisterTask(&ctx, un, &ur).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_EQ(GetStatus().mapping_count(), 0);
}

TEST_F(MappingServiceTest, ApplyIsAtomic) {
  v1::ApplyRequest req;
  for (int i = 0; i < 10; ++i) {
    auto* r = req.add_operations()->mutable_register_();
    r->set_task("batch/" + std::to_string(i));
    r->set_locator("2001:db8:100:0");
  }
  auto* bad = req.add_operations()->mutable_unregister();
  bad->set_task("missing");
  v1::ApplyResponse resp;
  {
    grpc::ClientContext ctx;
    grpc::Status s = stub_->Apply(&ctx, req, &resp);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(s.error_message(), HasSubstr("operations[10]"));
  }
  EXPECT_EQ(GetStatus().mapping_count(), 0);
  EXPECT_EQ(GetStatus().revision(), 0);
  req.mutable_operations()->RemoveLast();
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->Apply(&ctx, req, &resp).ok());
  }
  EXPECT_EQ(resp.revision(), 1);
  ASSERT_EQ(resp.results_size(), 10);
  for (const auto& r : resp.results()) {
    EXPECT_TRUE(r.changed());
    EXPECT_EQ(r.mapping().create_revision(), 1);
  }
  // Oversized batches are refused before touching the store.
  v1::ApplyRequest big;
  for (int i = 0; i < 101; ++i) {
    auto* r = big.add_operations()->mutable_register_();
    r->set_task("big/" + std::to_string(i));
    r->set_locator("2001:db8:100:0");
  }
  grpc::ClientContext ctx;
  grpc::Status s = stub_->Apply(&ctx, big, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(),
              HasSubstr("101 operations exceed the limit of 100"));
}

TEST_F(MappingServiceTest, ListPagesFiltersAndStaysAtOneRevision) {
  v1::ApplyRequest req;
  for (int i = 0; i < 25; ++i) {
    auto* r = req.add_operations()->mutable_register_();
    r->set_task("t/" + std::to_string(i));
    r->set_locator(i % 5 == 0 ? "2001:db8:200:0" : "2001:db8:100:0");
  }
  v1::ApplyResponse ar;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->Apply(&ctx, req, &ar).ok());
  }
  v1::ListRequest lr;
  lr.set_page_size(7);
  absl::flat_hash_set<std::string> seen;
  int pages = 0;
  for (;;) {
    v1::ListResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub_->List(&ctx, lr, &resp).ok());
    EXPECT_EQ(resp.revision(), 1);
    for (const auto& m : resp.mappings()) seen.insert(m.task());
    ++pages;
    if (pages == 1) {  // a write in the middle of the list is not seen
      v1::RegisterTaskResponse rr;
      ASSERT_TRUE(Register("late", "2001:db8:100:0", &rr).ok());
    }
    if (resp.next_page_token().empty()) break;
    lr.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(seen.size(), 25u);
  v1::ListRequest filtered;
  filtered.set_locator("2001:db8:200::/64");
  v1::ListResponse fr;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->List(&ctx, filtered, &fr).ok());
  EXPECT_EQ(fr.mappings_size(), 5);
  EXPECT_EQ(fr.revision(), 2);
  v1::ListRequest forged;
  forged.set_page_token("garbage");
  grpc::ClientContext ctx2;
  EXPECT_EQ(stub_->List(&ctx2, forged, &fr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(MappingServiceTest, StatusHealthAndRestart) {
  v1::RegisterTaskResponse reg;
  ASSERT_TRUE(Register("web/1", "2001:db8:100:0", &reg).ok());
  v1::StatusResponse st = GetStatus();
  EXPECT_EQ(st.revision(), 1);
  EXPECT_EQ(st.mapping_count(), 1);
  EXPECT_EQ(st.sync_mode(), "always");
  EXPECT_FALSE(st.version().empty());

  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest hreq;
  grpc::health::v1::HealthCheckResponse hresp;
  grpc::ClientContext hctx;
  ASSERT_TRUE(health->Check(&hctx, hreq, &hresp).ok());
  EXPECT_EQ(hresp.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  server_.reset();
  StartServer();
  EXPECT_EQ(GetStatus().revision(), 1);
  v1::LookupRequest lr;
  lr.set_task("web/1");
  v1::LookupResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub_->Lookup(&ctx, lr, &resp).ok());
  EXPECT_EQ(resp.mapping().identifier(), reg.mapping().identifier());
}

// Server reflection answers list_services with our service. Debian ships no
// reflection client header, so the request is hand-encoded:
// ServerReflectionRequest{list_services: ""} = field 7, length 0.
TEST_F(MappingServiceTest, ReflectionListsTheMappingService) {
  grpc::GenericStub generic(channel_);
  grpc::CompletionQueue cq;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  auto call = generic.PrepareCall(
      &ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      &cq);
  auto await = [&](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), want);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(await(1));
  grpc::Slice slice(std::string("\x3a\x00", 2));
  grpc::ByteBuffer request(&slice, 1);
  call->Write(request, reinterpret_cast<void*>(2));
  ASSERT_TRUE(await(2));
  call->WritesDone(reinterpret_cast<void*>(3));
  ASSERT_TRUE(await(3));
  grpc::ByteBuffer response;
  call->Read(&response, reinterpret_cast<void*>(4));
  ASSERT_TRUE(await(4));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& sl : slices) {
    bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  }
  EXPECT_THAT(bytes, HasSubstr("ila.v1.MappingService"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  ASSERT_TRUE(await(5));
  EXPECT_TRUE(status.ok()) << status.error_message();
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(MappingServiceTest, ConcurrentClientsAllAcknowledgedAndDistinct) {
  constexpr int kThreads = 16, kEach = 50;
  std::vector<std::thread> threads;
  absl::Mutex mu;
  absl::flat_hash_set<int64_t> revisions;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        v1::RegisterTaskResponse r;
        grpc::Status s =
            Register(absl::StrCat("c", t, "/", i), "2001:db8:100:0", &r);
        ASSERT_TRUE(s.ok()) << s.error_message();
        absl::MutexLock l(&mu);
        EXPECT_TRUE(revisions.insert(r.revision()).second);
      }
    });
  }
  for (auto& th : threads) th.join();
  v1::StatusResponse st = GetStatus();
  EXPECT_EQ(st.revision(), kThreads * kEach);
  EXPECT_EQ(st.mapping_count(), kThreads * kEach);
}

}  // namespace
}  // namespace ila::server
