// A clear error for a request gRPC could not parse (docs/security.md,
// "Hostile input"). gRPC 1.51's callback API answers a request whose
// protobuf does not parse — typically invalid UTF-8 in a string field,
// which proto3 refuses — with UNIMPLEMENTED and an empty message, before
// any handler runs. The interceptor made here replaces that answer with
// INVALID_ARGUMENT naming the field (taken from protobuf's own log line,
// which this module also routes to the server's log).
//
// Thread-safety: the factory and the interceptors it makes are used by
// gRPC from any thread; InstallProtobufLogHandler is idempotent.
#pragma once

#include <memory>
#include <string>

#include "absl/strings/string_view.h"

namespace grpc::experimental {
class ServerInterceptorFactoryInterface;
}  // namespace grpc::experimental

namespace ila::server {

// Routes protobuf's log lines to the server's log and remembers, per
// thread, the last string field protobuf found invalid UTF-8 in.
void InstallProtobufLogHandler();

// Takes (and clears) the field this thread's last failed parse found
// invalid UTF-8 in: for code that parses a request itself (the stream
// service reads ByteBuffers). "" when none.
std::string TakeUtf8ErrorField();

// The field named by a protobuf log line about invalid UTF-8
// ("ila.v1.RegisterTaskRequest.task"), or "" for any other line.
std::string Utf8ErrorField(absl::string_view protobuf_log_line);

// The error a client gets for a request that did not parse; `field` is
// Utf8ErrorField's answer ("" when unknown).
std::string ParseErrorMessage(absl::string_view field);

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeParseErrorInterceptorFactory();

}  // namespace ila::server
