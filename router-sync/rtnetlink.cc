#include "router-sync/rtnetlink.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

#include "absl/strings/str_cat.h"

namespace ila::router_sync {
namespace {

// Messages per sendmsg: each is under 200 bytes, the socket buffers hold
// far more; the kernel answers each with an ACK we must read before the
// receive buffer fills.
constexpr size_t kBatchMessages = 128;

// A failure of the socket itself: the errno's text as KernelError words it;
// UNAVAILABLE (the caller retries), PERMISSION_DENIED naming the capability.
absl::Status Errno(const std::string& what, int err) {
  const std::string text(KernelError(what, -err, "").message());
  if (err == EPERM || err == EACCES) {
    return absl::PermissionDeniedError(
        absl::StrCat(text, "; ila-router-sync needs CAP_NET_ADMIN"));
  }
  return absl::UnavailableError(text);
}

}  // namespace

absl::Status KernelError(const std::string& what, int negative_errno,
                         const std::string& message) {
  if (negative_errno == 0) return absl::OkStatus();
  const int err = -negative_errno;
  std::string text =
      absl::StrCat(what, ": ", strerror(err), " (errno ", err, ")");
  if (!message.empty()) absl::StrAppend(&text, ": ", message);
  switch (err) {
    case EPERM:
    case EACCES:
      return absl::PermissionDeniedError(text);
    case EOPNOTSUPP:
      return absl::UnimplementedError(text);
    case ENOENT:
    case ESRCH:
      return absl::NotFoundError(text);
    case EEXIST:
      return absl::AlreadyExistsError(text);
    case EINVAL:
    case ERANGE:
      return absl::InvalidArgumentError(text);
    default:
      return absl::UnavailableError(text);
  }
}

RtNetlink::RtNetlink(mnl_socket* socket) : socket_(socket) {
  port_id_ = mnl_socket_get_portid(socket_);
}

RtNetlink::~RtNetlink() { mnl_socket_close(socket_); }

absl::StatusOr<std::unique_ptr<RtNetlink>> RtNetlink::Open() {
  mnl_socket* s = mnl_socket_open(NETLINK_ROUTE);
  if (s == nullptr) return Errno("opening a NETLINK_ROUTE socket", errno);
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
    const int err = errno;
    mnl_socket_close(s);
    return Errno("binding the NETLINK_ROUTE socket", err);
  }
  int on = 1;
  // CAP_ACK: error ACKs do not echo the request (smaller replies).
  for (int opt : {NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK, NETLINK_CAP_ACK}) {
    if (mnl_socket_setsockopt(s, opt, &on, sizeof(on)) < 0) {
      const int err = errno;
      mnl_socket_close(s);
      return Errno(absl::StrCat("setting netlink socket option ", opt), err);
    }
  }
  // The kernel queues a batch's ACKs while sendmsg runs, before we read:
  // room for them (FORCE passes rmem_max with CAP_NET_ADMIN; the default
  // 208 KiB holds a batch too). A lost ACK ends in a timeout, not a hang.
  const int fd = mnl_socket_get_fd(s);
  const int rcvbuf = 4 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0) {
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  const timeval timeout{5, 0};
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout)) < 0) {
    const int err = errno;
    mnl_socket_close(s);
    return Errno("setting the netlink receive timeout", err);
  }
  return std::unique_ptr<RtNetlink>(new RtNetlink(s));
}

absl::StatusOr<std::vector<IlaRoute>> RtNetlink::DumpRoutes(uint32_t table,
                                                            uint8_t protocol) {
  std::vector<uint8_t> request;
  const uint32_t seq = next_seq_++;
  AppendRouteDump(table, protocol, seq, &request);
  if (mnl_socket_sendto(socket_, request.data(), request.size()) < 0) {
    return Errno("sending a route dump request", errno);
  }
  std::vector<IlaRoute> routes;
  std::vector<uint8_t> buffer(32768);  // the kernel fills up to 32 KiB
  for (;;) {
    const ssize_t n =
        mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (n < 0) return Errno("reading the route dump", errno);
    auto messages = SplitMessages(buffer.data(), static_cast<size_t>(n));
    if (!messages.ok()) return messages.status();
    for (const NetlinkMessage& m : *messages) {
      if (m.seq != seq) continue;  // a late answer to something else
      const uint8_t* data = buffer.data() + m.offset;
      if (m.type == NLMSG_DONE) return routes;
      if (m.type == NLMSG_ERROR) {
        auto ack = DecodeAck(data, m.length);
        if (!ack.ok()) return ack.status();
        return KernelError("route dump", ack->error, ack->message);
      }
      if (m.type != RTM_NEWROUTE) continue;
      auto route = DecodeRoute(data, m.length);
      if (!route.ok()) return route.status();
      if (route->has_value() && (*route)->protocol == protocol &&
          (*route)->table == table) {
        routes.push_back(**route);
      }
    }
  }
}

absl::Status RtNetlink::Exchange(const std::vector<uint8_t>& batch,
                                 uint32_t first_seq, size_t count,
                                 std::vector<absl::Status>* acks) {
  if (mnl_socket_sendto(socket_, batch.data(), batch.size()) < 0) {
    return Errno("sending route changes", errno);
  }
  std::vector<bool> answered(count, false);
  size_t pending = count;
  std::vector<uint8_t> buffer(MNL_SOCKET_BUFFER_SIZE);
  while (pending > 0) {
    const ssize_t n =
        mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (n < 0) return Errno("reading route change acknowledgements", errno);
    auto messages = SplitMessages(buffer.data(), static_cast<size_t>(n));
    if (!messages.ok()) return messages.status();
    for (const NetlinkMessage& m : *messages) {
      if (m.type != NLMSG_ERROR || m.seq < first_seq ||
          m.seq - first_seq >= count) {
        continue;
      }
      const size_t i = m.seq - first_seq;
      if (answered[i]) continue;
      auto ack = DecodeAck(buffer.data() + m.offset, m.length);
      if (!ack.ok()) return ack.status();
      (*acks)[i] = KernelError("", ack->error, ack->message);
      answered[i] = true;
      --pending;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RtNetlink::Result>> RtNetlink::Apply(
    const RoutePlan& plan, uint32_t table, uint8_t protocol) {
  std::vector<Result> results;
  results.reserve(plan.replace.size() + plan.remove.size());
  for (const IlaRoute& r : plan.replace) {
    results.push_back({RouteReplaceCommand(r), absl::OkStatus()});
  }
  for (const SirAddress& d : plan.remove) {
    results.push_back(
        {RouteDeleteCommand(d, table, protocol), absl::OkStatus()});
  }
  const size_t total = results.size();
  for (size_t start = 0; start < total; start += kBatchMessages) {
    const size_t count = std::min(kBatchMessages, total - start);
    const uint32_t first_seq = next_seq_;
    next_seq_ += static_cast<uint32_t>(count);
    std::vector<uint8_t> batch;
    for (size_t i = start; i < start + count; ++i) {
      const uint32_t seq = first_seq + static_cast<uint32_t>(i - start);
      if (i < plan.replace.size()) {
        AppendRouteReplace(plan.replace[i], seq, &batch);
      } else {
        AppendRouteDelete(plan.remove[i - plan.replace.size()], table, protocol,
                          seq, &batch);
      }
    }
    std::vector<absl::Status> acks(count);
    absl::Status s = Exchange(batch, first_seq, count, &acks);
    if (!s.ok()) return s;
    for (size_t i = 0; i < count; ++i) {
      Result& r = results[start + i];
      if (!acks[i].ok()) {
        r.status = absl::Status(acks[i].code(),
                                absl::StrCat(r.operation, acks[i].message()));
      }
    }
  }
  return results;
}

}  // namespace ila::router_sync
