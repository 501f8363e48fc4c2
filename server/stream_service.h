// The ila.v1.MappingStream service (Subscribe, a raw-bytes bidi stream so
// that serialized Updates are shared between subscribers) and the
// ila.v1.Diagnostics service (subscribers, and Trace), over a StreamHub.
//
// Thread-safety: thread-safe; gRPC calls them from many threads.
#pragma once

#include "ila/v1/diagnostics.grpc.pb.h"
#include "ila/v1/stream.grpc.pb.h"
#include "server/stream_hub.h"

namespace ila::server {

class MappingStreamImpl final
    : public v1::MappingStream::WithRawCallbackMethod_Subscribe<
          v1::MappingStream::Service> {
 public:
  // REQUIRES: `hub` outlives the service's streams.
  explicit MappingStreamImpl(StreamHub* hub) : hub_(hub) {}
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* Subscribe(
      grpc::CallbackServerContext* ctx) override;

 private:
  StreamHub* const hub_;
};

class DiagnosticsImpl final : public v1::Diagnostics::CallbackService {
 public:
  DiagnosticsImpl(StreamHub* hub, storage::MappingStore* store)
      : hub_(hub), store_(store) {}
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
};

}  // namespace ila::server
