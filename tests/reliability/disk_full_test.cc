// Disk full (docs/reliability.md): ila-server's data directory on a small
// tmpfs that the test fills. Writes then fail with a clear error and are not
// acknowledged; reads and streams go on; once space is freed, writes succeed
// again with contiguous revisions; after a restart exactly the acknowledged
// writes are there. Needs root (mount); skips otherwise.
#include <grpcpp/grpcpp.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/subscriber.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ila/v1/mapping.grpc.pb.h"
#include "server/server.h"
#include "tests/testing/temp_dir.h"

namespace ila::server {
namespace {

using ::testing::HasSubstr;

class DiskFullTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) {
      GTEST_SKIP() << "needs root: the test mounts a small tmpfs for the "
                      "data directory (CI runs it as root)";
    }
    mnt_ = dir_.Sub("mnt");
    std::filesystem::create_directories(mnt_);
    ASSERT_EQ(mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=48m"), 0)
        << strerror(errno);
    mounted_ = true;
  }
  void TearDown() override {
    server_.reset();
    if (mounted_) umount2(mnt_.c_str(), MNT_DETACH);
  }

  void Start() {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.store.path = mnt_ + "/db";
    auto s = IlaServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = *std::move(s);
    address_ = absl::StrCat("127.0.0.1:", server_->port());
    stub_ = v1::MappingService::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }

  // One Apply of 500 registrations with long names (~120 KB).
  grpc::Status Batch(int n, v1::ApplyResponse* resp) {
    v1::ApplyRequest req;
    for (int i = 0; i < 500; ++i) {
      auto* r = req.add_operations()->mutable_register_();
      r->set_task(absl::StrCat("batch", n, "/", i, "/", std::string(200, 'x')));
      r->set_locator("2001:db8:1::");
    }
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
    return stub_->Apply(&ctx, req, resp);
  }

  int64_t Lookup(const std::string& task) {
    v1::LookupRequest req;
    req.set_task(task);
    v1::LookupResponse resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->Lookup(&ctx, req, &resp);
    return s.ok() ? resp.mapping().mod_revision() : -s.error_code();
  }

  testing::TempDir dir_;
  std::string mnt_;
  bool mounted_ = false;
  std::unique_ptr<IlaServer> server_;
  std::string address_;
  std::unique_ptr<v1::MappingService::Stub> stub_;
};

TEST_F(DiskFullTest, WritesFailClearlyAndResumeWhenSpaceIsFreed) {
  Start();
  client::SubscriberOptions so;
  so.servers = {address_};
  so.node = "router-1";
  client::StreamSubscriber sub(so, nullptr);
  sub.Start();

  // Fill the filesystem but for 64 KiB.
  struct statvfs vfs {};
  ASSERT_EQ(statvfs(mnt_.c_str(), &vfs), 0);
  const uint64_t free_bytes = uint64_t{vfs.f_bavail} * vfs.f_frsize;
  const std::string filler = mnt_ + "/filler";
  {
    std::ofstream f(filler, std::ios::binary);
    std::string block(1 << 20, '\0');
    uint64_t left = free_bytes > (64 << 10) ? free_bytes - (64 << 10) : 0;
    while (left > 0 && f) {
      const size_t n = std::min<uint64_t>(left, block.size());
      f.write(block.data(), static_cast<std::streamsize>(n));
      left -= n;
    }
  }
  int64_t acked = 0;
  int failed_batch = -1;
  grpc::Status failure;
  for (int n = 0; n < 400 && failed_batch < 0; ++n) {
    v1::ApplyResponse resp;
    grpc::Status s = Batch(n, &resp);
    if (s.ok()) {
      acked = resp.revision();
    } else {
      failed_batch = n;
      failure = s;
    }
  }
  ASSERT_GE(failed_batch, 0) << "the disk never filled";
  EXPECT_EQ(failure.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(failure.error_message(), HasSubstr("No space left on device"));
  EXPECT_THAT(failure.error_message(),
              HasSubstr("nothing of it was committed"));
  // Later writes fail too, saying why; reads go on; nothing of the failed
  // batch exists; the stream has every acknowledged revision.
  v1::ApplyResponse resp;
  grpc::Status again = Batch(failed_batch, &resp);
  EXPECT_EQ(again.error_code(), grpc::StatusCode::UNAVAILABLE);
  ASSERT_GT(acked, 0) << "not even one batch fitted";
  EXPECT_GT(Lookup(absl::StrCat("batch0/0/", std::string(200, 'x'))), 0);
  EXPECT_EQ(
      Lookup(absl::StrCat("batch", failed_batch, "/0/", std::string(200, 'x'))),
      -grpc::StatusCode::NOT_FOUND);
  EXPECT_TRUE(sub.WaitForRevision(acked, absl::Seconds(30)));

  // Space back: writes work again, with the next revision.
  ASSERT_TRUE(std::filesystem::remove(filler));
  // RocksDB recovers from a full disk in the background: writes fail
  // (UNAVAILABLE, retryable) until it has; bounded retries, as a client's.
  grpc::Status recovered;
  for (int i = 0; i < 300; ++i) {
    recovered = Batch(failed_batch, &resp);
    if (recovered.ok()) break;
    ASSERT_EQ(recovered.error_code(), grpc::StatusCode::UNAVAILABLE)
        << recovered.error_message();
    absl::SleepFor(absl::Milliseconds(100));  // a client's retry backoff
  }
  ASSERT_TRUE(recovered.ok()) << recovered.error_message();
  EXPECT_EQ(resp.revision(), acked + 1);
  EXPECT_TRUE(sub.WaitForRevision(acked + 1, absl::Seconds(30)));
  sub.Stop();

  // After a restart: exactly the acknowledged writes.
  server_.reset();
  Start();
  auto st = server_->store()->Status();
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->revision, acked + 1);
  EXPECT_EQ(st->mapping_count, (failed_batch + 1) * 500);
}

}  // namespace
}  // namespace ila::server
