#include "server/auth.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"

namespace ila::server {
namespace {

constexpr absl::string_view kRolePrefix = "ila://role/";
constexpr absl::string_view kLocatorPrefix = "ila://locator/";

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kScheduler:
      return "scheduler";
    case Role::kRouter:
      return "router";
    case Role::kHost:
      return "host";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

absl::string_view ActionName(Action action) {
  switch (action) {
    case Action::kWrite:
      return "write mappings";
    case Action::kRead:
      return "read mappings";
    case Action::kSubscribe:
      return "subscribe to the mapping stream";
    case Action::kDiagnose:
      return "run diagnostics";
  }
  return "unknown";
}

bool RoleAllows(Role role, Action action) {
  switch (role) {
    case Role::kAdmin:
      return true;
    case Role::kScheduler:
      return action == Action::kWrite || action == Action::kRead;
    case Role::kRouter:
    case Role::kHost:
      return action == Action::kSubscribe;
    case Role::kOperator:
      return action == Action::kRead || action == Action::kDiagnose;
  }
  return false;
}

absl::StatusOr<Identity> IdentityFromUris(absl::Span<const std::string> uris) {
  Identity id;
  bool have_role = false;
  for (const std::string& uri : uris) {
    absl::string_view rest = uri;
    if (absl::ConsumePrefix(&rest, kRolePrefix)) {
      if (have_role) {
        return absl::UnauthenticatedError(absl::StrCat(
            "client certificate: more than one role URI (\"", uri, "\")"));
      }
      static constexpr Role kRoles[] = {Role::kScheduler, Role::kRouter,
                                        Role::kHost, Role::kOperator,
                                        Role::kAdmin};
      const Role* r = std::find_if(std::begin(kRoles), std::end(kRoles),
                                   [&](Role x) { return RoleName(x) == rest; });
      if (r == std::end(kRoles)) {
        return absl::UnauthenticatedError(
            absl::StrCat("client certificate: role URI \"", uri,
                         "\" is not scheduler, router, host, operator or "
                         "admin"));
      }
      id.role = *r;
      have_role = true;
    } else if (absl::ConsumePrefix(&rest, kLocatorPrefix)) {
      auto loc = ParseLocator(rest);
      if (!loc.ok()) {
        return absl::UnauthenticatedError(
            absl::StrCat("client certificate: locator URI \"", uri,
                         "\": ", loc.status().message()));
      }
      id.locators.push_back(*loc);
    }
  }
  if (!have_role) {
    return absl::UnauthenticatedError(
        "client certificate: no role URI (want a SAN URI "
        "ila://role/<scheduler|router|host|operator|admin>)");
  }
  if (id.role == Role::kHost && id.locators.empty()) {
    return absl::UnauthenticatedError(
        "client certificate: a host certificate names its locators "
        "(SAN URI ila://locator/<locator>); this one names none");
  }
  id.subject = absl::StrJoin(uris, ",");
  return id;
}

absl::Status CheckSubscription(const Identity& who,
                               absl::Span<const Locator> filter_locators) {
  if (who.role != Role::kHost) return absl::OkStatus();
  if (filter_locators.empty()) {
    return absl::PermissionDeniedError(
        "hello.filter.locators: a host may subscribe only to its own "
        "locators; name them");
  }
  for (const Locator& l : filter_locators) {
    if (std::find(who.locators.begin(), who.locators.end(), l) ==
        who.locators.end()) {
      return absl::PermissionDeniedError(
          absl::StrCat("hello.filter.locators: ", FormatLocator(l),
                       " is not a locator of this host's certificate"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Identity> Authorizer::Authorize(
    const grpc::ServerContextBase& ctx, Action action) const {
  auto id = Identify(ctx, action);
  if (id.ok() && limits_ != nullptr) {
    absl::Status admitted =
        limits_->AdmitRequest(ClientLimits::ClientOf(ctx, tls_));
    if (!admitted.ok()) return admitted;
  }
  return id;
}

absl::StatusOr<Identity> Authorizer::Identify(
    const grpc::ServerContextBase& ctx, Action action) const {
  if (!tls_) return Identity{};  // plaintext: loopback or explicitly allowed
  std::shared_ptr<const grpc::AuthContext> auth = ctx.auth_context();
  if (auth == nullptr || !auth->IsPeerAuthenticated()) {
    return absl::UnauthenticatedError(
        "no verified client certificate: connect with --ca, --cert and "
        "--key");
  }
  std::vector<std::string> uris;
  for (const auto& v : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
    uris.emplace_back(v.data(), v.size());
  }
  auto id = IdentityFromUris(uris);
  if (!id.ok()) return id.status();
  if (!RoleAllows(id->role, action)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "role ", RoleName(id->role), " may not ", ActionName(action)));
  }
  return id;
}

}  // namespace ila::server
