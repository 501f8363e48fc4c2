// Conversions between the wire API (ila.v1 protobuf) and the store's types,
// with validation of every request field. Errors are INVALID_ARGUMENT naming
// the field (with its path inside an Apply) and the value.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "ila/v1/checksum_mode.h"
#include "ila/v1/mapping.pb.h"
#include "storage/types.h"

namespace ila::server {

absl::StatusOr<storage::RegisterOp> ToRegisterOp(
    const v1::RegisterTaskRequest& req, absl::string_view path = "");
absl::StatusOr<storage::MoveOp> ToMoveOp(const v1::MoveTaskRequest& req,
                                         absl::string_view path = "");
absl::StatusOr<storage::UnregisterOp> ToUnregisterOp(
    const v1::UnregisterTaskRequest& req, absl::string_view path = "");
absl::StatusOr<storage::WriteRequest> ToWriteRequest(
    const v1::ApplyRequest& req, size_t max_operations);

// absl::Time <-> google.protobuf.Timestamp (InfinitePast leaves `out` unset).
void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out);
absl::Time FromTimestamp(const google::protobuf::Timestamp& t);

void ToProto(const storage::Mapping& m, v1::Mapping* out);
absl::StatusOr<storage::Mapping> FromProto(const v1::Mapping& m);

// List page tokens: opaque to clients; carry the list's revision and the
// last identifier returned.
struct PageToken {
  int64_t revision = 0;
  Identifier after;
};
std::string EncodePageToken(const PageToken& token);
absl::StatusOr<PageToken> DecodePageToken(absl::string_view token);

// A ListRequest as store options (page_size 0 = default_page_size).
absl::StatusOr<storage::ListOptions> ToListOptions(const v1::ListRequest& req,
                                                   size_t default_page_size,
                                                   size_t max_page_size);

}  // namespace ila::server
