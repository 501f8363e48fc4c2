// ila-router-sync's netlink sockets (libmnl):
// - NetlinkSocket: one socket of a netlink bus that sends many messages per
//   sendmsg, with one sequence number and ACK each, and keeps every
//   message's outcome (the kernel's errno and, with NETLINK_EXT_ACK, its
//   message), so one refused entry never hides another; and dumps.
// - RtNetlink (NETLINK_ROUTE): dumps the ILA routes of one protocol and
//   table, applies a RoutePlan.
// - IlaGenl (NETLINK_GENERIC, family "ila"): dumps and applies a host's ILA
//   translation entries.
//
// Thread-safety: not thread-safe; each object has one owner thread.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "router-sync/reconcile.h"
#include "router-sync/route_codec.h"

struct mnl_socket;

namespace ila::router_sync {

// The outcome of one planned operation.
struct NetlinkResult {
  // As an `ip` command. The netlink path writes it only for refused
  // operations (formatting every route costs about as much as programming
  // it: the device name alone is a syscall); --dry-run always.
  std::string operation;
  absl::Status status;  // the kernel's answer
};

class NetlinkSocket {
 public:
  // `bus` is NETLINK_ROUTE or NETLINK_GENERIC. PERMISSION_DENIED naming
  // CAP_NET_ADMIN when the socket cannot be bound or configured for lack of
  // privilege; UNAVAILABLE for other errors.
  static absl::StatusOr<std::unique_ptr<NetlinkSocket>> Open(int bus);
  ~NetlinkSocket();

  // One operation: how to encode it with a sequence number, and its `ip`
  // command (asked for only when the kernel refuses it).
  struct Operation {
    std::function<void(uint32_t seq, std::vector<uint8_t>* out)> encode;
    std::function<std::string()> describe;
  };
  // Sends the operations in batches and returns each one's outcome. A
  // transport failure (the socket itself) is the error.
  absl::StatusOr<std::vector<NetlinkResult>> Apply(
      const std::vector<Operation>& operations);

  // Sends a request built with `seq` and calls `on_message` for each reply
  // message of that sequence until NLMSG_DONE; an NLMSG_ERROR ends the dump
  // with the kernel's error, named by `what`.
  absl::Status Dump(
      const std::string& what,
      const std::function<void(uint32_t seq, std::vector<uint8_t>*)>& request,
      const std::function<absl::Status(const NetlinkMessage& m,
                                       const uint8_t* data)>& on_message);
  // The errno the kernel ended the last dump with (0: none).
  int last_dump_errno() const { return last_dump_errno_; }

 private:
  explicit NetlinkSocket(mnl_socket* socket) : socket_(socket) {}
  // Sends `batch` (messages with sequence numbers first_seq..) and reads one
  // ACK per message into `acks` (indexed from first_seq).
  absl::Status Exchange(const std::vector<uint8_t>& batch, uint32_t first_seq,
                        size_t count, std::vector<absl::Status>* acks);

  mnl_socket* socket_;
  uint32_t next_seq_ = 1;
  int last_dump_errno_ = 0;
};

class RtNetlink {
 public:
  static absl::StatusOr<std::unique_ptr<RtNetlink>> Open();

  // Our routes: IPv6 /128 ILA routes with `protocol` in `table` (the kernel
  // filters with NETLINK_GET_STRICT_CHK; the result is filtered again).
  absl::StatusOr<std::vector<IlaRoute>> DumpRoutes(uint32_t table,
                                                   uint8_t protocol);

  // Applies the plan: replaces first, then removes. Per-route refusals are
  // in the results.
  absl::StatusOr<std::vector<NetlinkResult>> Apply(const RoutePlan& plan,
                                                   uint32_t table,
                                                   uint8_t protocol);

 private:
  explicit RtNetlink(std::unique_ptr<NetlinkSocket> s) : s_(std::move(s)) {}
  std::unique_ptr<NetlinkSocket> s_;
};

// How a dump is repeated while the kernel resizes the hash table it walks:
// the walk then ends with EAGAIN ("the application needs to deal with
// this", net/ipv6/ila/ila_xlat.c), and every new walk does too until the
// kernel's resize worker has finished. That worker needs the CPU, so the
// dump waits before each new attempt: first_pause, doubled each time, at
// most max_pause; at most max_attempts in all (the defaults wait ~1.3 s).
struct DumpRetryPolicy {
  int max_attempts = 12;
  absl::Duration first_pause = absl::Milliseconds(1);
  absl::Duration max_pause = absl::Milliseconds(200);
  std::function<void(absl::Duration)> sleep = [](absl::Duration d) {
    absl::SleepFor(d);
  };
};

// Runs `attempt` (one whole dump: its status, and the kernel's errno in
// *kernel_errno, 0 for none) until it succeeds, fails with anything but
// EAGAIN, or has failed max_attempts times; the last failure then says how
// many attempts were made over how long.
absl::Status RepeatWhileTableResizes(
    const DumpRetryPolicy& policy,
    const std::function<absl::Status(int* kernel_errno)>& attempt);

// Keeps one entry per key of the kernel's table (locator_match, ifindex):
// the last one seen, at the place of the first; returns how many it
// dropped. A translation dump needs it: when the kernel's table is resized
// between two parts of a dump, the kernel's walk starts over at the first
// bucket of the new table and sends earlier entries again without saying
// so (ila_nl_dump does not check rhashtable_walk_start's EAGAIN).
size_t DropRepeatedXlatEntries(std::vector<IlaXlatEntry>* entries);

class IlaGenl {
 public:
  // Resolves the "ila" family: UNIMPLEMENTED when the kernel has none.
  static absl::StatusOr<std::unique_ptr<IlaGenl>> Open();

  // Every translation entry of the network namespace, once each (a dump
  // that meets a resize of the kernel's table is repeated as `retry` says;
  // entries a restarted walk sent twice are dropped).
  absl::StatusOr<std::vector<IlaXlatEntry>> Dump(
      const DumpRetryPolicy& retry = DumpRetryPolicy());

  // Removes first, then adds (the kernel has no replace: a changed entry is
  // in both lists).
  absl::StatusOr<std::vector<NetlinkResult>> Apply(const XlatPlan& plan);

 private:
  IlaGenl(std::unique_ptr<NetlinkSocket> s, uint16_t family)
      : s_(std::move(s)), family_(family) {}
  std::unique_ptr<NetlinkSocket> s_;
  uint16_t family_;
};

// The kernel's answer as a status: OK for 0; otherwise the errno's code and
// text plus the extended message, prefixed with `what`.
absl::Status KernelError(const std::string& what, int negative_errno,
                         const std::string& message);

}  // namespace ila::router_sync
