// Writes the seed corpora of tests/fuzz/corpus (checked in; regenerate
// with `build/tests/fuzz_make_seeds tests/fuzz/corpus` when an encoder or
// a request changes): valid and near-valid inputs made by the project's
// own encoders, which libFuzzer and the replay tests mutate.
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "ila/v1/backup.h"
#include "ila/v1/mapping.pb.h"
#include "ila/v1/stream.pb.h"
#include "router-sync/route_codec.h"
#include "server/convert.h"

namespace {

using namespace ila;

std::string g_dir;

void Write(const std::string& target, const std::string& name,
           const std::string& bytes) {
  const std::string dir = g_dir + "/" + target;
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
}
void Write(const std::string& target, const std::string& name,
           const std::vector<uint8_t>& bytes) {
  Write(target, name, std::string(bytes.begin(), bytes.end()));
}
// request_fuzz: a kind byte, then the message.
void Request(const std::string& name, char kind, const std::string& bytes) {
  Write("request", name, std::string(1, kind) + bytes);
}

v1::Mapping SampleMapping(int i) {
  v1::Mapping m;
  m.set_task("web/" + std::to_string(i));
  m.set_identifier(MakeLuidIdentifier(i + 1).value);
  m.set_locator(0x20010db800000000 | static_cast<uint64_t>(i % 3 + 1) << 16);
  m.set_sir_prefix(0xfd00000000000000);
  m.set_create_revision(i + 1);
  m.set_mod_revision(i + 1);
  m.set_version(1);
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];

  // address_fuzz: texts.
  const char* texts[] = {"2001:db8:1:0",
                         "2001:db8:1::",
                         "fd00::2000:0:0:42",
                         "2000:0:0:42",
                         "::",
                         "ffff:ffff:ffff:ffff",
                         "1:2:3:4:5",
                         "adj-transport",
                         "neutral-map",
                         "neutral-map-auto",
                         "no-action",
                         "web/1",
                         "caf\xc3",
                         "db/primary-0"};
  int n = 0;
  for (const char* t : texts) Write("address", "t" + std::to_string(n++), t);

  // request_fuzz: one valid message of each kind.
  v1::RegisterTaskRequest reg;
  reg.set_task("web/1");
  reg.set_locator("2001:db8:1:0");
  reg.set_sir_prefix("fd00::");
  Request("register", 0, reg.SerializeAsString());
  v1::MoveTaskRequest move;
  move.set_task("web/1");
  move.set_locator("2001:db8:2:0");
  move.set_expected_mod_revision(3);
  Request("move", 1, move.SerializeAsString());
  v1::UnregisterTaskRequest unreg;
  unreg.set_task("web/1");
  Request("unregister", 2, unreg.SerializeAsString());
  v1::ApplyRequest apply;
  *apply.add_operations()->mutable_register_() = reg;
  *apply.add_operations()->mutable_move() = move;
  apply.add_operations()->mutable_unregister()->set_task("web/2");
  Request("apply", 3, apply.SerializeAsString());
  v1::ListRequest list;
  list.set_page_size(10);
  list.set_locator("2001:db8:1:0");
  list.set_page_token(server::EncodePageToken({7, Identifier{42}}));
  Request("list", 4, list.SerializeAsString());
  Request("page_token", 5, server::EncodePageToken({7, Identifier{42}}));
  v1::Filter filter;
  filter.add_locators("2001:db8:1:0");
  filter.set_shard_index(1);
  filter.set_shard_count(4);
  Request("filter", 6, filter.SerializeAsString());
  Request("uris", 7, "ila://role/host\nila://locator/2001:db8:1:0");
  Request("mapping", 8, SampleMapping(1).SerializeAsString());

  // netlink_fuzz: a route, a translation entry, an ack, a family reply.
  router_sync::IlaRoute route;
  route.destination.prefix.value = 0xfd00000000000000;
  route.destination.identifier = MakeLuidIdentifier(42);
  route.locator.value = 0x20010db800010000;
  route.oif = 2;
  std::vector<uint8_t> b;
  router_sync::AppendRouteReplace(route, 1, &b);
  Write("netlink", "route", b);
  router_sync::IlaXlatEntry entry;
  entry.locator_match.value = 0x20010db800010000;
  entry.sir_prefix.value = 0xfd00000000000000;
  entry.ifindex = 3;
  b.clear();
  router_sync::AppendXlatAdd(0x20, entry, 2, &b);
  Write("netlink", "xlat", b);
  std::vector<uint8_t> ack(sizeof(nlmsghdr) + sizeof(nlmsgerr));
  nlmsghdr h{static_cast<uint32_t>(ack.size()), NLMSG_ERROR, 0, 3, 0};
  nlmsgerr err{};
  err.error = -17;  // EEXIST
  std::memcpy(ack.data(), &h, sizeof(h));
  std::memcpy(ack.data() + sizeof(h), &err, sizeof(err));
  Write("netlink", "ack", ack);
  b.clear();
  router_sync::AppendFamilyQuery("ila", 4, &b);
  const uint8_t id_attr[] = {0x06, 0x00, CTRL_ATTR_FAMILY_ID, 0x00, 0x20, 0x00,
                             0x00, 0x00};
  b.insert(b.end(), id_attr, id_attr + sizeof(id_attr));
  const uint32_t len = static_cast<uint32_t>(b.size());
  std::memcpy(b.data(), &len, sizeof(len));
  Write("netlink", "family", b);
  std::vector<uint8_t> all;  // a multi-message reply
  router_sync::AppendRouteReplace(route, 5, &all);
  all.insert(all.end(), ack.begin(), ack.end());
  Write("netlink", "two_messages", all);

  // backup_fuzz: an empty and a small backup.
  v1::Backup empty;
  Write("backup", "empty", v1::EncodeBackup(empty));
  v1::Backup small;
  small.revision = 9;
  for (int i = 0; i < 3; ++i) small.mappings.push_back(SampleMapping(i));
  Write("backup", "three", v1::EncodeBackup(small));
  std::printf("seeds written under %s\n", g_dir.c_str());
  return 0;
}
