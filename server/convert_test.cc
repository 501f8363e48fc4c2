#include "server/convert.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ila::server {
namespace {

using ::testing::HasSubstr;

v1::RegisterTaskRequest Reg(std::string task, std::string locator) {
  v1::RegisterTaskRequest r;
  r.set_task(std::move(task));
  r.set_locator(std::move(locator));
  return r;
}

TEST(ToRegisterOp, ParsesAllFields) {
  auto req = Reg("web/1", "2001:db8:100:0");
  req.set_identifier("2000:0:0:42");
  req.set_sir_prefix("2001:db8:ffff::/64");
  req.set_checksum_mode(v1::CHECKSUM_MODE_NEUTRAL_MAP);
  auto op = ToRegisterOp(req);
  ASSERT_TRUE(op.ok()) << op.status();
  EXPECT_EQ(op->task, "web/1");
  EXPECT_EQ(op->locator.value, 0x20010db801000000u);
  EXPECT_EQ(op->identifier->value, 0x2000000000000042u);
  EXPECT_EQ(op->sir_prefix->value, 0x20010db8ffff0000u);
  EXPECT_EQ(*op->checksum_mode, ChecksumMode::kNeutralMap);
  auto bare = ToRegisterOp(Reg("web/1", "2001:db8:100:0"));
  ASSERT_TRUE(bare.ok());
  EXPECT_FALSE(bare->identifier || bare->sir_prefix || bare->checksum_mode);
}

TEST(ToRegisterOp, ErrorsNameFieldAndValue) {
  struct Case {
    v1::RegisterTaskRequest req;
    const char* want;
  };
  std::vector<Case> cases;
  cases.push_back({Reg("", "2001:db8:100:0"), "task: task name is empty"});
  cases.push_back(
      {Reg(std::string(300, 'a'), "2001:db8:100:0"), "task: task name \"aaaa"});
  cases.push_back({Reg("web/1", ""), "locator: required"});
  cases.push_back({Reg("web/1", "0:0:0:0"),
                   "locator: \"0:0:0:0\": a locator must not be zero"});
  cases.push_back(
      {Reg("web/1", "2001:db8:xyz:0"), "locator: \"2001:db8:xyz:0\""});
  auto bad_id = Reg("web/1", "2001:db8:100:0");
  bad_id.set_identifier("0:0:0:42");
  cases.push_back({bad_id, "identifier: 0:0:0:42 has identifier type 0"});
  auto c_bit = Reg("web/1", "2001:db8:100:0");
  c_bit.set_identifier("0x3000000000000001");
  cases.push_back({c_bit, "identifier: 3000:0:0:1 has the C-bit set"});
  auto bad_prefix = Reg("web/1", "2001:db8:100:0");
  bad_prefix.set_sir_prefix("fd00::/48");
  cases.push_back({bad_prefix, "sir_prefix: \"fd00::/48\""});
  auto bad_mode = Reg("web/1", "2001:db8:100:0");
  bad_mode.set_checksum_mode(static_cast<v1::ChecksumMode>(17));
  cases.push_back({bad_mode, "checksum_mode: 17 is not a ChecksumMode"});
  for (const auto& c : cases) {
    auto op = ToRegisterOp(c.req);
    ASSERT_FALSE(op.ok()) << c.want;
    EXPECT_EQ(op.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(op.status().message(), HasSubstr(c.want));
  }
}

TEST(ToMoveOp, ExpectedRevisionMustBePositive) {
  v1::MoveTaskRequest req;
  req.set_task("web/1");
  req.set_locator("2001:db8:200:0");
  auto plain = ToMoveOp(req);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->expected_mod_revision.has_value());
  req.set_expected_mod_revision(0);
  EXPECT_THAT(ToMoveOp(req).status().message(),
              HasSubstr("expected_mod_revision: 0 is not a revision"));
  req.set_expected_mod_revision(12);
  EXPECT_EQ(*ToMoveOp(req)->expected_mod_revision, 12);
}

TEST(ToWriteRequest, NamesThePathOfTheBadField) {
  v1::ApplyRequest req;
  *req.add_operations()->mutable_register_() = Reg("a", "2001:db8:100:0");
  auto* mv = req.add_operations()->mutable_move();
  mv->set_task("b");
  mv->set_locator("nope");
  auto r = ToWriteRequest(req, 100);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(),
              HasSubstr("operations[1].move.locator: \"nope\""));
  req.mutable_operations(1)->Clear();
  EXPECT_THAT(ToWriteRequest(req, 100).status().message(),
              HasSubstr("operations[1]: empty"));
  EXPECT_THAT(ToWriteRequest(req, 1).status().message(),
              HasSubstr("operations: 2 operations exceed the limit of 1"));
  EXPECT_THAT(ToWriteRequest(v1::ApplyRequest(), 1).status().message(),
              HasSubstr("operations: empty"));
}

TEST(PageToken, RoundTripAndRejectsForgeries) {
  PageToken t{42, Identifier{0x2000000000000007}};
  auto back = DecodePageToken(EncodePageToken(t));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->revision, 42);
  EXPECT_EQ(back->after, t.after);
  for (const char* bad : {"x", "djE6MDox", "!!!!", "dj", "djI6MTox"}) {
    auto r = DecodePageToken(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("page_token"));
  }
}

TEST(ToListOptions, ValidatesPageSizeAndFilters) {
  v1::ListRequest req;
  auto o = ToListOptions(req, 1000, 10000);
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->limit, 1000u);
  req.set_page_size(10001);
  EXPECT_THAT(ToListOptions(req, 1000, 10000).status().message(),
              HasSubstr("page_size: 10001"));
  req.set_page_size(-1);
  EXPECT_FALSE(ToListOptions(req, 1000, 10000).ok());
  req.set_page_size(5);
  req.set_locator("bad");
  EXPECT_THAT(ToListOptions(req, 1000, 10000).status().message(),
              HasSubstr("locator: \"bad\""));
}

TEST(MappingProto, RoundTrip) {
  storage::Mapping m;
  m.task = "web/1";
  m.identifier = MakeLuidIdentifier(9);
  m.locator = Locator{0x20010db801000000};
  m.sir_prefix = SirPrefix{0xfd00000000000000};
  m.checksum_mode = ChecksumMode::kNeutralMapAuto;
  m.create_revision = 3;
  m.mod_revision = 8;
  m.version = 4;
  m.update_time = absl::FromUnixNanos(1700000000123456789);
  v1::Mapping p;
  ToProto(m, &p);
  auto back = FromProto(p);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, m);
}

}  // namespace
}  // namespace ila::server
