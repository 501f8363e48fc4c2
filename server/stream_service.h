// The ila.v1.MappingStream service (Subscribe, a raw-bytes bidi stream so
// that serialized Updates are shared between subscribers) and the
// ila.v1.Diagnostics service (subscribers, and Trace), over a StreamHub.
//
// Thread-safety: thread-safe; gRPC calls them from many threads.
#pragma once

#include "ila/v1/diagnostics.grpc.pb.h"
#include "ila/v1/stream.grpc.pb.h"
#include "server/auth.h"
#include "server/stream_hub.h"

namespace ila::server {

class MappingStreamImpl final
    : public v1::MappingStream::WithRawCallbackMethod_Subscribe<
          v1::MappingStream::Service> {
 public:
  // REQUIRES: `hub` outlives the service's streams.
  // REQUIRES: `auth` outlives the service.
  MappingStreamImpl(StreamHub* hub, const Authorizer* auth)
      : hub_(hub), auth_(auth) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Subscribe(
      grpc::CallbackServerContext* ctx) override;

 private:
  StreamHub* const hub_;
  const Authorizer* const auth_;
};

class DiagnosticsImpl final : public v1::Diagnostics::CallbackService {
 public:
  DiagnosticsImpl(StreamHub* hub, storage::MappingStore* store,
                  const Authorizer* auth)
      : hub_(hub), store_(store), auth_(auth) {}
  grpc::ServerUnaryReactor* ListSubscribers(
      grpc::CallbackServerContext* ctx, const v1::ListSubscribersRequest* req,
      v1::ListSubscribersResponse* resp) override;
  // server/trace_service.h
  grpc::ServerWriteReactor<v1::TraceEvent>* Trace(
      grpc::CallbackServerContext* ctx,
      const v1::TraceRequest* request) override;

 private:
  StreamHub* const hub_;
  storage::MappingStore* const store_;
  const Authorizer* const auth_;
};

}  // namespace ila::server
