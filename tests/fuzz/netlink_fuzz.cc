// libFuzzer target: the netlink decoders of ila-router-sync
// (router-sync/route_codec.h). A kernel reply (or anything a buggy kernel
// or a hostile netlink peer sends) is split into messages and each decoded
// as an ack, a route, a family id and a translation entry: it must decode
// or be refused with INVALID_ARGUMENT, never crash or read outside the
// buffer, and split messages must lie inside it.
#include <cstddef>
#include <cstdint>

#include "router-sync/route_codec.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ila::router_sync;
  auto refused = [](const absl::Status& s) {
    return s.code() == absl::StatusCode::kInvalidArgument &&
           !s.message().empty();
  };
  auto messages = SplitMessages(data, size);
  if (!messages.ok()) {
    FUZZ_CHECK(refused(messages.status()));
    return 0;
  }
  for (const NetlinkMessage& m : *messages) {
    FUZZ_CHECK(m.offset + m.length <= size);
    const uint8_t* p = data + m.offset;
    if (auto ack = DecodeAck(p, m.length); ack.ok()) {
      FUZZ_CHECK(ack->error <= 0);
    } else {
      FUZZ_CHECK(refused(ack.status()));
    }
    if (auto route = DecodeRoute(p, m.length); !route.ok()) {
      FUZZ_CHECK(refused(route.status()));
    }
    if (auto family = DecodeFamilyId(p, m.length); !family.ok()) {
      FUZZ_CHECK(refused(family.status()) ||
                 family.status().code() == absl::StatusCode::kNotFound);
    }
    if (auto entry = DecodeXlat(p, m.length, m.type); entry.ok()) {
      FUZZ_CHECK(
          ila::IsValidChecksumMode(static_cast<uint32_t>(entry->csum_mode)));
    } else {
      FUZZ_CHECK(refused(entry.status()));
    }
  }
  return 0;
}
