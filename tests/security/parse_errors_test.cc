// A request gRPC cannot parse (invalid UTF-8 in a string field) gets
// INVALID_ARGUMENT naming the field on every kind of RPC: unary, nested in
// an Apply, server-streaming (Trace) and the Subscribe stream's Hello —
// and changes nothing (server/parse_errors.h).
#include "server/parse_errors.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ila/v1/diagnostics.grpc.pb.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "ila/v1/stream.grpc.pb.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace ila::server {
namespace {

using ::testing::HasSubstr;

const std::string kBad("caf\xc3", 4);  // a truncated 2-byte sequence

TEST(ParseErrors, FieldFromProtobufsLogLine) {
  EXPECT_EQ(Utf8ErrorField("String field 'ila.v1.RegisterTaskRequest.task' "
                           "contains invalid UTF-8 data when parsing a "
                           "protocol buffer. Use the 'bytes' type if you "
                           "intend to send raw bytes. "),
            "ila.v1.RegisterTaskRequest.task");
  EXPECT_EQ(Utf8ErrorField("String field 'a.B.c' contains invalid UTF-8 data "
                           "when serializing a protocol buffer."),
            "")
      << "the sender's side is not a parse error";
  EXPECT_EQ(Utf8ErrorField("something else"), "");
  EXPECT_EQ(Utf8ErrorField("String field 'unterminated"), "");
  EXPECT_THAT(ParseErrorMessage("ila.v1.RegisterTaskRequest.task"),
              HasSubstr("task: not valid UTF-8 (field "
                        "ila.v1.RegisterTaskRequest.task"));
  EXPECT_THAT(ParseErrorMessage(""), HasSubstr("not a valid protobuf"));
}

class ParseErrorServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.store.path = dir_.path() + "/db";
    o.store.sync_mode = storage::SyncMode::kNone;
    auto s = IlaServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    channel_ = grpc::CreateChannel(absl::StrCat("127.0.0.1:", server_->port()),
                                   grpc::InsecureChannelCredentials());
  }
  static void ExpectNamed(const grpc::Status& s, const std::string& field) {
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(absl::StrCat("(field ", field)));
  }
  testing::TempDir dir_;
  std::unique_ptr<IlaServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ParseErrorServerTest, EveryKindOfCallNamesTheField) {
  auto mapping = v1::MappingService::NewStub(channel_);
  {
    v1::RegisterTaskRequest r;
    r.set_task("web/1");
    r.set_locator(kBad);
    v1::RegisterTaskResponse resp;
    grpc::ClientContext ctx;
    ExpectNamed(mapping->RegisterTask(&ctx, r, &resp),
                "ila.v1.RegisterTaskRequest.locator");
  }
  {
    v1::ApplyRequest a;
    auto* ok = a.add_operations()->mutable_register_();
    ok->set_task("web/2");
    ok->set_locator("2001:db8:1::");
    a.add_operations()->mutable_unregister()->set_task(kBad);
    v1::ApplyResponse resp;
    grpc::ClientContext ctx;
    ExpectNamed(mapping->Apply(&ctx, a, &resp),
                "ila.v1.UnregisterTaskRequest.task");
  }
  {
    auto diag = v1::Diagnostics::NewStub(channel_);
    v1::TraceRequest t;
    t.set_target(kBad);
    grpc::ClientContext ctx;
    auto reader = diag->Trace(&ctx, t);
    v1::TraceEvent e;
    EXPECT_FALSE(reader->Read(&e));
    ExpectNamed(reader->Finish(), "ila.v1.TraceRequest.target");
  }
  {
    auto streams = v1::MappingStream::NewStub(channel_);
    grpc::ClientContext ctx;
    auto stream = streams->Subscribe(&ctx);
    v1::SubscribeRequest hello;
    hello.mutable_hello()->set_node(kBad);
    hello.mutable_hello()->set_role(v1::NODE_ROLE_OBSERVER);
    stream->Write(hello);
    v1::SubscribeResponse resp;
    EXPECT_FALSE(stream->Read(&resp));
    ExpectNamed(stream->Finish(), "ila.v1.Hello.node");
  }
  // A good request on the same server still works; nothing was written
  // before it.
  v1::RegisterTaskRequest r;
  r.set_task("web/1");
  r.set_locator("2001:db8:1::");
  v1::RegisterTaskResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(mapping->RegisterTask(&ctx, r, &resp).ok());
  EXPECT_EQ(resp.revision(), 1);
}

}  // namespace
}  // namespace ila::server
