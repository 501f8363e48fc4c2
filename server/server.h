// IlaServer: ila-server's process core: opens the mapping store, serves the
// gRPC services (MappingService, grpc.health.v1, reflection) and shuts both
// down in order: RPCs first (in-flight writes complete), then the store.
// Used by main() and by in-process tests and benchmarks.
//
// Thread-safety: Shutdown() and Wait() may be called from any thread;
// the rest after Start() returns.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/tls.h"
#include "server/auth.h"
#include "server/limits.h"
#include "server/stream_hub.h"
#include "storage/rocksdb_store.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace ila::server {

struct ServerOptions {
  std::string listen = "localhost:50051";  // host:port; port 0 = any
  // TLS with client certificates and roles (server/auth.h) when set;
  // plaintext otherwise, refused on a non-loopback address unless
  // allow_plaintext (then logged loudly).
  TlsFiles tls;
  bool allow_plaintext = false;
  ClientLimitOptions limits;
  size_t max_message_bytes = 4 << 20;  // --max-message-bytes
  storage::RocksDbStoreOptions store;
  size_t max_apply_operations = 10000;
  StreamHubOptions streams;
  // HTTP/2 keepalive pings on idle connections, so half-open streams are
  // noticed within keepalive_time + keepalive_timeout.
  absl::Duration keepalive_time = absl::Seconds(30);
  absl::Duration keepalive_timeout = absl::Seconds(10);
};

class IlaServer {
 public:
  static absl::StatusOr<std::unique_ptr<IlaServer>> Start(
      ServerOptions options);
  ~IlaServer();

  // The bound port (useful with port 0).
  int port() const { return port_; }
  storage::MappingStore* store() const { return store_.get(); }
  StreamHub* hub() const { return hub_.get(); }

  // Stops accepting RPCs, waits up to `grace` for running ones (cancels the
  // rest), then closes the store. Streams are ended first (UNAVAILABLE, so
  // subscribers reconnect elsewhere). Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(10));

 private:
  IlaServer() = default;

  std::unique_ptr<storage::RocksDbMappingStore> store_;
  std::unique_ptr<StreamHub> hub_;
  std::unique_ptr<ClientLimits> limits_;
  std::unique_ptr<Authorizer> auth_;
  std::unique_ptr<grpc::Service> mapping_service_;
  std::unique_ptr<grpc::Service> stream_service_;
  std::unique_ptr<grpc::Service> diagnostics_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// Whether `listen` can only be reached from this machine: loopback
// ("host:port" with localhost, 127.x, ::1) or a Unix socket ("unix:PATH",
// guarded by the file's permissions).
bool IsLoopbackListenAddress(absl::string_view listen);

// Routes gRPC's own log lines into the project's log.
void RouteGrpcLogging();

}  // namespace ila::server
