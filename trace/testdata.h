// The captured ICMPv6 messages of trace/testdata/icmp6 (for tests and the
// fuzz replay): hex files read back as bytes.
//
// Thread-safety: pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"

namespace ila::trace::testdata {

// File name (without .hex) -> bytes; empty when the directory is missing.
inline std::map<std::string, std::vector<uint8_t>> Captures(
    const std::string& dir) {
  std::map<std::string, std::vector<uint8_t>> out;
  for (const char* name :
       {"neighbor_solicitation", "udp_time_exceeded",
        "udp_time_exceeded_translated", "udp_port_unreachable",
        "icmp_time_exceeded_translated", "echo_reply",
        "tcp_time_exceeded_translated", "udp_time_exceeded_neutral_map",
        "icmp_time_exceeded_neutral_map", "tcp_time_exceeded_neutral_map"}) {
    std::ifstream in(dir + "/" + name + ".hex");
    std::stringstream text;
    text << in.rdbuf();
    std::string hex = text.str();
    while (!hex.empty() &&
           (hex.back() == '\n' || hex.back() == '\r' || hex.back() == ' ')) {
      hex.pop_back();
    }
    const std::string bytes = absl::HexStringToBytes(hex);
    out[name] = std::vector<uint8_t>(bytes.begin(), bytes.end());
  }
  return out;
}

}  // namespace ila::trace::testdata
