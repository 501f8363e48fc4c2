#include "storage/planner.h"

#include "absl/container/flat_hash_set.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ila::storage {
namespace {

using ::testing::HasSubstr;

// An empty database.
class EmptyReader final : public StateReader {
 public:
  absl::StatusOr<std::optional<Mapping>> FindTask(const std::string&) override {
    return std::nullopt;
  }
  absl::StatusOr<std::optional<Mapping>> FindIdentifier(Identifier) override {
    return std::nullopt;
  }
};

constexpr Locator kLoc1{0x20010db801000000};
constexpr Locator kLoc2{0x20010db802000000};
const absl::Time kNow = absl::FromUnixSeconds(1700000000);

class PlannerTest : public ::testing::Test {
 protected:
  // Plans `ops` and, on success, commits them to the in-memory state.
  absl::StatusOr<PlannedRequest> Run(std::vector<Operation> ops,
                                     bool batch = false) {
    WriteRequest req{std::move(ops), batch};
    auto planned = PlanRequest(req, state_, counters_, config_, kNow);
    if (planned.ok()) {
      for (const auto& c : planned->changes) state_.Apply(c);
      counters_ = planned->state;
    }
    return planned;
  }
  static RegisterOp Reg(std::string task, Locator loc = kLoc1) {
    return RegisterOp{std::move(task), loc, std::nullopt, std::nullopt,
                      std::nullopt};
  }

  EmptyReader empty_;
  OverlayReader state_{&empty_};
  PlannerState counters_;
  PlannerConfig config_;
};

TEST_F(PlannerTest, RegisterAllocatesUniqueLuidIdentifiers) {
  absl::flat_hash_set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    auto r = Run({Reg("task-" + std::to_string(i))});
    ASSERT_TRUE(r.ok()) << r.status();
    const Mapping& m = r->result.results[0].mapping;
    EXPECT_EQ(m.identifier.type(), IdentifierType::kLuid);
    EXPECT_FALSE(m.identifier.c_bit());
    EXPECT_TRUE(seen.insert(m.identifier.value).second);
    EXPECT_EQ(r->result.revision, i + 1);
    EXPECT_EQ(m.create_revision, i + 1);
    EXPECT_EQ(m.mod_revision, i + 1);
    EXPECT_EQ(m.version, 1);
    EXPECT_EQ(m.sir_prefix, config_.default_sir_prefix);
    EXPECT_EQ(m.update_time, kNow);
  }
  EXPECT_EQ(counters_.mapping_count, 1000);
}

TEST_F(PlannerTest, AllocationSkipsIdentifiersChosenByCallers) {
  RegisterOp taken = Reg("explicit");
  taken.identifier = MakeLuidIdentifier(1);
  ASSERT_TRUE(Run({taken}).ok());
  auto r = Run({Reg("allocated")});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->result.results[0].mapping.identifier, MakeLuidIdentifier(2));
}

TEST_F(PlannerTest, RegisterIsIdempotentAtSameLocator) {
  auto first = Run({Reg("web/1")});
  ASSERT_TRUE(first.ok());
  auto again = Run({Reg("web/1")});
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->changes.empty());
  EXPECT_FALSE(again->result.results[0].changed);
  EXPECT_EQ(again->result.results[0].mapping, first->result.results[0].mapping);
  EXPECT_EQ(again->result.revision, 1);
}

TEST_F(PlannerTest, RegisterElsewhereSaysUseMoveTask) {
  ASSERT_TRUE(Run({Reg("web/1")}).ok());
  auto r = Run({Reg("web/1", kLoc2)});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(r.status().message(), HasSubstr("use MoveTask"));
  EXPECT_THAT(r.status().message(), HasSubstr("2001:db8:100:0"));
}

TEST_F(PlannerTest, RegisterWithDifferentExplicitFieldsConflicts) {
  ASSERT_TRUE(Run({Reg("web/1")}).ok());
  RegisterOp other_id = Reg("web/1");
  other_id.identifier = MakeLuidIdentifier(99);
  EXPECT_EQ(Run({other_id}).status().code(), absl::StatusCode::kAlreadyExists);
  RegisterOp other_prefix = Reg("web/1");
  other_prefix.sir_prefix = SirPrefix{0x20010db8ffff0000};
  EXPECT_THAT(Run({other_prefix}).status().message(),
              HasSubstr("SIR prefix fd00:0:0:0"));
  RegisterOp other_mode = Reg("web/1");
  other_mode.checksum_mode = ChecksumMode::kNoAction;
  EXPECT_THAT(Run({other_mode}).status().message(),
              HasSubstr("checksum mode adj-transport, not no-action"));
}

TEST_F(PlannerTest, ExplicitIdentifierInUseIsAlreadyExists) {
  RegisterOp a = Reg("a");
  a.identifier = MakeLuidIdentifier(7);
  ASSERT_TRUE(Run({a}).ok());
  RegisterOp b = Reg("b");
  b.identifier = MakeLuidIdentifier(7);
  auto r = Run({b});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(r.status().message(), HasSubstr("used by task \"a\""));
}

TEST_F(PlannerTest, RejectsInvalidOperations) {
  RegisterOp bad_type = Reg("x");
  bad_type.identifier = Identifier{0x4000000000000001};
  EXPECT_THAT(Run({bad_type}).status().message(),
              HasSubstr("identifier: 4000:0:0:1 has identifier type 2"));
  EXPECT_THAT(Run({Reg("x", Locator{0})}).status().message(),
              HasSubstr("locator: must not be zero"));
  EXPECT_THAT(Run({Reg("")}).status().message(), HasSubstr("task: task name"));
  EXPECT_THAT(Run({}).status().message(), HasSubstr("operations: empty"));
  config_.max_operations = 2;
  auto big = Run({Reg("a"), Reg("b"), Reg("c")}, true);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(big.status().message(),
              HasSubstr("3 operations exceed the limit of 2"));
}

TEST_F(PlannerTest, MoveWithCompareAndSwap) {
  ASSERT_TRUE(Run({Reg("web/1")}).ok());
  ASSERT_TRUE(Run({Reg("web/2")}).ok());  // revision 2
  auto stale = Run({MoveOp{"web/1", kLoc2, 2}});
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stale.status().message(),
              HasSubstr("has mod_revision 1, expected_mod_revision is 2"));
  auto moved = Run({MoveOp{"web/1", kLoc2, 1}});
  ASSERT_TRUE(moved.ok()) << moved.status();
  const OperationResult& r = moved->result.results[0];
  EXPECT_TRUE(r.changed);
  EXPECT_EQ(r.mapping.locator, kLoc2);
  EXPECT_EQ(r.mapping.create_revision, 1);
  EXPECT_EQ(r.mapping.mod_revision, 3);
  EXPECT_EQ(r.mapping.version, 2);
  ASSERT_TRUE(r.previous.has_value());
  EXPECT_EQ(r.previous->locator, kLoc1);
  // Moving to where it is changes nothing.
  auto same = Run({MoveOp{"web/1", kLoc2, std::nullopt}});
  ASSERT_TRUE(same.ok());
  EXPECT_TRUE(same->changes.empty());
  EXPECT_EQ(same->result.revision, 3);
  EXPECT_EQ(Run({MoveOp{"nope", kLoc2, std::nullopt}}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PlannerTest, UnregisterWithCompareAndSwap) {
  ASSERT_TRUE(Run({Reg("web/1")}).ok());
  EXPECT_EQ(Run({UnregisterOp{"web/1", 5}}).status().code(),
            absl::StatusCode::kFailedPrecondition);
  auto r = Run({UnregisterOp{"web/1", 1}});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->changes.size(), 1u);
  EXPECT_TRUE(r->changes[0].before.has_value());
  EXPECT_FALSE(r->changes[0].after.has_value());
  EXPECT_EQ(counters_.mapping_count, 0);
  EXPECT_EQ(Run({UnregisterOp{"web/1", std::nullopt}}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(PlannerTest, BatchIsAllOrNothingAndNamesFailingOperation) {
  ASSERT_TRUE(Run({Reg("a")}).ok());
  auto r = Run({Reg("b"), Reg("c"), MoveOp{"missing", kLoc2, std::nullopt}},
               /*batch=*/true);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(),
              HasSubstr("operations[2]: task \"missing\""));
  EXPECT_EQ(counters_.revision, 1);
  EXPECT_EQ(counters_.mapping_count, 1);
  EXPECT_FALSE(*state_.FindTask("b"));

  auto ok = Run({Reg("b"), Reg("c"), MoveOp{"a", kLoc2, std::nullopt}}, true);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->result.revision, 2);
  EXPECT_EQ(ok->changes.size(), 3u);
  for (const auto& res : ok->result.results) {
    EXPECT_EQ(res.mapping.mod_revision, 2);
  }
}

TEST_F(PlannerTest, BatchRejectsDuplicateTasksAndIdentifiers) {
  auto dup = Run({Reg("a"), UnregisterOp{"a", std::nullopt}}, true);
  EXPECT_EQ(dup.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      dup.status().message(),
      HasSubstr("operations[1]: task: \"a\" also appears in operations[0]"));
  RegisterOp x = Reg("x"), y = Reg("y");
  x.identifier = y.identifier = MakeLuidIdentifier(5);
  EXPECT_THAT(Run({x, y}, true).status().message(),
              HasSubstr("operations[1]: identifier: 2000:0:0:5 also appears"));
}

TEST_F(PlannerTest, BatchMayReuseIdentifierFreedEarlierInSameBatch) {
  RegisterOp a = Reg("a");
  a.identifier = MakeLuidIdentifier(5);
  ASSERT_TRUE(Run({a}).ok());
  RegisterOp b = Reg("b");
  b.identifier = MakeLuidIdentifier(5);
  auto r = Run({UnregisterOp{"a", std::nullopt}, b}, true);
  ASSERT_TRUE(r.ok()) << r.status();
  auto holder = state_.FindIdentifier(MakeLuidIdentifier(5));
  ASSERT_TRUE(holder.ok() && holder->has_value());
  EXPECT_EQ((*holder)->task, "b");
}

}  // namespace
}  // namespace ila::storage
