// Prober: the probe engine behind Diagnostics.Trace (design.md §8). Sends
// UDP, ICMPv6 echo or TCP SYN probes with one hop limit each (never
// connect()ing a probe socket), many in flight across hop limits and paced,
// and receives the answers on a raw ICMPv6 socket (ICMP6_FILTER: errors and
// echo replies) and, for TCP, a raw TCP socket (SYN-ACK or RST from the
// destination). A reply is matched to its probe only by fields ILA leaves
// alone: UDP ports, TCP ports and sequence, echo identifier and sequence —
// never by the quoted destination or a checksum.
//
// With CAP_NET_RAW it sees everything above. Without it (Open() falls
// back; `privileged()` is false) it uses what an unprivileged process may:
// UDP probes on an unconnected socket with IPV6_RECVERR (the error queue
// gives the offender, the ICMPv6 type/code and the quoted destination and
// port) and ICMPv6 echo on a ping socket (net.ipv4.ping_group_range must
// include the process's group); then there are no TCP probes and no quoted
// header beyond destination, ports and echo sequence (Limitations()).
//
// Thread-safety: one Run at a time per Prober; Run calls `on_result` on the
// calling thread. `cancel` may be set from any thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "trace/packet.h"

namespace ila::trace {

enum class ProbeProtocol { kUdp, kIcmp, kTcp };

struct ProbeOptions {
  Ipv6Bytes destination{};
  ProbeProtocol protocol = ProbeProtocol::kUdp;
  int first_hop = 1;
  int max_hops = 30;
  int queries = 3;  // probes per hop
  // UDP: the first destination port (probe i uses port + i, as traceroute);
  // TCP: the destination port. 0: 33434 (UDP), 80 (TCP).
  uint16_t port = 0;
  absl::Duration wait = absl::Seconds(2);  // per probe, at most
  // Adaptive wait (as traceroute's -w MAX,HERE,NEAR): once the same hop
  // answered another probe in RTT r, wait at most here_factor * r for this
  // one; once a later hop answered in r, at most near_factor * r; never less
  // than min_adaptive_wait.
  double here_factor = 3;
  double near_factor = 10;
  absl::Duration min_adaptive_wait = absl::Milliseconds(25);
  // Probes in flight at once, and the gap between two sends. Linux routers
  // limit ICMPv6 errors per source (a burst of 6, then one per
  // net.ipv6.icmp.ratelimit, 1 s) and in all (icmp_msgs_per_sec, 1,000/s):
  // 1 ms between sends keeps every router under the second, and a trace
  // asks each router for at most `queries` answers per hop it appears at.
  int in_flight = 16;
  absl::Duration send_interval = absl::Milliseconds(1);
};

struct ProbeResult {
  int ttl = 0;
  int query = 0;
  // The answering address; nullopt when nothing answered in time.
  std::optional<Ipv6Bytes> from;
  absl::Duration rtt;
  uint8_t icmp_type = 0, icmp_code = 0;  // 0/0 for a TCP answer
  std::optional<QuotedPacket> quoted;    // from ICMPv6 errors
  // The destination answered (port unreachable, echo reply, SYN-ACK/RST).
  bool reached = false;
};

class Prober {
 public:
  // Raw sockets when allowed (and `allow_raw`), else the unprivileged
  // sockets; an error only when neither works.
  static absl::StatusOr<std::unique_ptr<Prober>> Open(bool allow_raw = true);
  ~Prober();

  bool privileged() const { return tcp_ >= 0; }
  // What this prober cannot see ("" when privileged).
  std::string Limitations() const;

  // Probes hop limits first_hop..max_hops (stopping at the first that
  // reaches the destination) and calls `on_result` for each probe as its
  // answer arrives or its wait ends, in no particular order. Bounded:
  // returns after the last probe's wait at the latest.
  absl::Status Run(const ProbeOptions& options,
                   const std::function<void(const ProbeResult&)>& on_result,
                   const std::atomic<bool>* cancel = nullptr);

 private:
  Prober(int icmp, int udp, int tcp) : icmp_(icmp), udp_(udp), tcp_(tcp) {}
  // Unprivileged: reads the error queue of `fd` (UDP or ping socket).
  void ReadErrorQueue(
      int fd,
      const std::function<void(ProbeResult, const QuotedPacket&)>& on_error);
  // icmp_: raw ICMPv6 socket, or the ping socket when unprivileged.
  // tcp_: raw TCP socket, -1 when unprivileged.
  int icmp_, udp_, tcp_;
};

}  // namespace ila::trace
