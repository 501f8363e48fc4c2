// The backup file of `ilactl snapshot save` and `ila-server --restore`
// (docs/reliability.md): every mapping of one revision.
//
//   ila-backup 1 revision=R\n
//   then per mapping: 4-byte little-endian length, serialized ila.v1.Mapping
//   end mappings=N fnv1a64=HHHHHHHHHHHHHHHH\n   (FNV-1a over all before it)
//
// Written to FILE.tmp, fsynced and renamed, so FILE is whole or absent.
// Reading checks the header, every length, the count and the checksum:
// a truncated, corrupted or foreign file is refused, saying what is wrong.
//
// Thread-safety: plain functions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ila/v1/mapping.pb.h"

namespace ila::v1 {

struct Backup {
  int64_t revision = 0;
  std::vector<Mapping> mappings;
};

absl::Status WriteBackup(const std::string& path, const Backup& backup);
absl::StatusOr<Backup> ReadBackup(const std::string& path);
// The same from/to bytes (tests and fuzzing).
std::string EncodeBackup(const Backup& backup);
absl::StatusOr<Backup> DecodeBackup(const std::string& bytes);

}  // namespace ila::v1
