#include "storage/rocksdb_store.h"

#include <algorithm>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/temp_dir.h"

namespace ila::storage {
namespace {

using ::testing::HasSubstr;

constexpr Locator kLoc1{0x20010db801000000};
constexpr Locator kLoc2{0x20010db802000000};

RegisterOp Reg(std::string task, Locator loc = kLoc1) {
  return RegisterOp{std::move(task), loc, std::nullopt, std::nullopt,
                    std::nullopt};
}

WriteRequest One(Operation op) { return WriteRequest{{std::move(op)}, false}; }

// A clock the test moves by hand.
class FakeClock {
 public:
  absl::Time Now() {
    absl::MutexLock l(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock l(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
};

class RocksDbStoreTest : public ::testing::TestWithParam<SyncMode> {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen(int64_t retained = 1000) {
    store_.reset();
    RocksDbStoreOptions o;
    o.path = dir_.Sub("db");
    o.sync_mode = GetParam();
    o.retained_revisions = retained;
    o.clock = [this] { return clock_.Now(); };
    auto s = RocksDbMappingStore::Open(std::move(o));
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = *std::move(s);
  }

  testing::TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<RocksDbMappingStore> store_;
};

INSTANTIATE_TEST_SUITE_P(SyncModes, RocksDbStoreTest,
                         ::testing::Values(SyncMode::kAlways, SyncMode::kBatch,
                                           SyncMode::kNone),
                         [](const auto& p) {
                           return std::string(SyncModeName(p.param));
                         });

TEST_P(RocksDbStoreTest, RegisterLookupAndRevisionsAdvanceByOne) {
  for (int i = 1; i <= 20; ++i) {
    auto r = store_->Commit(One(Reg("t" + std::to_string(i))));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->revision, i);
  }
  auto l = store_->LookupTask("t7");
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->mapping.create_revision, 7);
  EXPECT_EQ(l->revision, 20);
  auto by_id = store_->LookupIdentifier(l->mapping.identifier);
  ASSERT_TRUE(by_id.ok());
  EXPECT_EQ(by_id->mapping, l->mapping);
  EXPECT_EQ(store_->LookupTask("nope").status().code(),
            absl::StatusCode::kNotFound);
  auto st = store_->Status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->revision, 20);
  EXPECT_EQ(st->mapping_count, 20);
}

TEST_P(RocksDbStoreTest, StatePersistsAcrossReopen) {
  ASSERT_TRUE(store_->Commit(One(Reg("a"))).ok());
  auto b = store_->Commit(One(Reg("b")));
  ASSERT_TRUE(b.ok());
  ASSERT_TRUE(store_->Commit(One(UnregisterOp{"b", std::nullopt})).ok());
  Reopen();
  auto st = store_->Status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->revision, 3);
  EXPECT_EQ(st->mapping_count, 1);
  EXPECT_TRUE(store_->LookupTask("a").ok());
  EXPECT_FALSE(store_->LookupTask("b").ok());
  // Identifiers are never reused, even after a restart.
  auto c = store_->Commit(One(Reg("c")));
  ASSERT_TRUE(c.ok());
  EXPECT_GT(c->results[0].mapping.identifier.value,
            b->results[0].mapping.identifier.value);
  EXPECT_EQ(c->revision, 4);
}

TEST_P(RocksDbStoreTest, FailedApplyChangesNothing) {
  ASSERT_TRUE(store_->Commit(One(Reg("a"))).ok());
  WriteRequest batch{{Reg("b"), Reg("c"), MoveOp{"zz", kLoc2, std::nullopt}},
                     true};
  auto r = store_->Commit(batch);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("operations[2]"));
  EXPECT_EQ(store_->LookupTask("b").status().code(),
            absl::StatusCode::kNotFound);
  auto st = store_->Status();
  EXPECT_EQ(st->revision, 1);
  EXPECT_EQ(st->mapping_count, 1);
  auto changes = store_->ReadChanges(0, 100);
  ASSERT_TRUE(changes.ok());
  EXPECT_EQ(changes->size(), 1u);
}

TEST_P(RocksDbStoreTest, ApplyIsOneRevision) {
  WriteRequest batch{{Reg("a"), Reg("b"), Reg("c")}, true};
  auto r = store_->Commit(batch);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->revision, 1);
  auto changes = store_->ReadChanges(0, 100);
  ASSERT_TRUE(changes.ok());
  ASSERT_EQ(changes->size(), 1u);
  EXPECT_EQ((*changes)[0].revision, 1);
  EXPECT_EQ((*changes)[0].changes.size(), 3u);
}

TEST_P(RocksDbStoreTest, CompareAndSwapAndIdempotentRegister) {
  auto a = store_->Commit(One(Reg("a")));
  ASSERT_TRUE(a.ok());
  auto again = store_->Commit(One(Reg("a")));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->results[0].changed);
  EXPECT_EQ(again->revision, 1);
  EXPECT_EQ(again->results[0].mapping.identifier,
            a->results[0].mapping.identifier);
  EXPECT_EQ(store_->Commit(One(MoveOp{"a", kLoc2, 7})).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto moved = store_->Commit(One(MoveOp{"a", kLoc2, 1}));
  ASSERT_TRUE(moved.ok());
  EXPECT_EQ(moved->revision, 2);
  EXPECT_EQ(store_->LookupTask("a")->mapping.locator, kLoc2);
}

TEST_P(RocksDbStoreTest, ChangeLogHoldsBeforeAndAfter) {
  ASSERT_TRUE(store_->Commit(One(Reg("a"))).ok());
  ASSERT_TRUE(store_->Commit(One(MoveOp{"a", kLoc2, std::nullopt})).ok());
  ASSERT_TRUE(store_->Commit(One(UnregisterOp{"a", std::nullopt})).ok());
  auto c = store_->ReadChanges(0, 10);
  ASSERT_TRUE(c.ok());
  ASSERT_EQ(c->size(), 3u);
  const Change& create = (*c)[0].changes[0];
  EXPECT_FALSE(create.before);
  EXPECT_EQ(create.after->locator, kLoc1);
  const Change& move = (*c)[1].changes[0];
  EXPECT_EQ(move.before->locator, kLoc1);
  EXPECT_EQ(move.after->locator, kLoc2);
  const Change& del = (*c)[2].changes[0];
  EXPECT_EQ(del.before->locator, kLoc2);
  EXPECT_FALSE(del.after);
  auto tail = store_->ReadChanges(2, 10);
  ASSERT_TRUE(tail.ok());
  ASSERT_EQ(tail->size(), 1u);
  EXPECT_EQ((*tail)[0].revision, 3);
}

TEST_P(RocksDbStoreTest, RetentionCompactsTheChangeLog) {
  Reopen(/*retained=*/5);
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(store_->Commit(One(Reg("t" + std::to_string(i)))).ok());
  }
  auto st = store_->Status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->revision, 40);
  EXPECT_GE(st->compacted_revision, 40 - 5 - 1);
  EXPECT_LE(st->compacted_revision, 40 - 5);
  auto old = store_->ReadChanges(0, 100);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(old.status().message(), HasSubstr("is compacted"));
  auto kept = store_->ReadChanges(st->compacted_revision, 100);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_EQ(kept->size(),
            static_cast<size_t>(st->revision - st->compacted_revision));
  EXPECT_EQ(kept->front().revision, st->compacted_revision + 1);
  Reopen(5);
  EXPECT_EQ(store_->Status()->compacted_revision, st->compacted_revision);
}

TEST_P(RocksDbStoreTest, ListPagesAreConsistentAtOneRevision) {
  for (int i = 0; i < 25; ++i) {
    Locator loc = i % 5 == 0 ? kLoc2 : kLoc1;
    ASSERT_TRUE(store_->Commit(One(Reg("t" + std::to_string(i), loc))).ok());
  }
  ListOptions o;
  o.limit = 10;
  auto p1 = store_->List(o);
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(p1->revision, 25);
  EXPECT_EQ(p1->mappings.size(), 10u);
  EXPECT_TRUE(p1->more);
  // Writes between pages do not show up in later pages of the same list.
  ASSERT_TRUE(store_->Commit(One(Reg("late"))).ok());
  ASSERT_TRUE(store_->Commit(One(UnregisterOp{"t24", std::nullopt})).ok());
  std::vector<Mapping> all = p1->mappings;
  ListOptions next = o;
  next.revision = p1->revision;
  next.after = p1->mappings.back().identifier;
  while (true) {
    auto p = store_->List(next);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->revision, 25);
    all.insert(all.end(), p->mappings.begin(), p->mappings.end());
    if (!p->more) break;
    next.after = p->mappings.back().identifier;
  }
  ASSERT_EQ(all.size(), 25u);
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(all[i - 1].identifier, all[i].identifier);
  }
  // Filters.
  ListOptions by_loc;
  by_loc.locator = kLoc2;
  auto f = store_->List(by_loc);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->mappings.size(), 5u);  // t0 t5 t10 t15 t20
  ListOptions by_prefix;
  by_prefix.sir_prefix = SirPrefix{0x20010db8ffff0000};
  EXPECT_TRUE(store_->List(by_prefix)->mappings.empty());
}

TEST_P(RocksDbStoreTest, SnapshotReadsOneRevisionInPieces) {
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(store_->Commit(One(Reg("t" + std::to_string(i)))).ok());
  }
  auto snap = store_->OpenSnapshot();
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ((*snap)->revision(), 25);
  ASSERT_TRUE(store_->Commit(One(Reg("late"))).ok());
  ASSERT_TRUE(store_->Commit(One(UnregisterOp{"t3", std::nullopt})).ok());
  std::vector<Mapping> all;
  int reads = 0;
  for (;;) {
    auto more = (*snap)->ReadNext(10, &all);
    ASSERT_TRUE(more.ok());
    ++reads;
    if (!*more) break;
  }
  EXPECT_EQ(reads, 3);
  ASSERT_EQ(all.size(), 25u);
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_LT(all[i - 1].identifier, all[i].identifier);
  }
  snap->reset();
}

TEST_P(RocksDbStoreTest, UnfinishedListExpires) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(store_->Commit(One(Reg("t" + std::to_string(i)))).ok());
  }
  ListOptions o;
  o.limit = 1;
  auto p1 = store_->List(o);
  ASSERT_TRUE(p1.ok());
  ASSERT_TRUE(store_->Commit(One(Reg("late"))).ok());
  clock_.Advance(absl::Seconds(61));
  o.revision = p1->revision;
  o.after = p1->mappings.back().identifier;
  auto p2 = store_->List(o);
  EXPECT_EQ(p2.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(p2.status().message(), HasSubstr("start the list again"));
}

TEST_P(RocksDbStoreTest, ConcurrentWritersGetContiguousRevisions) {
  constexpr int kThreads = 8, kPerThread = 100;
  absl::Mutex mu;
  std::vector<int64_t> revisions;
  absl::flat_hash_set<uint64_t> ids;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto r = store_->Commit(
            One(Reg("t" + std::to_string(t) + "-" + std::to_string(i))));
        ASSERT_TRUE(r.ok()) << r.status();
        absl::MutexLock l(&mu);
        revisions.push_back(r->revision);
        ids.insert(r->results[0].mapping.identifier.value);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::sort(revisions.begin(), revisions.end());
  ASSERT_EQ(revisions.size(), size_t{kThreads * kPerThread});
  for (size_t i = 0; i < revisions.size(); ++i) {
    EXPECT_EQ(revisions[i], static_cast<int64_t>(i + 1));
  }
  EXPECT_EQ(ids.size(), size_t{kThreads * kPerThread});
  EXPECT_EQ(store_->Status()->mapping_count, kThreads * kPerThread);
}

// Records what observers are told.
class RecordingObserver : public CommitObserver {
 public:
  void OnCommit(
      const std::vector<std::shared_ptr<const ChangeSet>>& sets) override {
    absl::MutexLock l(&mu_);
    for (const auto& s : sets) revisions_.push_back(s->revision);
  }
  std::vector<int64_t> revisions() {
    absl::MutexLock l(&mu_);
    return revisions_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int64_t> revisions_;
};

TEST_P(RocksDbStoreTest, ObserversSeeEveryRevisionInOrderBeforeItsAck) {
  RecordingObserver obs;
  store_->AddCommitObserver(&obs);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto r = store_->Commit(
            One(Reg("t" + std::to_string(t) + "-" + std::to_string(i))));
        ASSERT_TRUE(r.ok());
        // Observed before acknowledged.
        std::vector<int64_t> seen = obs.revisions();
        EXPECT_NE(std::find(seen.begin(), seen.end(), r->revision), seen.end())
            << "revision " << r->revision << " acknowledged before observed";
        // A no-op (idempotent retry) produces no revision.
        EXPECT_TRUE(store_
                        ->Commit(One(Reg("t" + std::to_string(t) + "-" +
                                         std::to_string(i))))
                        .ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  std::vector<int64_t> seen = obs.revisions();
  ASSERT_EQ(seen.size(), 200u);
  for (size_t i = 0; i < seen.size(); ++i) {
    EXPECT_EQ(seen[i], static_cast<int64_t>(i + 1));
  }
  store_.reset();  // closes before `obs` goes away
}

TEST_P(RocksDbStoreTest, SubmitAfterCloseIsUnavailable) {
  store_->Close();
  auto r = store_->Commit(One(Reg("a")));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
}

TEST(RocksDbStoreOpen, RejectsBadOptionsAndForeignFormat) {
  RocksDbStoreOptions o;
  EXPECT_EQ(RocksDbMappingStore::Open(o).status().code(),
            absl::StatusCode::kInvalidArgument);
  testing::TempDir dir;
  o.path = dir.Sub("db");
  o.retained_revisions = 0;
  EXPECT_THAT(RocksDbMappingStore::Open(o).status().message(),
              HasSubstr("retained revisions: 0"));
  EXPECT_EQ(ParseSyncMode("sometimes").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ila::storage
