// Byte encodings of the RocksDB store: keys (8-byte big-endian, so RocksDB's
// byte order is numeric order) and record values (ila.storage.v1 protobuf).
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/types.h"

namespace ila::storage {

std::string EncodeUint64Key(uint64_t v);
// DATA_LOSS unless `key` is exactly 8 bytes.
absl::StatusOr<uint64_t> DecodeUint64Key(absl::string_view key);

std::string EncodeMapping(const Mapping& m);
absl::StatusOr<Mapping> DecodeMapping(absl::string_view bytes);

std::string EncodeChangeSet(const ChangeSet& c);
absl::StatusOr<ChangeSet> DecodeChangeSet(absl::string_view bytes);

}  // namespace ila::storage
