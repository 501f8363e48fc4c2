// libFuzzer target for the ICMPv6 parser: any bytes (a router on the path
// can send anything) must parse or be refused, never crash or read past the
// input, and what parses must be consistent with it. Built and replayed by
// tests/fuzz/CMakeLists.txt (`make fuzz`; packet_fuzz_replay in make test).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "trace/packet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ila::trace;
  auto m = ParseIcmp6(data, size);
  if (m.ok()) {
    if (m->quoted && m->quoted->payload.size() + 48 > size) std::abort();
    if (m->echo_payload.size() + 8 > size && !m->echo_payload.empty()) {
      std::abort();
    }
    size_t extension_bytes = 0;
    for (const auto& e : m->extensions) extension_bytes += e.data.size() + 4;
    if (extension_bytes > size) std::abort();
  }
  auto q = ParseQuotedPacket(data, size);
  if (q.ok() && q->payload.size() + 40 > size) std::abort();
  return 0;
}
