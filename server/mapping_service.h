// MappingServiceImpl: the ila.v1.MappingService gRPC service (callback API)
// over a MappingStore. Writes complete from the store's writer thread once
// durable; reads run on the gRPC callback thread (short RocksDB reads).
//
// Thread-safety: thread-safe; gRPC calls it from many threads.
#pragma once

#include "ila/v1/mapping.grpc.pb.h"
#include "server/auth.h"
#include "storage/mapping_store.h"

namespace ila::server {

struct MappingServiceOptions {
  size_t max_apply_operations = 10000;
  size_t default_page_size = 1000;
  size_t max_page_size = 10000;
  std::string sync_mode = "always";  // reported by Status
  const Authorizer* auth = nullptr;  // required; outlives the service
};

class MappingServiceImpl final : public v1::MappingService::CallbackService {
 public:
  // REQUIRES: `store` outlives the service.
  MappingServiceImpl(storage::MappingStore* store,
                     MappingServiceOptions options);

  grpc::ServerUnaryReactor* RegisterTask(
      grpc::CallbackServerContext* ctx, const v1::RegisterTaskRequest* req,
      v1::RegisterTaskResponse* resp) override;
  grpc::ServerUnaryReactor* MoveTask(grpc::CallbackServerContext* ctx,
                                     const v1::MoveTaskRequest* req,
                                     v1::MoveTaskResponse* resp) override;
  grpc::ServerUnaryReactor* UnregisterTask(
      grpc::CallbackServerContext* ctx, const v1::UnregisterTaskRequest* req,
      v1::UnregisterTaskResponse* resp) override;
  grpc::ServerUnaryReactor* Apply(grpc::CallbackServerContext* ctx,
                                  const v1::ApplyRequest* req,
                                  v1::ApplyResponse* resp) override;
  grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx,
                                   const v1::LookupRequest* req,
                                   v1::LookupResponse* resp) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* ctx,
                                 const v1::ListRequest* req,
                                 v1::ListResponse* resp) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* ctx,
                                   const v1::StatusRequest* req,
                                   v1::StatusResponse* resp) override;

 private:
  template <typename Fill>
  grpc::ServerUnaryReactor* Commit(
      grpc::CallbackServerContext* ctx,
      absl::StatusOr<storage::WriteRequest> request, Fill fill);

  storage::MappingStore* const store_;
  const MappingServiceOptions options_;
};

// absl::Status -> grpc::Status (the numeric codes are the same).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace ila::server
