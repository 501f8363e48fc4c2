// Authorization of RPCs by the client certificate's role (docs/security.md).
//
// With TLS, every client presents a certificate signed by the CA; its role
// and, for host agents, its locators are SAN URIs:
//   ila://role/scheduler | router | host | operator | admin   (exactly one)
//   ila://locator/2001:db8:1:0                                (host: 1+)
// Each RPC names an Action; Authorize() answers UNAUTHENTICATED without a
// verified certificate (or one without a valid role) and PERMISSION_DENIED
// when the role may not do it:
//   write     (RegisterTask, MoveTask, UnregisterTask, Apply): scheduler, admin
//   read      (Lookup, List, Status):             scheduler, operator, admin
//   subscribe (Subscribe, its Acks and Nacks):    router, host, admin
//   diagnose  (ListSubscribers, Trace):           operator, admin
// A host may subscribe only with a locator filter inside its certificate's
// locators (CheckSubscription). Without TLS (plaintext: loopback or
// --allow-plaintext) every caller is admin. Rate limits apply either way.
//
// Thread-safety: Authorizer is immutable after construction; the functions
// are pure.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "common/address.h"
#include "server/limits.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace ila::server {

enum class Role { kScheduler, kRouter, kHost, kOperator, kAdmin };
enum class Action { kWrite, kRead, kSubscribe, kDiagnose };

absl::string_view RoleName(Role role);
absl::string_view ActionName(Action action);
bool RoleAllows(Role role, Action action);

struct Identity {
  Role role = Role::kAdmin;
  std::vector<Locator> locators;  // a host's own locators
  std::string subject;            // for logs: the certificate's names
};

// The identity in a certificate's SAN URIs; UNAUTHENTICATED naming the URI
// when there is no role, more than one, an unknown one, a bad locator, or a
// host without locators. URIs of other schemes are ignored.
absl::StatusOr<Identity> IdentityFromUris(absl::Span<const std::string> uris);

// A host's subscription filter must name only its own locators (and at
// least one); other roles may subscribe to anything.
absl::Status CheckSubscription(const Identity& who,
                               absl::Span<const Locator> filter_locators);

// Admits a call: the role (above), then the client's request rate
// (server/limits.h) when `limits` is given.
class Authorizer {
 public:
  // `tls`: whether the listener is TLS with client certificates.
  // REQUIRES: `limits` (may be null) outlives the Authorizer.
  explicit Authorizer(bool tls, ClientLimits* limits = nullptr)
      : tls_(tls), limits_(limits) {}
  bool tls() const { return tls_; }
  ClientLimits* limits() const { return limits_; }
  absl::StatusOr<Identity> Authorize(const grpc::ServerContextBase& ctx,
                                     Action action) const;

 private:
  absl::StatusOr<Identity> Identify(const grpc::ServerContextBase& ctx,
                                    Action action) const;

  const bool tls_;
  ClientLimits* const limits_;
};

}  // namespace ila::server
