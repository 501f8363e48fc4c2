// Per-client limits (docs/security.md): concurrent streams and request
// rate, so that no single client can take the server's memory or its
// writer. A client is its certificate (the SAN URIs, with mTLS) or, in
// plaintext, its IP address. Exceeding a limit is RESOURCE_EXHAUSTED naming
// the limit and its flag.
//
// Thread-safety: thread-safe.
#pragma once

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace grpc {
class ServerContextBase;
}  // namespace grpc

namespace ila::server {

struct ClientLimitOptions {
  int max_streams_per_client = 1024;        // --max-streams-per-client
  double max_requests_per_second = 100000;  // --max-requests-per-second
  double burst_seconds = 1;  // a client may save up this many seconds' worth
  size_t max_tracked_clients = 100000;  // then idle ones are forgotten
  std::function<absl::Time()> clock;    // default absl::Now
};

class ClientLimits {
 public:
  explicit ClientLimits(ClientLimitOptions options);

  // Who the call is from: "cert:<SAN URIs>" with a verified certificate,
  // else "ip:<address>" (the port is left out: one host is one client).
  // `tls`: whether the listener verifies client certificates (without it,
  // the certificate is not looked up).
  static std::string ClientOf(const grpc::ServerContextBase& ctx, bool tls);

  // One request (a unary RPC or a stream's start): OK, or RESOURCE_EXHAUSTED
  // when the client's token bucket is empty.
  absl::Status AdmitRequest(const std::string& client);
  // A stream slot; ReleaseStream() when the stream ends (only after an OK).
  absl::Status AcquireStream(const std::string& client);
  void ReleaseStream(const std::string& client);

 private:
  struct Client {
    double tokens = 0;
    absl::Time refilled;
    int streams = 0;
  };
  Client& Find(const std::string& client, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Refill(Client& c, absl::Time now) const;

  const ClientLimitOptions options_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Client> clients_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ila::server
