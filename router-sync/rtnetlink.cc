#include "router-sync/rtnetlink.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/ila.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

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

NetlinkSocket::~NetlinkSocket() { mnl_socket_close(socket_); }

absl::StatusOr<std::unique_ptr<NetlinkSocket>> NetlinkSocket::Open(int bus) {
  const std::string name = bus == NETLINK_ROUTE
                               ? "NETLINK_ROUTE"
                               : absl::StrCat("netlink bus ", bus);
  mnl_socket* s = mnl_socket_open(bus);
  if (s == nullptr)
    return Errno(absl::StrCat("opening a ", name, " socket"), errno);
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
    const int err = errno;
    mnl_socket_close(s);
    return Errno(absl::StrCat("binding the ", name, " socket"), err);
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
  return std::unique_ptr<NetlinkSocket>(new NetlinkSocket(s));
}

absl::Status NetlinkSocket::Dump(
    const std::string& what,
    const std::function<void(uint32_t seq, std::vector<uint8_t>*)>& request,
    const std::function<absl::Status(const NetlinkMessage& m,
                                     const uint8_t* data)>& on_message) {
  last_dump_errno_ = 0;
  std::vector<uint8_t> out;
  const uint32_t seq = next_seq_++;
  request(seq, &out);
  if (mnl_socket_sendto(socket_, out.data(), out.size()) < 0) {
    return Errno(absl::StrCat("sending a ", what, " request"), errno);
  }
  std::vector<uint8_t> buffer(32768);  // the kernel fills up to 32 KiB
  for (;;) {
    const ssize_t n =
        mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (n < 0) return Errno(absl::StrCat("reading the ", what), errno);
    auto messages = SplitMessages(buffer.data(), static_cast<size_t>(n));
    if (!messages.ok()) return messages.status();
    for (const NetlinkMessage& m : *messages) {
      if (m.seq != seq) continue;  // a late answer to something else
      const uint8_t* data = buffer.data() + m.offset;
      if (m.type == NLMSG_DONE) {
        // A dump that failed part-way reports its error here.
        int32_t error = 0;
        if (m.length >= NLMSG_HDRLEN + sizeof(error)) {
          std::memcpy(&error, data + NLMSG_HDRLEN, sizeof(error));
        }
        last_dump_errno_ = error < 0 ? -error : 0;
        return KernelError(what, error < 0 ? error : 0, "");
      }
      if (m.type == NLMSG_ERROR) {
        auto ack = DecodeAck(data, m.length);
        if (!ack.ok()) return ack.status();
        last_dump_errno_ = -ack->error;
        return KernelError(what, ack->error, ack->message);
      }
      if (absl::Status s = on_message(m, data); !s.ok()) return s;
    }
  }
}

absl::Status NetlinkSocket::Exchange(const std::vector<uint8_t>& batch,
                                     uint32_t first_seq, size_t count,
                                     std::vector<absl::Status>* acks) {
  if (mnl_socket_sendto(socket_, batch.data(), batch.size()) < 0) {
    return Errno("sending netlink changes", errno);
  }
  std::vector<bool> answered(count, false);
  size_t pending = count;
  std::vector<uint8_t> buffer(MNL_SOCKET_BUFFER_SIZE);
  while (pending > 0) {
    const ssize_t n =
        mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (n < 0) return Errno("reading netlink acknowledgements", errno);
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

absl::StatusOr<std::vector<NetlinkResult>> NetlinkSocket::Apply(
    const std::vector<Operation>& operations) {
  std::vector<NetlinkResult> results(operations.size());
  const size_t total = operations.size();
  for (size_t start = 0; start < total; start += kBatchMessages) {
    const size_t count = std::min(kBatchMessages, total - start);
    const uint32_t first_seq = next_seq_;
    next_seq_ += static_cast<uint32_t>(count);
    std::vector<uint8_t> batch;
    batch.reserve(count * 192);
    for (size_t i = 0; i < count; ++i) {
      operations[start + i].encode(first_seq + static_cast<uint32_t>(i),
                                   &batch);
    }
    std::vector<absl::Status> acks(count);
    absl::Status s = Exchange(batch, first_seq, count, &acks);
    if (!s.ok()) return s;
    for (size_t i = 0; i < count; ++i) {
      NetlinkResult& r = results[start + i];
      if (!acks[i].ok()) {
        r.operation = operations[start + i].describe();
        r.status = absl::Status(acks[i].code(),
                                absl::StrCat(r.operation, acks[i].message()));
      }
    }
  }
  return results;
}

absl::StatusOr<std::unique_ptr<RtNetlink>> RtNetlink::Open() {
  auto s = NetlinkSocket::Open(NETLINK_ROUTE);
  if (!s.ok()) return s.status();
  return std::unique_ptr<RtNetlink>(new RtNetlink(*std::move(s)));
}

absl::StatusOr<std::vector<IlaRoute>> RtNetlink::DumpRoutes(uint32_t table,
                                                            uint8_t protocol) {
  std::vector<IlaRoute> routes;
  absl::Status s = s_->Dump(
      "route dump",
      [&](uint32_t seq, std::vector<uint8_t>* out) {
        AppendRouteDump(table, protocol, seq, out);
      },
      [&](const NetlinkMessage& m, const uint8_t* data) -> absl::Status {
        if (m.type != RTM_NEWROUTE) return absl::OkStatus();
        auto route = DecodeRoute(data, m.length);
        if (!route.ok()) return route.status();
        if (route->has_value() && (*route)->protocol == protocol &&
            (*route)->table == table) {
          routes.push_back(**route);
        }
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return routes;
}

absl::StatusOr<std::vector<NetlinkResult>> RtNetlink::Apply(
    const RoutePlan& plan, uint32_t table, uint8_t protocol) {
  std::vector<NetlinkSocket::Operation> ops;
  ops.reserve(plan.replace.size() + plan.remove.size());
  for (const IlaRoute& r : plan.replace) {
    ops.push_back({[&r](uint32_t seq, std::vector<uint8_t>* out) {
                     AppendRouteReplace(r, seq, out);
                   },
                   [&r] { return RouteReplaceCommand(r); }});
  }
  for (const SirAddress& d : plan.remove) {
    ops.push_back(
        {[&d, table, protocol](uint32_t seq, std::vector<uint8_t>* out) {
           AppendRouteDelete(d, table, protocol, seq, out);
         },
         [&d, table, protocol] {
           return RouteDeleteCommand(d, table, protocol);
         }});
  }
  return s_->Apply(ops);
}

absl::StatusOr<std::unique_ptr<IlaGenl>> IlaGenl::Open() {
  auto s = NetlinkSocket::Open(NETLINK_GENERIC);
  if (!s.ok()) return s.status();
  uint16_t family = 0;
  absl::Status found = (*s)->Dump(
      "\"ila\" generic netlink family lookup",
      [](uint32_t seq, std::vector<uint8_t>* out) {
        AppendFamilyQuery(ILA_GENL_NAME, seq, out);
      },
      [&](const NetlinkMessage& m, const uint8_t* data) -> absl::Status {
        auto id = DecodeFamilyId(data, m.length);
        if (!id.ok()) return id.status();
        family = *id;
        return absl::OkStatus();
      });
  // The lookup ends with the ACK (error 0), which Dump reports as OK.
  if (!found.ok()) {
    if (absl::IsNotFound(found)) {
      return absl::UnimplementedError(absl::StrCat(
          found.message(), ": this kernel has no ILA translation support"));
    }
    return found;
  }
  if (family == 0) {
    return absl::UnavailableError(
        "the kernel answered the \"ila\" family lookup without an id");
  }
  return std::unique_ptr<IlaGenl>(new IlaGenl(*std::move(s), family));
}

absl::Status RepeatWhileTableResizes(
    const DumpRetryPolicy& policy,
    const std::function<absl::Status(int* kernel_errno)>& attempt) {
  absl::Duration pause = policy.first_pause;
  absl::Duration waited;
  absl::Status last;
  for (int made = 1;; ++made) {
    int kernel_errno = 0;
    last = attempt(&kernel_errno);
    if (last.ok() || kernel_errno != EAGAIN) return last;
    if (made >= policy.max_attempts) {
      return absl::Status(
          last.code(),
          absl::StrCat(last.message(),
                       " (the kernel was resizing its table: ", made,
                       " attempts over ", absl::FormatDuration(waited), ")"));
    }
    ILA_LOG_DEBUG("{}; the kernel is resizing its table, dumping again in {}",
                  last.message(), absl::FormatDuration(pause));
    policy.sleep(pause);
    waited += pause;
    pause = std::min(pause * 2, policy.max_pause);
  }
}

size_t DropRepeatedXlatEntries(std::vector<IlaXlatEntry>* entries) {
  absl::flat_hash_map<std::pair<uint64_t, int32_t>, size_t> first;
  first.reserve(entries->size());
  size_t kept = 0;
  for (size_t i = 0; i < entries->size(); ++i) {
    IlaXlatEntry& e = (*entries)[i];
    auto [it, added] = first.try_emplace(
        std::make_pair(e.locator_match.value, e.ifindex), kept);
    if (added) {
      (*entries)[kept++] = e;
    } else {
      (*entries)[it->second] = e;
    }
  }
  const size_t dropped = entries->size() - kept;
  entries->resize(kept);
  return dropped;
}

absl::StatusOr<std::vector<IlaXlatEntry>> IlaGenl::Dump(
    const DumpRetryPolicy& retry) {
  std::vector<IlaXlatEntry> entries;
  absl::Status s = RepeatWhileTableResizes(retry, [&](int* kernel_errno) {
    entries.clear();  // a walk that restarted may have repeated entries
    absl::Status d = s_->Dump(
        "ILA translation dump",
        [this](uint32_t seq, std::vector<uint8_t>* out) {
          AppendXlatDump(family_, seq, out);
        },
        [&](const NetlinkMessage& m, const uint8_t* data) -> absl::Status {
          if (m.type != family_) return absl::OkStatus();
          auto e = DecodeXlat(data, m.length, family_);
          if (!e.ok()) return e.status();
          entries.push_back(*e);
          return absl::OkStatus();
        });
    *kernel_errno = s_->last_dump_errno();
    return d;
  });
  if (!s.ok()) return s;
  if (const size_t dropped = DropRepeatedXlatEntries(&entries); dropped > 0) {
    ILA_LOG_DEBUG(
        "ILA translation dump: {} entries were sent twice (the kernel's walk "
        "restarted after a resize)",
        dropped);
  }
  return entries;
}

absl::StatusOr<std::vector<NetlinkResult>> IlaGenl::Apply(
    const XlatPlan& plan) {
  std::vector<NetlinkSocket::Operation> ops;
  ops.reserve(plan.remove.size() + plan.add.size());
  for (const IlaXlatEntry& e : plan.remove) {
    ops.push_back(
        {[this, &e](uint32_t seq, std::vector<uint8_t>* out) {
           AppendXlatDelete(family_, e.locator_match, e.ifindex, seq, out);
         },
         [&e] { return XlatDeleteCommand(e.locator_match, e.ifindex); }});
  }
  for (const IlaXlatEntry& e : plan.add) {
    ops.push_back({[this, &e](uint32_t seq, std::vector<uint8_t>* out) {
                     AppendXlatAdd(family_, e, seq, out);
                   },
                   [&e] { return XlatAddCommand(e); }});
  }
  return s_->Apply(ops);
}

}  // namespace ila::router_sync
