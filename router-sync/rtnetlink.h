// RtNetlink: ila-router-sync's NETLINK_ROUTE socket (libmnl). Dumps the ILA
// routes of one protocol and table, and applies a RoutePlan with many
// messages per sendmsg, one sequence number and ACK per message; every
// message's outcome is kept and returned (the kernel's errno and, with
// NETLINK_EXT_ACK, its message), so one refused route never hides another.
//
// Thread-safety: not thread-safe; one owner thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "router-sync/reconcile.h"
#include "router-sync/route_codec.h"

struct mnl_socket;

namespace ila::router_sync {

class RtNetlink {
 public:
  // PERMISSION_DENIED naming CAP_NET_ADMIN when the socket cannot be bound
  // or configured for lack of privilege; UNAVAILABLE for other errors.
  static absl::StatusOr<std::unique_ptr<RtNetlink>> Open();
  ~RtNetlink();

  // Our routes: IPv6 /128 ILA routes with `protocol` in `table` (the kernel
  // filters with NETLINK_GET_STRICT_CHK; the result is filtered again).
  absl::StatusOr<std::vector<IlaRoute>> DumpRoutes(uint32_t table,
                                                   uint8_t protocol);

  // The outcome of one planned operation.
  struct Result {
    std::string operation;  // as an `ip` command
    absl::Status status;    // the kernel's answer
  };
  // Applies the plan: replaces first, then removes. A transport failure
  // (the socket itself) is the error; per-route refusals are in the results.
  absl::StatusOr<std::vector<Result>> Apply(const RoutePlan& plan,
                                            uint32_t table, uint8_t protocol);

 private:
  explicit RtNetlink(mnl_socket* socket);
  // Sends `batch` (messages with sequence numbers first_seq..) and reads one
  // ACK per message into `acks` (indexed from first_seq).
  absl::Status Exchange(const std::vector<uint8_t>& batch, uint32_t first_seq,
                        size_t count, std::vector<absl::Status>* acks);

  mnl_socket* socket_;
  uint32_t port_id_ = 0;
  uint32_t next_seq_ = 1;
};

// The kernel's answer as a status: OK for 0; otherwise the errno's code and
// text plus the extended message, prefixed with `what`.
absl::Status KernelError(const std::string& what, int negative_errno,
                         const std::string& message);

}  // namespace ila::router_sync
