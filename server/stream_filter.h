// StreamFilter: which mappings a stream subscriber receives, and the pure
// function that turns a committed change set into that subscriber's Update
// (a move out of the filter becomes a delete, into it an upsert).
//
// Thread-safety: value type and pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "ila/v1/stream.pb.h"
#include "storage/types.h"

namespace ila::server {

inline constexpr size_t kMaxFilterLocators = 4096;
inline constexpr uint32_t kMaxShardCount = 1 << 20;

// splitmix64(identifier) % count: spreads sequential identifiers evenly.
uint32_t ShardOf(Identifier id, uint32_t count);

struct StreamFilter {
  absl::flat_hash_set<uint64_t> locators;  // empty: any locator
  uint32_t shard_index = 0;
  uint32_t shard_count = 0;  // 0: unsharded
  std::optional<SirPrefix> sir_prefix;

  bool Matches(const storage::Mapping& m) const;
  bool IsAll() const {
    return locators.empty() && shard_count == 0 && !sir_prefix;
  }
  // A canonical text form: equal filters have equal keys.
  std::string Key() const;
};

// Validates a wire filter; errors name the field ("filter.locators[2]: ...").
absl::StatusOr<StreamFilter> ParseFilter(const v1::Filter& filter);

// Fills `out` (revision, upserts, deletes) with what `set` changes for
// `filter`; returns false when it changes nothing for it.
bool FilterChangeSet(const storage::ChangeSet& set, const StreamFilter& filter,
                     v1::Update* out);

}  // namespace ila::server
