// The write logic of the mapping store as pure functions over a state view:
// validation, idempotent register, move, unregister, compare-and-swap,
// identifier allocation. The RocksDB store (and a later etcd store) only read
// state and persist what the planner decided.
//
// Thread-safety: PlanRequest is reentrant; an OverlayReader is not
// thread-safe (one writer thread owns it).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/types.h"

namespace ila::storage {

// Read access to the committed (or group-pending) state.
class StateReader {
 public:
  virtual ~StateReader() = default;
  virtual absl::StatusOr<std::optional<Mapping>> FindTask(
      const std::string& task) = 0;
  virtual absl::StatusOr<std::optional<Mapping>> FindIdentifier(
      Identifier id) = 0;
};

// A base reader with changes layered on top (changes not yet durable).
class OverlayReader final : public StateReader {
 public:
  explicit OverlayReader(StateReader* base) : base_(base) {}

  absl::StatusOr<std::optional<Mapping>> FindTask(
      const std::string& task) override;
  absl::StatusOr<std::optional<Mapping>> FindIdentifier(Identifier id) override;

  void Apply(const Change& change);

 private:
  StateReader* base_;
  absl::flat_hash_map<std::string, std::optional<Mapping>> tasks_;
  absl::flat_hash_map<uint64_t, std::optional<Mapping>> identifiers_;
};

// The store-wide counters a request advances.
struct PlannerState {
  int64_t revision = 0;
  uint64_t next_sequence = 1;  // next identifier sequence to try
  int64_t mapping_count = 0;
};

struct PlannerConfig {
  SirPrefix default_sir_prefix{0xfd00000000000000};
  ChecksumMode default_checksum_mode = ChecksumMode::kAdjustTransport;
  size_t max_operations = 10000;
};

struct PlannedRequest {
  CommitResult result;
  std::vector<Change> changes;  // empty: the request changes nothing
  PlannerState state;           // counters after the request
};

// Decides what `request` does against `reader` at `state`. On error nothing
// is changed. Changed mappings carry revision state.revision + 1 and
// update time `now`.
absl::StatusOr<PlannedRequest> PlanRequest(const WriteRequest& request,
                                           StateReader& reader,
                                           const PlannerState& state,
                                           const PlannerConfig& config,
                                           absl::Time now);

}  // namespace ila::storage
