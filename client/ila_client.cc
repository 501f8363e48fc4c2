#include "client/ila_client.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>

#include "absl/strings/match.h"
#include "common/address.h"

namespace ila::client {

std::string ResolveServerAddress(const std::string& flag) {
  if (!flag.empty()) return flag;
  if (const char* env = std::getenv("ILA_SERVER"); env && *env) return env;
  return "localhost:50051";
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                                    const TlsFiles& tls) {
  auto credentials = ClientCredentials(tls);
  if (!credentials.ok()) return credentials.status();
  return grpc::CreateChannel(address, *credentials);
}

absl::Status FromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

KeyKind ClassifyKey(absl::string_view key) {
  if (absl::StartsWithIgnoreCase(key, "0x") && ParseIdentifier(key).ok()) {
    return KeyKind::kIdentifier;
  }
  if (!absl::StrContains(key, "::") &&
      std::count(key.begin(), key.end(), ':') == 3 &&
      ParseIdentifier(key).ok()) {
    return KeyKind::kIdentifier;
  }
  if (ParseSirAddress(key).ok()) return KeyKind::kSirAddress;
  return KeyKind::kTask;
}

}  // namespace ila::client
