// Per-client limits (docs/security.md): request rate, concurrent streams
// and message size, each RESOURCE_EXHAUSTED naming its flag, with nothing
// written by a refused request.
#include "server/limits.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "ila/v1/stream.grpc.pb.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace ila::server {
namespace {

using ::testing::HasSubstr;

TEST(ClientLimits, TokenBucketPerClient) {
  absl::Time now = absl::FromUnixSeconds(1000);
  ClientLimitOptions o;
  o.max_requests_per_second = 5;
  o.clock = [&] { return now; };
  ClientLimits limits(o);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limits.AdmitRequest("a").ok()) << i;
  absl::Status s = limits.AdmitRequest("a");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("--max-requests-per-second"));
  EXPECT_TRUE(limits.AdmitRequest("b").ok()) << "another client's bucket";
  now += absl::Milliseconds(200);  // one token back
  EXPECT_TRUE(limits.AdmitRequest("a").ok());
  EXPECT_FALSE(limits.AdmitRequest("a").ok());
  now += absl::Seconds(100);  // never more than a second's worth
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limits.AdmitRequest("a").ok()) << i;
  EXPECT_FALSE(limits.AdmitRequest("a").ok());
}

TEST(ClientLimits, StreamsPerClient) {
  ClientLimitOptions o;
  o.max_streams_per_client = 2;
  ClientLimits limits(o);
  EXPECT_TRUE(limits.AcquireStream("a").ok());
  EXPECT_TRUE(limits.AcquireStream("a").ok());
  absl::Status s = limits.AcquireStream("a");
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("--max-streams-per-client"));
  EXPECT_TRUE(limits.AcquireStream("b").ok());
  limits.ReleaseStream("a");
  EXPECT_TRUE(limits.AcquireStream("a").ok());
}

TEST(ClientLimits, ManyClientsDoNotGrowWithoutBound) {
  absl::Time now = absl::FromUnixSeconds(1000);
  ClientLimitOptions o;
  o.max_requests_per_second = 1;
  o.max_tracked_clients = 10;
  o.clock = [&] { return now; };
  ClientLimits limits(o);
  for (int i = 0; i < 10000; ++i) {
    ASSERT_TRUE(limits.AdmitRequest(absl::StrCat("c", i)).ok()) << i;
    now += absl::Seconds(2);  // every earlier client's bucket is full again
  }
  // Forgetting is only for clients in their initial state: one that used
  // its bucket is remembered while new clients keep coming.
  ASSERT_TRUE(limits.AdmitRequest("hot").ok());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(limits.AdmitRequest(absl::StrCat("new", i)).ok());
  }
  EXPECT_FALSE(limits.AdmitRequest("hot").ok());
}

class LimitsServerTest : public ::testing::Test {
 protected:
  void Start(ClientLimitOptions limits, size_t max_message = 4 << 20) {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.store.path = dir_.Sub("db");
    o.store.sync_mode = storage::SyncMode::kNone;
    o.limits = limits;
    o.max_message_bytes = max_message;
    auto s = IlaServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
  }
  int64_t Revision() {
    v1::StatusResponse st;
    grpc::ClientContext ctx;
    EXPECT_TRUE(
        v1::MappingService::NewStub(channel_)->Status(&ctx, {}, &st).ok());
    return st.revision();
  }
  testing::TempDir dir_;
  std::unique_ptr<IlaServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(LimitsServerTest, RequestRateIsLimitedPerClient) {
  ClientLimitOptions l;
  l.max_requests_per_second = 5;
  Start(l);
  auto stub = v1::MappingService::NewStub(channel_);
  int ok = 0, exhausted = 0;
  for (int i = 0; i < 8; ++i) {
    v1::RegisterTaskRequest req;
    req.set_task(absl::StrCat("t", i));
    req.set_locator("2001:db8:1::");
    v1::RegisterTaskResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub->RegisterTask(&ctx, req, &resp);
    if (s.ok()) ++ok;
    if (s.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++exhausted;
      EXPECT_THAT(s.error_message(), HasSubstr("--max-requests-per-second"));
    }
  }
  // A second's worth (5) at once, then refused; the refused wrote nothing.
  EXPECT_GE(ok, 5);
  EXPECT_GE(exhausted, 1);
  EXPECT_EQ(ok + exhausted, 8);
  EXPECT_EQ(server_->store()->Status()->revision, ok);
}

TEST_F(LimitsServerTest, StreamsPerClientAreLimited) {
  ClientLimitOptions l;
  l.max_streams_per_client = 2;
  Start(l);
  auto streams = v1::MappingStream::NewStub(channel_);
  auto open = [&](grpc::ClientContext* ctx) {
    auto stream = streams->Subscribe(ctx);
    v1::SubscribeRequest hello;
    hello.mutable_hello()->set_node("n");
    hello.mutable_hello()->set_role(v1::NODE_ROLE_OBSERVER);
    stream->Write(hello);
    return stream;
  };
  grpc::ClientContext c1, c2, c3, c4;
  auto s1 = open(&c1);
  auto s2 = open(&c2);
  v1::SubscribeResponse resp;
  ASSERT_TRUE(s1->Read(&resp));  // both served (a snapshot begins)
  ASSERT_TRUE(s2->Read(&resp));
  auto s3 = open(&c3);
  EXPECT_FALSE(s3->Read(&resp));
  grpc::Status st = s3->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(st.error_message(), HasSubstr("--max-streams-per-client"));
  // A closed stream frees its slot.
  c1.TryCancel();
  (void)s1->Finish();
  bool served = false;
  for (int i = 0; i < 100 && !served; ++i) {  // the server sees the cancel
    grpc::ClientContext c;
    auto s = open(&c);
    served = s->Read(&resp);
    if (served) c.TryCancel();
    (void)s->Finish();
  }
  EXPECT_TRUE(served);
  c2.TryCancel();
  (void)s2->Finish();
}

TEST_F(LimitsServerTest, OversizedRequestsAreRefusedUnread) {
  Start(ClientLimitOptions{}, /*max_message=*/64 << 10);
  v1::ApplyRequest big;
  for (int i = 0; i < 3000; ++i) {
    auto* r = big.add_operations()->mutable_register_();
    r->set_task(absl::StrCat("task-with-a-long-name/", i));
    r->set_locator("2001:db8:1::");
  }
  ASSERT_GT(big.ByteSizeLong(), 64u << 10);
  v1::ApplyResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s =
      v1::MappingService::NewStub(channel_)->Apply(&ctx, big, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << s.error_message();
  EXPECT_EQ(Revision(), 0);
}

}  // namespace
}  // namespace ila::server
