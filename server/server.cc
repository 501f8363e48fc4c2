#include "server/server.h"

#include <grpc/support/log.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/server_interceptor.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/version.h"
#include "server/mapping_service.h"
#include "server/parse_errors.h"
#include "server/stream_service.h"

namespace ila::server {

bool IsLoopbackListenAddress(absl::string_view listen) {
  if (absl::StartsWith(listen, "unix:")) return true;
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
  // Credentials first: a refused listener must not open the database.
  if (!options.tls.enabled() && !options.allow_plaintext &&
      !IsLoopbackListenAddress(options.listen)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "listen: refusing plaintext gRPC on non-loopback address \"",
        options.listen,
        "\": give --ca, --cert and --key (mTLS), or --allow-plaintext to "
        "accept the risk"));
  }
  auto credentials = ServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<IlaServer> s(new IlaServer());
  const std::string sync_mode(storage::SyncModeName(options.store.sync_mode));
  options.store.planner.max_operations = options.max_apply_operations;
  auto store = storage::RocksDbMappingStore::Open(std::move(options.store));
  if (!store.ok()) return store.status();
  s->store_ = *std::move(store);

  s->hub_ = std::make_unique<StreamHub>(s->store_.get(), options.streams);
  s->store_->AddCommitObserver(s->hub_.get());
  if (absl::Status st = s->hub_->Start(); !st.ok()) {
    s->store_->Close();
    return st;
  }
  s->limits_ = std::make_unique<ClientLimits>(options.limits);
  s->auth_ =
      std::make_unique<Authorizer>(options.tls.enabled(), s->limits_.get());
  s->stream_service_ =
      std::make_unique<MappingStreamImpl>(s->hub_.get(), s->auth_.get());
  s->diagnostics_service_ = std::make_unique<DiagnosticsImpl>(
      s->hub_.get(), s->store_.get(), s->auth_.get());

  MappingServiceOptions service_options;
  service_options.max_apply_operations = options.max_apply_operations;
  service_options.sync_mode = sync_mode;
  service_options.auth = s->auth_.get();
  s->mapping_service_ =
      std::make_unique<MappingServiceImpl>(s->store_.get(), service_options);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, *credentials, &s->port_);
  // Bigger requests are refused (RESOURCE_EXHAUSTED) before they are read.
  builder.SetMaxReceiveMessageSize(static_cast<int>(options.max_message_bytes));
  // A request that does not parse gets INVALID_ARGUMENT naming the field.
  InstallProtobufLogHandler();
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  interceptors.push_back(MakeParseErrorInterceptorFactory());
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.RegisterService(s->mapping_service_.get());
  builder.RegisterService(s->stream_service_.get());
  builder.RegisterService(s->diagnostics_service_.get());
  builder.AddChannelArgument(
      GRPC_ARG_KEEPALIVE_TIME_MS,
      static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_time)));
  builder.AddChannelArgument(
      GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
      static_cast<int>(absl::ToInt64Milliseconds(options.keepalive_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  // Let subscribers ping as often as every 10 s without being cut off.
  builder.AddChannelArgument(
      GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    s->server_.reset();
    s->hub_->Stop();
    s->store_->Close();
    return absl::UnavailableError(
        absl::StrCat("listen: cannot serve on \"", options.listen,
                     "\" (address in use, not local, or malformed; want "
                     "host:port or unix:PATH)"));
  }
  if (!options.tls.enabled() && !IsLoopbackListenAddress(options.listen)) {
    ILA_LOG_WARN(
        "INSECURE: serving plaintext gRPC on non-loopback address {} "
        "(--allow-plaintext): anyone who can reach it can change mappings "
        "and read every task's location; use --ca/--cert/--key",
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
    hub_->CloseAll();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
  }
  if (hub_) hub_->Stop();
  if (store_) store_->Close();
  ILA_LOG_INFO("ila-server stopped");
}

}  // namespace ila::server
