// Startup checks of ila-router-sync, run before anything else so that a
// host that cannot work fails at once with a clear reason.
//
// Thread-safety: functions without shared state; thread-safe.
#pragma once

#include "absl/status/status.h"

namespace ila::router_sync {

// PERMISSION_DENIED naming CAP_NET_ADMIN when the process lacks it.
absl::Status CheckNetAdmin();

// OK when the kernel has ILA (the "ila" generic netlink family, registered
// by ila.ko, which also provides the route encapsulation). Otherwise
// FAILED_PRECONDITION "the ila module is not loaded (try `modprobe ila`)"
// when the module is installed, or UNIMPLEMENTED "this kernel has no ILA
// support (EOPNOTSUPP)" when it is not.
absl::Status CheckIlaSupport();

}  // namespace ila::router_sync
