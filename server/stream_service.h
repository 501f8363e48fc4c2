// The ila.v1.MappingStream service (Subscribe, a raw-bytes bidi stream so
// that serialized Updates are shared between subscribers) and the
// ila.v1.Diagnostics service, both over a StreamHub.
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
  explicit DiagnosticsImpl(StreamHub* hub) : hub_(hub) {}
  grpc::ServerUnaryReactor* ListSubscribers(
      grpc::CallbackServerContext* ctx, const v1::ListSubscribersRequest* req,
      v1::ListSubscribersResponse* resp) override;

 private:
  StreamHub* const hub_;
};

}  // namespace ila::server
