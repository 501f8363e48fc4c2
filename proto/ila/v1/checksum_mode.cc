#include "ila/v1/checksum_mode.h"

#include "absl/strings/str_cat.h"

namespace ila {

absl::StatusOr<ChecksumMode> FromProtoChecksumMode(int value) {
  switch (value) {
    case v1::CHECKSUM_MODE_ADJ_TRANSPORT:
      return ChecksumMode::kAdjustTransport;
    case v1::CHECKSUM_MODE_NEUTRAL_MAP:
      return ChecksumMode::kNeutralMap;
    case v1::CHECKSUM_MODE_NEUTRAL_MAP_AUTO:
      return ChecksumMode::kNeutralMapAuto;
    case v1::CHECKSUM_MODE_NO_ACTION:
      return ChecksumMode::kNoAction;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(value, " is not a ChecksumMode"));
  }
}

v1::ChecksumMode ToProtoChecksumMode(ChecksumMode mode) {
  switch (mode) {
    case ChecksumMode::kAdjustTransport:
      return v1::CHECKSUM_MODE_ADJ_TRANSPORT;
    case ChecksumMode::kNeutralMap:
      return v1::CHECKSUM_MODE_NEUTRAL_MAP;
    case ChecksumMode::kNeutralMapAuto:
      return v1::CHECKSUM_MODE_NEUTRAL_MAP_AUTO;
    case ChecksumMode::kNoAction:
      return v1::CHECKSUM_MODE_NO_ACTION;
  }
  return v1::CHECKSUM_MODE_UNSPECIFIED;
}

}  // namespace ila
