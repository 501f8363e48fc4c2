// Conversions between the wire enum ila.v1.ChecksumMode and the kernel's
// checksum modes (common/address.h), shared by the server and router-sync.
//
// Thread-safety: pure functions; thread-safe.
#pragma once

#include "absl/status/statusor.h"
#include "common/address.h"
#include "ila/v1/mapping.pb.h"

namespace ila {

// INVALID_ARGUMENT for CHECKSUM_MODE_UNSPECIFIED (0) and unknown values.
absl::StatusOr<ChecksumMode> FromProtoChecksumMode(int value);
v1::ChecksumMode ToProtoChecksumMode(ChecksumMode mode);

}  // namespace ila
