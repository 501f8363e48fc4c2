#include "trace/prober.h"

#include <fcntl.h>
#include <linux/errqueue.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace ila::trace {
namespace {

constexpr uint16_t kDefaultUdpPort = 33434;
constexpr uint16_t kDefaultTcpPort = 80;
constexpr char kPayload[] = "ila-trace probe";

absl::Status SocketError(const std::string& what, int err) {
  std::string text = absl::StrCat(what, ": ", strerror(err));
  if (err == EPERM || err == EACCES) {
    return absl::PermissionDeniedError(
        absl::StrCat(text, " (raw sockets need CAP_NET_RAW)"));
  }
  return absl::UnavailableError(text);
}

uint16_t Be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
uint32_t Be32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 |
         p[3];
}
void PutBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void PutBe32(uint8_t* p, uint32_t v) {
  PutBe16(p, static_cast<uint16_t>(v >> 16));
  PutBe16(p + 2, static_cast<uint16_t>(v));
}

// sendmsg with a hop limit of its own.
bool SendWithHopLimit(int fd, const Ipv6Bytes& dst, uint16_t port,
                      const uint8_t* data, size_t len, int hop_limit) {
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  to.sin6_port = htons(port);
  std::memcpy(&to.sin6_addr, dst.data(), 16);
  iovec iov{const_cast<uint8_t*>(data), len};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_name = &to;
  msg.msg_namelen = sizeof(to);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = IPPROTO_IPV6;
  c->cmsg_type = IPV6_HOPLIMIT;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &hop_limit, sizeof(int));
  return sendmsg(fd, &msg, 0) >= 0;
}

// An ICMPv6 error that ends the trace: Destination Unreachable from the
// destination itself, or Port Unreachable (only the destination's host
// sends that for our UDP probe, from the SIR address it owns).
bool EndsTrace(uint8_t type, uint8_t code, const Ipv6Bytes& from,
               const Ipv6Bytes& destination) {
  return type == kIcmp6DestUnreachable && (from == destination || code == 4);
}

struct Probe {
  int ttl = 0;
  int query = 0;
  absl::Time sent;
  bool in_flight = false;
  bool done = false;
};

}  // namespace

namespace {

// The raw sockets: ICMPv6 (filtered to errors and echo replies), UDP (an
// unconnected, bound socket), TCP (checksum filled by the kernel).
absl::Status OpenRaw(int* icmp_out, int* tcp_out) {
  const int icmp =
      socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMPV6);
  if (icmp < 0) return SocketError("raw ICMPv6 socket", errno);
  icmp6_filter filter;
  ICMP6_FILTER_SETBLOCKALL(&filter);
  for (int type : {ICMP6_DST_UNREACH, ICMP6_PACKET_TOO_BIG, ICMP6_TIME_EXCEEDED,
                   ICMP6_PARAM_PROB, ICMP6_ECHO_REPLY}) {
    ICMP6_FILTER_SETPASS(type, &filter);
  }
  const int tcp =
      socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  const int offset = 16;  // the kernel fills the TCP checksum
  if (setsockopt(icmp, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof(filter)) <
          0 ||
      tcp < 0 ||
      setsockopt(tcp, IPPROTO_IPV6, IPV6_CHECKSUM, &offset, sizeof(offset))) {
    const int err = errno;
    close(icmp);
    if (tcp >= 0) close(tcp);
    return SocketError("raw TCP socket", err);
  }
  *icmp_out = icmp;
  *tcp_out = tcp;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Prober>> Prober::Open(bool allow_raw) {
  const int udp =
      socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  if (udp < 0 || bind(udp, reinterpret_cast<sockaddr*>(&any), sizeof(any))) {
    const int err = errno;
    if (udp >= 0) close(udp);
    return SocketError("UDP probe socket", err);
  }
  int icmp = -1, tcp = -1;
  absl::Status raw = absl::PermissionDeniedError("raw sockets not asked for");
  if (allow_raw) raw = OpenRaw(&icmp, &tcp);
  if (raw.ok()) return std::unique_ptr<Prober>(new Prober(icmp, udp, tcp));
  if (!absl::IsPermissionDenied(raw)) {
    close(udp);
    return raw;
  }
  // Unprivileged: errors from the sockets' error queues; ICMPv6 echo on a
  // ping socket when ping_group_range allows it (else no ICMP probes).
  const int on = 1;
  if (setsockopt(udp, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof(on)) < 0) {
    const int err = errno;
    close(udp);
    return SocketError("IPV6_RECVERR on the UDP probe socket", err);
  }
  icmp = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                IPPROTO_ICMPV6);
  if (icmp >= 0 &&
      setsockopt(icmp, IPPROTO_IPV6, IPV6_RECVERR, &on, sizeof(on)) < 0) {
    close(icmp);
    icmp = -1;
  }
  return std::unique_ptr<Prober>(new Prober(icmp, udp, -1));
}

std::string Prober::Limitations() const {
  if (privileged()) return "";
  std::string out =
      "without CAP_NET_RAW: no TCP probes; of each quoted packet only the "
      "destination, ports and echo sequence (no flow label, extension "
      "headers or RFC 4884 objects)";
  if (icmp_ < 0) {
    absl::StrAppend(&out,
                    "; no ICMP probes (net.ipv4.ping_group_range does not "
                    "include this process's group)");
  }
  return out;
}

void Prober::ReadErrorQueue(
    int fd,
    const std::function<void(ProbeResult, const QuotedPacket&)>& on_error) {
  for (int n = 0; n < 256; ++n) {
    uint8_t data[256];
    alignas(cmsghdr) char control[512];
    sockaddr_in6 original{};
    iovec iov{data, sizeof(data)};
    msghdr msg{};
    msg.msg_name = &original;
    msg.msg_namelen = sizeof(original);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    const ssize_t len = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (len < 0) return;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr;
         c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != IPPROTO_IPV6 || c->cmsg_type != IPV6_RECVERR ||
          c->cmsg_len < CMSG_LEN(sizeof(sock_extended_err))) {
        continue;
      }
      const auto* err =
          reinterpret_cast<const sock_extended_err*>(CMSG_DATA(c));
      if (err->ee_origin != SO_EE_ORIGIN_ICMP6) continue;
      const auto* offender =
          reinterpret_cast<const sockaddr_in6*>(SO_EE_OFFENDER(err));
      if (c->cmsg_len <
              CMSG_LEN(sizeof(sock_extended_err) + sizeof(sockaddr_in6)) ||
          offender->sin6_family != AF_INET6) {
        continue;
      }
      ProbeResult r;
      Ipv6Bytes from;
      std::memcpy(from.data(), &offender->sin6_addr, 16);
      r.from = from;
      r.icmp_type = err->ee_type;
      r.icmp_code = err->ee_code;
      QuotedPacket q;
      std::memcpy(q.destination.data(), &original.sin6_addr, 16);
      if (fd == udp_) {
        // The quoted source port is this socket's (the caller sets it).
        q.protocol = IPPROTO_UDP;
        q.destination_port = ntohs(original.sin6_port);
      } else {
        q.protocol = IPPROTO_ICMPV6;
        if (len >= 8) {
          q.icmp_type = data[0];
          q.echo_sequence = Be16(data + 6);
        }
      }
      on_error(std::move(r), q);
    }
  }
}

Prober::~Prober() {
  for (int fd : {icmp_, udp_, tcp_}) {
    if (fd >= 0) close(fd);
  }
}

absl::Status Prober::Run(
    const ProbeOptions& o,
    const std::function<void(const ProbeResult&)>& on_result,
    const std::atomic<bool>* cancel) {
  if (o.first_hop < 1 || o.max_hops < o.first_hop || o.max_hops > 255 ||
      o.queries < 1 || o.queries > 10 || o.in_flight < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("probe options: first_hop ", o.first_hop, ", max_hops ",
                     o.max_hops, ", queries ", o.queries,
                     " (want 1 <= first <= max <= 255, 1..10 "
                     "queries)"));
  }
  if (!privileged() && o.protocol == ProbeProtocol::kTcp) {
    return absl::FailedPreconditionError(
        "protocol tcp: TCP SYN probes need CAP_NET_RAW (use udp or icmp)");
  }
  if (o.protocol == ProbeProtocol::kIcmp && icmp_ < 0) {
    return absl::FailedPreconditionError(
        "protocol icmp: without CAP_NET_RAW ICMPv6 echo needs a ping socket, "
        "and net.ipv4.ping_group_range does not include this process's "
        "group (use udp)");
  }
  std::vector<Probe> probes;
  for (int ttl = o.first_hop; ttl <= o.max_hops; ++ttl) {
    for (int q = 0; q < o.queries; ++q) {
      Probe p;
      p.ttl = ttl;
      p.query = q;
      probes.push_back(p);
    }
  }
  const size_t total = probes.size();
  std::mt19937 rng(std::random_device{}());
  sockaddr_in6 local{};
  socklen_t local_len = sizeof(local);
  getsockname(udp_, reinterpret_cast<sockaddr*>(&local), &local_len);
  const uint16_t udp_source = ntohs(local.sin6_port);
  const uint16_t udp_base =
      o.port != 0 ? o.port : kDefaultUdpPort;  // destination port of probe 0
  const uint16_t tcp_port = o.port != 0 ? o.port : kDefaultTcpPort;
  const uint16_t echo_id = static_cast<uint16_t>(rng());
  const uint16_t tcp_base = static_cast<uint16_t>(
      32768 + rng() % (28000 - std::min<size_t>(total, 2000)));
  const uint32_t seq_base = static_cast<uint32_t>(rng());
  if (o.protocol == ProbeProtocol::kUdp && udp_base + total > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("port: ", udp_base, " + ", total, " probes passes 65535"));
  }

  int reached_ttl = INT_MAX;
  size_t next = 0, in_flight = 0, finished = 0;
  // The fastest answer at each hop limit, for the adaptive wait.
  std::vector<absl::Duration> answered_rtt(o.max_hops + 2,
                                           absl::InfiniteDuration());
  absl::Time next_send = absl::InfinitePast();
  // Whether every probe with a lower hop limit than `ttl` is resolved.
  auto lower_done = [&](int ttl) {
    for (const Probe& q : probes) {
      if (q.ttl >= ttl) break;  // probes are in hop limit order
      if (!q.done) return false;
    }
    return true;
  };
  std::vector<ProbeResult> held;  // the destination's answers, held
  auto release_held = [&]() {
    for (auto it = held.begin(); it != held.end();) {
      if (it->ttl > reached_ttl) {
        it = held.erase(it);
      } else if (lower_done(it->ttl)) {
        on_result(*it);
        it = held.erase(it);
      } else {
        ++it;
      }
    }
  };
  auto finish = [&](size_t i, ProbeResult r) {
    Probe& p = probes[i];
    if (p.done) return;
    p.done = true;
    if (p.in_flight) --in_flight;
    p.in_flight = false;
    ++finished;
    r.ttl = p.ttl;
    r.query = p.query;
    if (r.from) {
      answered_rtt[p.ttl] = std::min(answered_rtt[p.ttl], r.rtt);
    }
    if (r.reached) reached_ttl = std::min(reached_ttl, p.ttl);
    // Answers arrive out of order: the destination's answer to a higher
    // hop limit is held until every lower one is resolved, so that nothing
    // beyond the first hop that reached the destination is reported.
    if (r.reached && !lower_done(p.ttl)) {
      held.push_back(std::move(r));
    } else if (p.ttl <= reached_ttl) {
      on_result(r);
    }
    release_held();
  };
  auto send_once = [&](size_t i) {
    Probe& p = probes[i];
    bool ok = false;
    uint8_t buf[64] = {};
    switch (o.protocol) {
      case ProbeProtocol::kUdp:
        ok = SendWithHopLimit(udp_, o.destination,
                              static_cast<uint16_t>(udp_base + i),
                              reinterpret_cast<const uint8_t*>(kPayload),
                              sizeof(kPayload), p.ttl);
        break;
      case ProbeProtocol::kIcmp: {
        buf[0] = kIcmp6EchoRequest;
        PutBe16(buf + 4, echo_id);
        PutBe16(buf + 6, static_cast<uint16_t>(i));
        std::memcpy(buf + 8, kPayload, sizeof(kPayload));
        ok = SendWithHopLimit(icmp_, o.destination, 0, buf,
                              8 + sizeof(kPayload), p.ttl);
        break;
      }
      case ProbeProtocol::kTcp:
        PutBe16(buf, static_cast<uint16_t>(tcp_base + i));
        PutBe16(buf + 2, tcp_port);
        PutBe32(buf + 4, seq_base + static_cast<uint32_t>(i));
        buf[12] = 5 << 4;  // 20-byte header
        buf[13] = 0x02;    // SYN
        PutBe16(buf + 14, 65535);
        ok = SendWithHopLimit(tcp_, o.destination, 0, buf, 20, p.ttl);
        break;
    }
    return ok;
  };
  auto send = [&](size_t i) {
    Probe& p = probes[i];
    // Unprivileged sockets hold the last ICMPv6 error (sk_err) until the
    // next send, which fails with it once: send again.
    bool ok = send_once(i);
    for (int retry = 0; !ok && !privileged() && retry < 2; ++retry) {
      ok = send_once(i);
    }
    p.sent = absl::Now();
    p.in_flight = true;
    ++in_flight;
    if (!ok) {  // e.g. no route: the probe is lost, not the trace
      ProbeResult r;
      finish(i, r);
    }
  };
  // The probe an answer is for, or -1.
  auto match_quote = [&](const QuotedPacket& q) -> long {
    switch (o.protocol) {
      case ProbeProtocol::kUdp:
        if (q.protocol == IPPROTO_UDP && q.source_port == udp_source &&
            q.destination_port && *q.destination_port >= udp_base &&
            *q.destination_port - udp_base < static_cast<long>(total)) {
          return *q.destination_port - udp_base;
        }
        return -1;
      case ProbeProtocol::kIcmp:
        // A ping socket's echo identifier is the kernel's (and the kernel
        // already gave this socket only its own).
        if (q.protocol == IPPROTO_ICMPV6 &&
            (!privileged() || q.echo_id == echo_id) && q.echo_sequence &&
            *q.echo_sequence < total) {
          return *q.echo_sequence;
        }
        return -1;
      case ProbeProtocol::kTcp:
        if (q.protocol == IPPROTO_TCP && q.source_port && q.tcp_sequence &&
            *q.source_port >= tcp_base &&
            *q.source_port - tcp_base < static_cast<long>(total) &&
            *q.tcp_sequence == seq_base + (*q.source_port - tcp_base)) {
          return *q.source_port - tcp_base;
        }
        return -1;
    }
    return -1;
  };
  auto read_icmp = [&]() {
    for (int n = 0; n < 256; ++n) {
      uint8_t buf[1500];
      sockaddr_in6 from{};
      socklen_t from_len = sizeof(from);
      const ssize_t len =
          recvfrom(icmp_, buf, sizeof(buf), 0,
                   reinterpret_cast<sockaddr*>(&from), &from_len);
      if (len < 0) return;
      const absl::Time now = absl::Now();
      auto m = ParseIcmp6(buf, static_cast<size_t>(len));
      if (!m.ok()) continue;  // not ours to judge: someone else's packet
      long i = -1;
      ProbeResult r;
      Ipv6Bytes src;
      std::memcpy(src.data(), &from.sin6_addr, 16);
      if (m->type == kIcmp6EchoReply) {
        if (o.protocol != ProbeProtocol::kIcmp ||
            (privileged() && m->echo_id != echo_id) ||
            m->echo_sequence >= total) {
          continue;
        }
        i = m->echo_sequence;
        r.reached = true;
      } else if (m->quoted) {
        i = match_quote(*m->quoted);
        r.reached = EndsTrace(m->type, m->code, src, o.destination);
        r.quoted = m->quoted;
      }
      if (i < 0 || probes[i].done || !probes[i].in_flight) continue;
      r.from = src;
      r.rtt = now - probes[i].sent;
      r.icmp_type = m->type;
      r.icmp_code = m->code;
      finish(static_cast<size_t>(i), std::move(r));
    }
  };
  auto read_tcp = [&]() {
    for (int n = 0; n < 256; ++n) {
      uint8_t buf[1500];
      sockaddr_in6 from{};
      socklen_t from_len = sizeof(from);
      const ssize_t len =
          recvfrom(tcp_, buf, sizeof(buf), 0,
                   reinterpret_cast<sockaddr*>(&from), &from_len);
      if (len < 0) return;
      const absl::Time now = absl::Now();
      if (len < 20 || std::memcmp(&from.sin6_addr, o.destination.data(), 16)) {
        continue;
      }
      const uint16_t our_port = Be16(buf + 2);
      const uint8_t flags = buf[13];
      if (our_port < tcp_base ||
          our_port - tcp_base >= static_cast<long>(total) ||
          !(flags & 0x14)) {  // want RST or ACK (SYN-ACK)
        continue;
      }
      const size_t i = our_port - tcp_base;
      if (Be32(buf + 8) != seq_base + static_cast<uint32_t>(i) + 1) continue;
      if (probes[i].done || !probes[i].in_flight) continue;
      ProbeResult r;
      r.from = o.destination;
      r.rtt = now - probes[i].sent;
      r.reached = true;
      finish(i, std::move(r));
    }
  };

  // Unprivileged: an error from a socket's queue.
  auto on_queued_error = [&](ProbeResult r, QuotedPacket q) {
    // The kernel queued it on the UDP socket: the quote is from its port.
    if (q.protocol == IPPROTO_UDP) q.source_port = udp_source;
    const long i = match_quote(q);
    if (i < 0 || probes[i].done || !probes[i].in_flight) return;
    r.rtt = absl::Now() - probes[i].sent;
    r.reached = EndsTrace(r.icmp_type, r.icmp_code, *r.from, o.destination);
    r.quoted = q;
    finish(static_cast<size_t>(i), std::move(r));
  };

  while (finished < total) {
    if (cancel != nullptr && cancel->load()) {
      return absl::CancelledError("trace cancelled");
    }
    absl::Time now = absl::Now();
    // Send what the window and the pacing allow.
    while (next < total && in_flight < static_cast<size_t>(o.in_flight) &&
           now >= next_send) {
      if (probes[next].ttl > reached_ttl) {
        probes[next].done = true;  // beyond the destination: not sent
        ++finished;
        ++next;
        continue;
      }
      send(next++);
      next_send = now + o.send_interval;
    }
    // Expire probes whose wait is over.
    absl::Time deadline = absl::InfiniteFuture();
    for (size_t i = 0; i < total; ++i) {
      Probe& p = probes[i];
      if (!p.in_flight) continue;
      if (p.ttl > reached_ttl) {
        p.in_flight = false;
        p.done = true;
        --in_flight;
        ++finished;
        continue;
      }
      // The wait for this probe: at most o.wait, less once this hop or a
      // later one has answered (their round trips bound this one's).
      absl::Duration wait = o.wait;
      if (answered_rtt[p.ttl] != absl::InfiniteDuration()) {
        wait = std::min(wait, std::max(o.min_adaptive_wait,
                                       answered_rtt[p.ttl] * o.here_factor));
      }
      for (int t = p.ttl + 1; t <= o.max_hops; ++t) {
        if (answered_rtt[t] == absl::InfiniteDuration()) continue;
        wait = std::min(wait, std::max(o.min_adaptive_wait,
                                       answered_rtt[t] * o.near_factor));
      }
      if (now - p.sent >= wait) {
        finish(i, ProbeResult{});
      } else {
        deadline = std::min(deadline, p.sent + wait);
      }
    }
    if (finished >= total) break;
    if (next < total && in_flight < static_cast<size_t>(o.in_flight)) {
      deadline = std::min(deadline, next_send);
    }
    const int64_t ms = std::clamp<int64_t>(
        absl::ToInt64Milliseconds(deadline - absl::Now()) + 1, 0, 1000);
    if (privileged()) {
      pollfd fds[2] = {{icmp_, POLLIN, 0}, {tcp_, POLLIN, 0}};
      const int nfds = o.protocol == ProbeProtocol::kTcp ? 2 : 1;
      if (poll(fds, nfds, static_cast<int>(ms)) > 0) {
        if (fds[0].revents & POLLIN) read_icmp();
        if (nfds == 2 && (fds[1].revents & POLLIN)) read_tcp();
      }
    } else {
      // Echo replies arrive on the ping socket; errors on each socket's
      // error queue (POLLERR is always reported).
      const int fd = o.protocol == ProbeProtocol::kIcmp ? icmp_ : udp_;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(ms)) > 0) {
        if (p.revents & POLLERR) ReadErrorQueue(fd, on_queued_error);
        if ((p.revents & POLLIN) && fd == icmp_) read_icmp();
      }
    }
  }
  release_held();
  return absl::OkStatus();
}

}  // namespace ila::trace
