#include "client/format.h"

#include "client/ila_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace ila::client {
namespace {

using ::testing::HasSubstr;

v1::Mapping Sample() {
  v1::Mapping m;
  m.set_task("web/\"1\"");
  m.set_identifier(0x2000000000000042);
  m.set_locator(0x20010db801000000);
  m.set_sir_prefix(0xfd00000000000000);
  m.set_checksum_mode(v1::CHECKSUM_MODE_ADJ_TRANSPORT);
  m.set_create_revision(3);
  m.set_mod_revision(5);
  m.set_version(2);
  m.mutable_update_time()->set_seconds(1700000000);
  return m;
}

TEST(Format, MappingJsonHasTheDocumentedKeys) {
  EXPECT_EQ(MappingJson(Sample(), ",\"revision\":9"),
            "{\"task\":\"web/\\\"1\\\"\",\"identifier\":\"2000:0:0:42\","
            "\"locator\":\"2001:db8:100:0\",\"sir_prefix\":\"fd00:0:0:0\","
            "\"sir_address\":\"fd00::2000:0:0:42\","
            "\"checksum_mode\":\"adj-transport\",\"create_revision\":3,"
            "\"mod_revision\":5,\"version\":2,"
            "\"update_time\":\"2023-11-14T22:13:20.000Z\",\"revision\":9}");
}

TEST(Format, JsonQuoteEscapesControls) {
  EXPECT_EQ(JsonQuote(std::string("a\x01\n\\", 4)), "\"a\\u0001\\n\\\\\"");
  EXPECT_EQ(JsonQuote("tâche"), "\"tâche\"");
}

TEST(Format, TableAlignsColumns) {
  std::string t = MappingTable({Sample()});
  EXPECT_THAT(t,
              HasSubstr("TASK     IDENTIFIER   LOCATOR         SIR-ADDRESS"));
  EXPECT_THAT(
      t,
      HasSubstr("web/\"1\"  2000:0:0:42  2001:db8:100:0  fd00::2000:0:0:42"));
}

TEST(ClassifyKey, IdentifiersAddressesAndTasks) {
  EXPECT_EQ(ClassifyKey("2000:0:0:42"), KeyKind::kIdentifier);
  EXPECT_EQ(ClassifyKey("0x2000000000000042"), KeyKind::kIdentifier);
  EXPECT_EQ(ClassifyKey("fd00::2000:0:0:42"), KeyKind::kSirAddress);
  EXPECT_EQ(ClassifyKey("2000::42"), KeyKind::kSirAddress);
  EXPECT_EQ(ClassifyKey("web/1"), KeyKind::kTask);
  EXPECT_EQ(ClassifyKey("job:a:b:c"), KeyKind::kTask);
  EXPECT_EQ(ClassifyKey("0xzz"), KeyKind::kTask);
}

}  // namespace
}  // namespace ila::client
