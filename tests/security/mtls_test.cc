// mTLS and roles (docs/security.md): certificates made by
// deploy/make-test-certs.sh, a TLS ila-server in-process, and every RPC kind
// called with every role's certificate, with none, with a certificate
// without a role and with one from another CA. Also the plaintext refusal
// on non-loopback addresses. Roles and URIs are checked without gRPC too.
#include <grpcpp/grpcpp.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "client/ila_client.h"
#include "common/tls.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ila/v1/diagnostics.grpc.pb.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "ila/v1/stream.grpc.pb.h"
#include "server/auth.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace ila::server {
namespace {

using ::testing::HasSubstr;

TEST(Identity, RoleAndLocatorsComeFromSanUris) {
  auto id = IdentityFromUris(
      {"spiffe://x/y", "ila://role/host", "ila://locator/2001:db8:1:0"});
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(id->role, Role::kHost);
  ASSERT_EQ(id->locators.size(), 1u);
  EXPECT_EQ(FormatLocator(id->locators[0]), "2001:db8:1:0");

  struct Bad {
    std::vector<std::string> uris;
    const char* says;
  };
  for (const Bad& b : std::vector<Bad>{
           {{}, "no role URI"},
           {{"ila://role/root"}, "\"ila://role/root\" is not scheduler"},
           {{"ila://role/admin", "ila://role/host"}, "more than one role"},
           {{"ila://role/host"}, "names none"},
           {{"ila://role/host", "ila://locator/zz"}, "ila://locator/zz"},
       }) {
    auto r = IdentityFromUris(b.uris);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
    EXPECT_THAT(r.status().message(), HasSubstr(b.says));
  }
}

TEST(Identity, WhatEachRoleMayDo) {
  const Action all[] = {Action::kWrite, Action::kRead, Action::kSubscribe,
                        Action::kDiagnose};
  auto allowed = [&](Role r) {
    std::string s;
    for (Action a : all) s += RoleAllows(r, a) ? "1" : "0";
    return s;
  };
  // write, read, subscribe, diagnose
  EXPECT_EQ(allowed(Role::kScheduler), "1100");
  EXPECT_EQ(allowed(Role::kRouter), "0010");
  EXPECT_EQ(allowed(Role::kHost), "0010");
  EXPECT_EQ(allowed(Role::kOperator), "0101");
  EXPECT_EQ(allowed(Role::kAdmin), "1111");
}

TEST(Identity, AHostSubscribesOnlyToItsOwnLocators) {
  auto host = IdentityFromUris({"ila://role/host", "ila://locator/1:2:3:4"});
  ASSERT_TRUE(host.ok());
  const Locator mine = *ParseLocator("1:2:3:4");
  const Locator other = *ParseLocator("1:2:3:5");
  EXPECT_TRUE(CheckSubscription(*host, {mine}).ok());
  EXPECT_EQ(CheckSubscription(*host, {}).code(),
            absl::StatusCode::kPermissionDenied);
  absl::Status s = CheckSubscription(*host, {mine, other});
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("1:2:3:5"));
  Identity router;
  router.role = Role::kRouter;
  EXPECT_TRUE(CheckSubscription(router, {}).ok());
}

class MtlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new std::string(
        absl::StrCat(::testing::TempDir(), "mtls-certs-", getpid()));
    const std::string cmd =
        absl::StrCat(ILA_SOURCE_DIR, "/deploy/make-test-certs.sh ", *certs_,
                     " --host-locator 2001:db8:1:0 > /dev/null");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  static void TearDownTestSuite() {
    (void)std::system(absl::StrCat("rm -rf ", *certs_).c_str());
    delete certs_;
  }

  void SetUp() override {
    ServerOptions o;
    o.listen = "localhost:0";
    o.store.path = dir_.Sub("db");
    o.store.sync_mode = storage::SyncMode::kNone;
    o.tls = Files("server");
    auto s = IlaServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    address_ = absl::StrCat("localhost:", server_->port());
  }

  static TlsFiles Files(const std::string& who, const std::string& ca = "ca") {
    return TlsFiles{absl::StrCat(*certs_, "/", ca, ".pem"),
                    absl::StrCat(*certs_, "/", who, ".pem"),
                    absl::StrCat(*certs_, "/", who, ".key")};
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& who) {
    auto ch = client::Dial(address_, Files(who));
    EXPECT_TRUE(ch.ok()) << ch.status();
    return ch.ok() ? *ch : nullptr;
  }

  // A TLS channel that trusts the server but presents no certificate.
  std::shared_ptr<grpc::Channel> NoCertificate() {
    auto pem = LoadTlsFiles(Files("admin"));
    EXPECT_TRUE(pem.ok());
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = pem->ca;
    return grpc::CreateChannel(address_, grpc::SslCredentials(o));
  }

  static std::unique_ptr<grpc::ClientContext> Ctx() {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(10));
    return ctx;
  }

  // One RPC of each action; the status codes in the order write, read,
  // subscribe, diagnose.
  std::vector<grpc::StatusCode> Try(
      const std::shared_ptr<grpc::Channel>& ch, int n,
      const std::string& locator = "2001:db8:1:0") {
    std::vector<grpc::StatusCode> codes;
    auto mapping = v1::MappingService::NewStub(ch);
    {
      v1::RegisterTaskRequest req;
      req.set_task(absl::StrCat("t", n));
      req.set_locator("2001:db8:1:0");
      v1::RegisterTaskResponse resp;
      codes.push_back(
          mapping->RegisterTask(Ctx().get(), req, &resp).error_code());
    }
    {
      v1::StatusResponse resp;
      codes.push_back(mapping->Status(Ctx().get(), {}, &resp).error_code());
    }
    {
      auto ctx = Ctx();
      auto stream = v1::MappingStream::NewStub(ch)->Subscribe(ctx.get());
      v1::SubscribeRequest hello;
      hello.mutable_hello()->set_node(absl::StrCat("n", n));
      hello.mutable_hello()->set_role(v1::NODE_ROLE_HOST);
      hello.mutable_hello()->mutable_filter()->add_locators(locator);
      stream->Write(hello);
      v1::SubscribeResponse resp;
      const bool got = stream->Read(&resp);
      if (got) ctx->TryCancel();  // served: enough
      grpc::Status s = stream->Finish();
      codes.push_back(got ? grpc::StatusCode::OK : s.error_code());
      if (!got) last_message_ = s.error_message();
    }
    {
      v1::ListSubscribersResponse resp;
      codes.push_back(v1::Diagnostics::NewStub(ch)
                          ->ListSubscribers(Ctx().get(), {}, &resp)
                          .error_code());
    }
    return codes;
  }

  static std::string* certs_;
  testing::TempDir dir_;
  std::unique_ptr<IlaServer> server_;
  std::string address_;
  std::string last_message_;
};

std::string* MtlsTest::certs_ = nullptr;

constexpr grpc::StatusCode kOk = grpc::StatusCode::OK;
constexpr grpc::StatusCode kDenied = grpc::StatusCode::PERMISSION_DENIED;
constexpr grpc::StatusCode kUnauth = grpc::StatusCode::UNAUTHENTICATED;
constexpr grpc::StatusCode kUnavailable = grpc::StatusCode::UNAVAILABLE;
using Codes = std::vector<grpc::StatusCode>;

TEST_F(MtlsTest, EveryRpcChecksTheRoleOfTheCertificate) {
  EXPECT_EQ(Try(Channel("scheduler"), 1), (Codes{kOk, kOk, kDenied, kDenied}));
  EXPECT_EQ(Try(Channel("router"), 2), (Codes{kDenied, kDenied, kOk, kDenied}));
  EXPECT_EQ(Try(Channel("host"), 3), (Codes{kDenied, kDenied, kOk, kDenied}));
  EXPECT_EQ(Try(Channel("operator"), 4), (Codes{kDenied, kOk, kDenied, kOk}));
  EXPECT_EQ(Try(Channel("admin"), 5), (Codes{kOk, kOk, kOk, kOk}));
  // Only the scheduler's and the admin's writes landed.
  auto mapping = v1::MappingService::NewStub(Channel("admin"));
  v1::ListResponse list;
  ASSERT_TRUE(mapping->List(Ctx().get(), {}, &list).ok());
  ASSERT_EQ(list.mappings_size(), 2);
  EXPECT_EQ(list.mappings(0).task(), "t1");
  EXPECT_EQ(list.mappings(1).task(), "t5");
}

TEST_F(MtlsTest, AHostMaySubscribeOnlyToItsOwnLocators) {
  EXPECT_EQ(Try(Channel("host"), 1, "2001:db8:2:0")[2], kDenied);
  EXPECT_THAT(last_message_, HasSubstr("2001:db8:2:0 is not a locator"));
  EXPECT_EQ(Try(Channel("host"), 2, "2001:db8:1:0")[2], kOk);
}

TEST_F(MtlsTest, NoValidCertificateIsUnauthenticated) {
  EXPECT_EQ(Try(NoCertificate(), 1),
            (Codes{kUnauth, kUnauth, kUnauth, kUnauth}));
  EXPECT_EQ(Try(Channel("nobody"), 2),
            (Codes{kUnauth, kUnauth, kUnauth, kUnauth}));
  EXPECT_THAT(last_message_, HasSubstr("no role URI"));
  // Another CA's certificate fails the handshake: no RPC runs at all.
  auto rogue = client::Dial(address_, Files("rogue", "ca"));
  ASSERT_TRUE(rogue.ok());
  EXPECT_EQ(Try(*rogue, 3),
            (Codes{kUnavailable, kUnavailable, kUnavailable, kUnavailable}));
  // Plaintext to a TLS listener: no RPC either.
  EXPECT_EQ(
      Try(grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()), 4),
      (Codes{kUnavailable, kUnavailable, kUnavailable, kUnavailable}));
  auto mapping = v1::MappingService::NewStub(Channel("admin"));
  v1::ListResponse list;
  ASSERT_TRUE(mapping->List(Ctx().get(), {}, &list).ok());
  EXPECT_EQ(list.mappings_size(), 0);
}

TEST_F(MtlsTest, IncompleteTlsFlagsAreNamed) {
  TlsFiles f = Files("admin");
  f.key.clear();
  auto ch = client::Dial(address_, f);
  EXPECT_EQ(ch.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ch.status().message(), HasSubstr("given: --ca --cert"));
  f = Files("admin");
  f.cert = "/nonexistent/cert.pem";
  ch = client::Dial(address_, f);
  EXPECT_THAT(ch.status().message(),
              HasSubstr("--cert: cannot read \"/nonexistent/cert.pem\""));
  f = Files("admin");
  f.key = f.cert;  // a certificate where the key should be
  ch = client::Dial(address_, f);
  EXPECT_THAT(ch.status().message(), HasSubstr("--key"));
}

TEST(Plaintext, IsRefusedOnNonLoopbackAddressesUnlessAllowed) {
  testing::TempDir dir;
  ServerOptions o;
  o.listen = "[::]:0";
  o.store.path = dir.Sub("db");
  o.store.sync_mode = storage::SyncMode::kNone;
  auto refused = IlaServer::Start(o);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("refusing plaintext gRPC on non-loopback address"));
  o.allow_plaintext = true;
  auto allowed = IlaServer::Start(o);
  ASSERT_TRUE(allowed.ok()) << allowed.status();
  (*allowed)->Shutdown();
  o.allow_plaintext = false;
  o.listen = "127.0.0.1:0";
  auto loopback = IlaServer::Start(o);
  EXPECT_TRUE(loopback.ok()) << loopback.status();
}

}  // namespace
}  // namespace ila::server
