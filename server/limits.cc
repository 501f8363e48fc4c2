#include "server/limits.h"

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace ila::server {

ClientLimits::ClientLimits(ClientLimitOptions options)
    : options_([&] {
        if (!options.clock) options.clock = [] { return absl::Now(); };
        return std::move(options);
      }()) {}

std::string ClientLimits::ClientOf(const grpc::ServerContextBase& ctx,
                                   bool tls) {
  std::shared_ptr<const grpc::AuthContext> auth;
  if (tls) auth = ctx.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    std::string key = "cert:";
    for (const auto& v :
         auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
      absl::StrAppend(&key, absl::string_view(v.data(), v.size()), ",");
    }
    for (const auto& v : auth->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
      absl::StrAppend(&key, "cn=", absl::string_view(v.data(), v.size()));
    }
    return key;
  }
  // "ipv4:1.2.3.4:5", "ipv6:[::1]:5", "unix:..." -> without the port.
  std::string peer = ctx.peer();
  if (peer.rfind("ipv", 0) == 0) {
    const size_t colon = peer.rfind(':');
    if (colon != std::string::npos && colon > 5) peer.resize(colon);
  }
  return "ip:" + peer;
}

void ClientLimits::Refill(Client& c, absl::Time now) const {
  const double rate = options_.max_requests_per_second;
  const double cap = std::max(1.0, rate * options_.burst_seconds);
  const double elapsed = absl::ToDoubleSeconds(now - c.refilled);
  if (elapsed > 0) {
    c.tokens = std::min(cap, c.tokens + elapsed * rate);
    c.refilled = now;
  }
}

ClientLimits::Client& ClientLimits::Find(const std::string& client,
                                         absl::Time now) {
  auto it = clients_.find(client);
  if (it != clients_.end()) return it->second;
  if (clients_.size() >= options_.max_tracked_clients) {
    // Forget clients with no stream whose bucket is full again: they are
    // indistinguishable from new ones. Bounded memory for many clients.
    absl::erase_if(clients_, [&](auto& kv) {
      Refill(kv.second, now);
      return kv.second.streams == 0 &&
             kv.second.tokens >=
                 options_.max_requests_per_second * options_.burst_seconds;
    });
  }
  Client& c = clients_[client];
  c.tokens =
      std::max(1.0, options_.max_requests_per_second * options_.burst_seconds);
  c.refilled = now;
  return c;
}

absl::Status ClientLimits::AdmitRequest(const std::string& client) {
  const absl::Time now = options_.clock();
  absl::MutexLock l(&mu_);
  Client& c = Find(client, now);
  Refill(c, now);
  if (c.tokens < 1) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("client %s is over its request rate of %g per second "
                        "(--max-requests-per-second); slow down and retry",
                        client, options_.max_requests_per_second));
  }
  c.tokens -= 1;
  return absl::OkStatus();
}

absl::Status ClientLimits::AcquireStream(const std::string& client) {
  const absl::Time now = options_.clock();
  absl::MutexLock l(&mu_);
  Client& c = Find(client, now);
  if (c.streams >= options_.max_streams_per_client) {
    return absl::ResourceExhaustedError(
        absl::StrCat("client ", client, " has ", c.streams,
                     " streams open, the limit (--max-streams-per-client)"));
  }
  ++c.streams;
  return absl::OkStatus();
}

void ClientLimits::ReleaseStream(const std::string& client) {
  absl::MutexLock l(&mu_);
  auto it = clients_.find(client);
  if (it != clients_.end() && it->second.streams > 0) --it->second.streams;
}

}  // namespace ila::server
