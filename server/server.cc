#include "server/server.h"

#include <grpc/support/log.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/version.h"
#include "server/mapping_service.h"

namespace ila::server {

bool IsLoopbackListenAddress(absl::string_view listen) {
  absl::string_view host = listen;
  if (size_t colon = listen.rfind(':'); colon != absl::string_view::npos) {
    host = listen.substr(0, colon);
  }
  return host == "localhost" || host == "[::1]" ||
         absl::StartsWith(host, "127.") || host == "ipv6:[::1]";
}

void RouteGrpcLogging() {
  gpr_set_log_function([](gpr_log_func_args* args) {
    switch (args->severity) {
      case GPR_LOG_SEVERITY_DEBUG:
        ILA_LOG_DEBUG("grpc: {} ({}:{})", args->message, args->file,
                      args->line);
        break;
      case GPR_LOG_SEVERITY_INFO:
        ILA_LOG_INFO("grpc: {}", args->message);
        break;
      case GPR_LOG_SEVERITY_ERROR:
        ILA_LOG_ERROR("grpc: {} ({}:{})", args->message, args->file,
                      args->line);
        break;
    }
  });
}

absl::StatusOr<std::unique_ptr<IlaServer>> IlaServer::Start(
    ServerOptions options) {
  std::unique_ptr<IlaServer> s(new IlaServer());
  const std::string sync_mode(storage::SyncModeName(options.store.sync_mode));
  options.store.planner.max_operations = options.max_apply_operations;
  auto store = storage::RocksDbMappingStore::Open(std::move(options.store));
  if (!store.ok()) return store.status();
  s->store_ = *std::move(store);

  MappingServiceOptions service_options;
  service_options.max_apply_operations = options.max_apply_operations;
  service_options.sync_mode = sync_mode;
  s->mapping_service_ =
      std::make_unique<MappingServiceImpl>(s->store_.get(), service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(),
                           &s->port_);
  builder.RegisterService(s->mapping_service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    s->server_.reset();
    s->store_->Close();
    return absl::UnavailableError(absl::StrCat(
        "listen: cannot serve on \"", options.listen,
        "\" (address in use, not local, or malformed; want host:port)"));
  }
  if (!IsLoopbackListenAddress(options.listen)) {
    ILA_LOG_WARN(
        "serving plaintext gRPC on non-loopback address {}: anyone who can "
        "reach it can change mappings",
        options.listen);
  }
  s->server_->GetHealthCheckService()->SetServingStatus(true);
  ILA_LOG_INFO("ila-server {} listening on {} (port {})", Version(),
               options.listen, s->port_);
  return s;
}

IlaServer::~IlaServer() { Shutdown(absl::ZeroDuration()); }

void IlaServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock l(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  if (server_) {
    server_->GetHealthCheckService()->SetServingStatus(false);
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
  }
  if (store_) store_->Close();
  ILA_LOG_INFO("ila-server stopped");
}

}  // namespace ila::server
