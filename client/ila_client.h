// Small helpers shared by ilactl, router-sync and the benchmarks: dialing
// ila-server and turning gRPC results into absl::Status.
//
// Thread-safety: pure functions; channels are thread-safe.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/tls.h"

namespace grpc {
class Channel;
class Status;
}  // namespace grpc

namespace ila::client {

// The server address: `flag` when set, else $ILA_SERVER, else
// localhost:50051.
std::string ResolveServerAddress(const std::string& flag);

// A channel to `address` (host:port or unix:PATH): TLS with a client
// certificate when `tls` is set (docs/security.md), plaintext otherwise.
// INVALID_ARGUMENT naming the flag when the TLS files are incomplete or
// unreadable.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                                    const TlsFiles& tls = {});

// grpc::Status -> absl::Status (same numeric codes).
absl::Status FromGrpc(const grpc::Status& status);

// How `ilactl get KEY` reads KEY: 0x-hex or exactly four groups without
// "::" is an identifier; any other IPv6 address is a SIR address; anything
// else is a task name.
enum class KeyKind { kTask, kIdentifier, kSirAddress };
KeyKind ClassifyKey(absl::string_view key);

}  // namespace ila::client
