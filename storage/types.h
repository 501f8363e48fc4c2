// Value types of the mapping store: mappings, write operations, change sets,
// results. Plain data; no behaviour beyond comparison.
//
// Thread-safety: value types; a const object may be shared between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/time/time.h"
#include "common/address.h"

namespace ila::storage {

// One identifier -> locator mapping, with its revision metadata.
struct Mapping {
  std::string task;
  Identifier identifier;
  Locator locator;
  SirPrefix sir_prefix;
  ChecksumMode checksum_mode = ChecksumMode::kAdjustTransport;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  absl::Time update_time = absl::UnixEpoch();

  SirAddress sir_address() const { return SirAddress{sir_prefix, identifier}; }
  friend bool operator==(const Mapping&, const Mapping&) = default;
};

// Creates a task's mapping; idempotent when an equal mapping exists.
// Unset optional fields take the store's defaults (or, for an idempotent
// retry, match whatever the existing mapping has).
struct RegisterOp {
  std::string task;
  Locator locator;
  std::optional<Identifier> identifier;
  std::optional<SirPrefix> sir_prefix;
  std::optional<ChecksumMode> checksum_mode;
};

// Points a task at another locator; compare-and-swap when expected is set.
struct MoveOp {
  std::string task;
  Locator locator;
  std::optional<int64_t> expected_mod_revision;
};

// Removes a task's mapping; compare-and-swap when expected is set.
struct UnregisterOp {
  std::string task;
  std::optional<int64_t> expected_mod_revision;
};

using Operation = std::variant<RegisterOp, MoveOp, UnregisterOp>;

// One request: all its operations commit atomically as one revision, or none
// does. `batch` makes errors name the failing operation ("operations[3]: ").
struct WriteRequest {
  std::vector<Operation> operations;
  bool batch = false;
};

struct OperationResult {
  Mapping mapping;  // the new mapping; for unregister, the removed one
  std::optional<Mapping> previous;  // the mapping before a change
  bool changed = false;
};

struct CommitResult {
  // The revision this request committed, or, when nothing changed, the
  // revision at which the results hold.
  int64_t revision = 0;
  std::vector<OperationResult> results;  // one per operation, in order
};

// One mapping's change: before absent = created, after absent = deleted.
struct Change {
  std::optional<Mapping> before;
  std::optional<Mapping> after;
  friend bool operator==(const Change&, const Change&) = default;
};

// Everything one revision changed.
struct ChangeSet {
  int64_t revision = 0;
  absl::Time commit_time = absl::UnixEpoch();
  std::vector<Change> changes;
  friend bool operator==(const ChangeSet&, const ChangeSet&) = default;
};

struct LookupResult {
  Mapping mapping;
  int64_t revision = 0;  // revision at which the read was made
};

struct ListOptions {
  int64_t revision = 0;             // 0: the current revision
  std::optional<Identifier> after;  // resume after this identifier
  size_t limit = 1000;
  std::optional<Locator> locator;       // filter
  std::optional<SirPrefix> sir_prefix;  // filter
};

struct ListPage {
  std::vector<Mapping> mappings;  // identifier order
  int64_t revision = 0;
  bool more = false;  // another page follows `mappings.back()`
};

struct StoreStatus {
  int64_t revision = 0;
  int64_t compacted_revision = 0;  // the change log holds (compacted, revision]
  int64_t mapping_count = 0;
  // Random, new for every database and every restore: revisions of two
  // histories are not comparable.
  uint64_t history = 0;
};

}  // namespace ila::storage
