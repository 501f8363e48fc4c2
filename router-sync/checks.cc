#include "router-sync/checks.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/ila.h>
#include <string.h>
#include <sys/utsname.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace ila::router_sync {
namespace {

constexpr int kCapNetAdmin = 12;

// 1: the family exists; 0: it does not (ENOENT); -errno otherwise.
int GenlFamilyExists(const char* name) {
  mnl_socket* s = mnl_socket_open(NETLINK_GENERIC);
  if (s == nullptr) return -errno;
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
    const int err = errno;
    mnl_socket_close(s);
    return -err;
  }
  std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = GENL_ID_CTRL;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nlh->nlmsg_seq = 1;
  auto* genl = static_cast<genlmsghdr*>(
      mnl_nlmsg_put_extra_header(nlh, sizeof(genlmsghdr)));
  genl->cmd = CTRL_CMD_GETFAMILY;
  genl->version = 1;
  mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, name);
  int result = -EIO;
  if (mnl_socket_sendto(s, nlh, nlh->nlmsg_len) < 0) {
    result = -errno;
  } else {
    // The reply: NEWFAMILY then an ACK, or an error.
    for (int i = 0; i < 4; ++i) {
      const ssize_t n = mnl_socket_recvfrom(s, buf.data(), buf.size());
      if (n < static_cast<ssize_t>(sizeof(nlmsghdr))) {
        result = n < 0 ? -errno : -EIO;
        break;
      }
      const auto* reply = reinterpret_cast<const nlmsghdr*>(buf.data());
      if (reply->nlmsg_type == GENL_ID_CTRL) {
        result = 1;
        break;
      }
      if (reply->nlmsg_type == NLMSG_ERROR &&
          reply->nlmsg_len >= sizeof(nlmsghdr) + sizeof(nlmsgerr)) {
        const auto* err =
            static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(reply));
        if (err->error == 0) continue;  // the ACK after NEWFAMILY
        result = err->error == -ENOENT ? 0 : err->error;
        break;
      }
    }
  }
  mnl_socket_close(s);
  return result;
}

bool IlaModuleInstalled() {
  utsname u;
  if (uname(&u) != 0) return false;
  const std::string dir =
      absl::StrCat("/lib/modules/", u.release, "/kernel/net/ipv6/ila/");
  for (const char* name : {"ila.ko", "ila.ko.xz", "ila.ko.zst", "ila.ko.gz"}) {
    std::error_code ec;
    if (std::filesystem::exists(dir + name, ec)) return true;
  }
  return false;
}

}  // namespace

absl::Status CheckNetAdmin() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    absl::string_view v = line;
    if (!absl::ConsumePrefix(&v, "CapEff:")) continue;
    uint64_t caps = 0;
    if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(v), &caps)) break;
    if (caps & (uint64_t{1} << kCapNetAdmin)) return absl::OkStatus();
    return absl::PermissionDeniedError(
        "ila-router-sync needs CAP_NET_ADMIN to program routes (run it as "
        "root, or from deploy/ila-router-sync.service, or use --dry-run)");
  }
  return absl::PermissionDeniedError(
      "could not read CapEff from /proc/self/status to check CAP_NET_ADMIN");
}

absl::Status CheckIlaSupport() {
  const int found = GenlFamilyExists(ILA_GENL_NAME);
  if (found == 1) return absl::OkStatus();
  if (found < 0) {
    return absl::UnavailableError(
        absl::StrCat("asking the kernel for the \"ila\" netlink family: ",
                     strerror(-found)));
  }
  if (IlaModuleInstalled()) {
    return absl::FailedPreconditionError(
        "the kernel's ila module is not loaded (try `modprobe ila`)");
  }
  return absl::UnimplementedError(
      "this kernel has no ILA support (CONFIG_IPV6_ILA; EOPNOTSUPP): "
      "ila-router-sync cannot program ILA routes here");
}

}  // namespace ila::router_sync
