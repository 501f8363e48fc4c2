// TLS files for gRPC (docs/security.md): a CA that signs every party, and
// this party's certificate and key, all PEM. With all three a listener
// serves TLS and asks for client certificates (mTLS); a client verifies the
// server against the CA and presents its own certificate. With none the
// connection is plaintext (refused on non-loopback listeners unless
// --allow-plaintext).
//
// Thread-safety: plain functions; no shared state.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace grpc {
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace ila {

struct TlsFiles {
  std::string ca;    // --ca
  std::string cert;  // --cert
  std::string key;   // --key
  bool enabled() const { return !ca.empty() || !cert.empty() || !key.empty(); }
};

struct TlsPem {
  std::string ca, cert, key;
};

// Reads the three files; INVALID_ARGUMENT naming the flag when only some are
// given, a file cannot be read, or it holds no PEM block of the right kind.
absl::StatusOr<TlsPem> LoadTlsFiles(const TlsFiles& files);

// Client credentials: TLS with `files` when enabled, plaintext otherwise.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const TlsFiles& files);

// Server credentials: TLS requesting and verifying client certificates when
// enabled (a call without one is refused by the RPC: UNAUTHENTICATED),
// plaintext otherwise.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& files);

}  // namespace ila
