// Runs the fuzz target (packet_fuzz.cc) without libFuzzer: on every
// captured message of trace/testdata/icmp6, and on 200,000 mutations of
// them (bit flips, truncations, inserted bytes, random lengths) from a fixed
// seed, so `make test` keeps the parser's robustness checked with the
// project's own compiler. Exit 0 when nothing aborted.
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "trace/testdata.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main() {
  const auto captures =
      ila::trace::testdata::Captures(ILA_TRACE_TESTDATA "/icmp6");
  std::vector<std::vector<uint8_t>> seeds;
  for (const auto& [name, bytes] : captures) {
    if (bytes.empty()) {
      std::fprintf(stderr, "packet_fuzz_replay: %s.hex missing or empty\n",
                   name.c_str());
      return 1;
    }
    seeds.push_back(bytes);
    LLVMFuzzerTestOneInput(bytes.data(), bytes.size());
  }
  std::mt19937 rng(20261205);
  constexpr int kRuns = 200000;
  for (int i = 0; i < kRuns; ++i) {
    std::vector<uint8_t> b = seeds[rng() % seeds.size()];
    const int edits = 1 + static_cast<int>(rng() % 8);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0:
          if (!b.empty()) b[rng() % b.size()] ^= 1u << (rng() % 8);
          break;
        case 1:
          if (!b.empty()) b.resize(rng() % b.size());
          break;
        case 2:
          b.insert(b.begin() + static_cast<long>(rng() % (b.size() + 1)),
                   static_cast<uint8_t>(rng()));
          break;
        default:
          if (!b.empty()) b[rng() % b.size()] = static_cast<uint8_t>(rng());
          break;
      }
    }
    // Copy to an exact-size heap buffer so that an over-read is past it.
    std::vector<uint8_t> exact(b.begin(), b.end());
    LLVMFuzzerTestOneInput(exact.data(), exact.size());
  }
  std::printf("packet_fuzz_replay: %zu captures and %d mutations parsed\n",
              seeds.size(), kRuns);
  return 0;
}
