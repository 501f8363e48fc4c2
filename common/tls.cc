#include "common/tls.h"

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace ila {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& flag,
                                    const std::string& path,
                                    absl::string_view marker) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read \"", path, "\""));
  }
  std::ostringstream s;
  s << in.rdbuf();
  std::string text = s.str();
  if (text.size() > (1 << 20)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": \"", path, "\" is larger than 1 MiB"));
  }
  if (!absl::StrContains(text, "-----BEGIN ") ||
      !absl::StrContains(text, marker)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": \"", path, "\" holds no PEM ", marker, " block"));
  }
  return text;
}

}  // namespace

absl::StatusOr<TlsPem> LoadTlsFiles(const TlsFiles& files) {
  if (files.ca.empty() || files.cert.empty() || files.key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--ca, --cert and --key go together (given:",
        files.ca.empty() ? "" : " --ca", files.cert.empty() ? "" : " --cert",
        files.key.empty() ? "" : " --key", ")"));
  }
  TlsPem pem;
  auto ca = ReadPem("--ca", files.ca, "CERTIFICATE");
  if (!ca.ok()) return ca.status();
  auto cert = ReadPem("--cert", files.cert, "CERTIFICATE");
  if (!cert.ok()) return cert.status();
  auto key = ReadPem("--key", files.key, "PRIVATE KEY");
  if (!key.ok()) return key.status();
  pem.ca = *std::move(ca);
  pem.cert = *std::move(cert);
  pem.key = *std::move(key);
  return pem;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ClientCredentials(
    const TlsFiles& files) {
  if (!files.enabled()) return grpc::InsecureChannelCredentials();
  auto pem = LoadTlsFiles(files);
  if (!pem.ok()) return pem.status();
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = pem->ca;
  o.pem_cert_chain = pem->cert;
  o.pem_private_key = pem->key;
  return grpc::SslCredentials(o);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& files) {
  if (!files.enabled()) return grpc::InsecureServerCredentials();
  auto pem = LoadTlsFiles(files);
  if (!pem.ok()) return pem.status();
  grpc::SslServerCredentialsOptions o(
      GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  o.pem_root_certs = pem->ca;
  o.pem_key_cert_pairs.push_back({pem->key, pem->cert});
  return grpc::SslServerCredentials(o);
}

}  // namespace ila
