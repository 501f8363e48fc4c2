#include "storage/planner.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ila::storage {
namespace {

// Identifier allocation skips identifiers that callers chose themselves; give
// up after this many taken in a row rather than loop unboundedly.
constexpr int kMaxAllocationProbes = 4096;

std::string Q(const std::string& s) { return absl::StrCat("\"", s, "\""); }

absl::Status CheckExpected(const Mapping& m,
                           const std::optional<int64_t>& expected) {
  if (expected.has_value() && m.mod_revision != *expected) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", Q(m.task), " has mod_revision ", m.mod_revision,
                     ", expected_mod_revision is ", *expected));
  }
  return absl::OkStatus();
}

absl::Status NotRegistered(const std::string& task) {
  return absl::NotFoundError(
      absl::StrCat("task ", Q(task), " is not registered"));
}

const std::string& TaskOf(const Operation& op) {
  return std::visit([](const auto& o) -> const std::string& { return o.task; },
                    op);
}

absl::Status ValidateOperation(const Operation& op) {
  ILA_RETURN_IF_ERROR(Annotate(ValidateTaskName(TaskOf(op)), "task"));
  if (const auto* r = std::get_if<RegisterOp>(&op)) {
    if (r->locator.value == 0) {
      return absl::InvalidArgumentError("locator: must not be zero");
    }
    if (r->identifier) {
      ILA_RETURN_IF_ERROR(
          Annotate(ValidateKernelIdentifier(*r->identifier), "identifier"));
    }
    if (r->sir_prefix && r->sir_prefix->value == 0) {
      return absl::InvalidArgumentError("sir_prefix: must not be zero");
    }
  } else if (const auto* m = std::get_if<MoveOp>(&op)) {
    if (m->locator.value == 0) {
      return absl::InvalidArgumentError("locator: must not be zero");
    }
  }
  return absl::OkStatus();
}

class Planner {
 public:
  Planner(StateReader& base, const PlannerState& state,
          const PlannerConfig& config, absl::Time now)
      : overlay_(&base),
        state_(state),
        config_(config),
        now_(now),
        revision_(state.revision + 1) {}

  absl::StatusOr<OperationResult> Register(const RegisterOp& op) {
    ILA_ASSIGN_OR_RETURN(std::optional<Mapping> existing,
                         overlay_.FindTask(op.task));
    if (existing) {
      const Mapping& m = *existing;
      if (m.locator != op.locator) {
        return absl::AlreadyExistsError(absl::StrCat(
            "task ", Q(op.task), " is already registered at locator ",
            FormatLocator(m.locator), " (identifier ",
            FormatIdentifier(m.identifier), "); use MoveTask to move it to ",
            FormatLocator(op.locator)));
      }
      if (op.identifier && *op.identifier != m.identifier) {
        return absl::AlreadyExistsError(absl::StrCat(
            "task ", Q(op.task), " is already registered with identifier ",
            FormatIdentifier(m.identifier), ", not ",
            FormatIdentifier(*op.identifier)));
      }
      if (op.sir_prefix && *op.sir_prefix != m.sir_prefix) {
        return absl::AlreadyExistsError(absl::StrCat(
            "task ", Q(op.task), " is already registered with SIR prefix ",
            FormatSirPrefix(m.sir_prefix), ", not ",
            FormatSirPrefix(*op.sir_prefix)));
      }
      if (op.checksum_mode && *op.checksum_mode != m.checksum_mode) {
        return absl::AlreadyExistsError(absl::StrCat(
            "task ", Q(op.task), " is already registered with checksum mode ",
            ChecksumModeName(m.checksum_mode), ", not ",
            ChecksumModeName(*op.checksum_mode)));
      }
      return OperationResult{m, m, false};
    }
    Identifier id;
    if (op.identifier) {
      id = *op.identifier;
      ILA_ASSIGN_OR_RETURN(std::optional<Mapping> holder,
                           overlay_.FindIdentifier(id));
      if (holder) {
        return absl::AlreadyExistsError(
            absl::StrCat("identifier ", FormatIdentifier(id),
                         " is already used by task ", Q(holder->task)));
      }
    } else {
      ILA_ASSIGN_OR_RETURN(id, Allocate());
    }
    Mapping m;
    m.task = op.task;
    m.identifier = id;
    m.locator = op.locator;
    m.sir_prefix = op.sir_prefix.value_or(config_.default_sir_prefix);
    m.checksum_mode = op.checksum_mode.value_or(config_.default_checksum_mode);
    m.create_revision = revision_;
    m.mod_revision = revision_;
    m.version = 1;
    m.update_time = now_;
    Record(Change{std::nullopt, m});
    ++state_.mapping_count;
    return OperationResult{m, std::nullopt, true};
  }

  absl::StatusOr<OperationResult> Move(const MoveOp& op) {
    ILA_ASSIGN_OR_RETURN(std::optional<Mapping> existing,
                         overlay_.FindTask(op.task));
    if (!existing) return NotRegistered(op.task);
    ILA_RETURN_IF_ERROR(CheckExpected(*existing, op.expected_mod_revision));
    if (existing->locator == op.locator) {
      return OperationResult{*existing, *existing, false};
    }
    Mapping m = *existing;
    m.locator = op.locator;
    m.mod_revision = revision_;
    m.version += 1;
    m.update_time = now_;
    Record(Change{*existing, m});
    return OperationResult{m, *existing, true};
  }

  absl::StatusOr<OperationResult> Unregister(const UnregisterOp& op) {
    ILA_ASSIGN_OR_RETURN(std::optional<Mapping> existing,
                         overlay_.FindTask(op.task));
    if (!existing) return NotRegistered(op.task);
    ILA_RETURN_IF_ERROR(CheckExpected(*existing, op.expected_mod_revision));
    Record(Change{*existing, std::nullopt});
    --state_.mapping_count;
    return OperationResult{*existing, *existing, true};
  }

  PlannedRequest Finish(std::vector<OperationResult> results) && {
    PlannedRequest out;
    if (!changes_.empty()) state_.revision = revision_;
    out.result.revision = state_.revision;
    out.result.results = std::move(results);
    out.changes = std::move(changes_);
    out.state = state_;
    return out;
  }

 private:
  absl::StatusOr<Identifier> Allocate() {
    for (int i = 0; i < kMaxAllocationProbes; ++i) {
      if (state_.next_sequence > kMaxIdentifierSequence) break;
      Identifier id = MakeLuidIdentifier(state_.next_sequence++);
      ILA_ASSIGN_OR_RETURN(std::optional<Mapping> holder,
                           overlay_.FindIdentifier(id));
      if (!holder) return id;
    }
    return absl::ResourceExhaustedError(absl::StrCat(
        "identifier allocation found no free LUID identifier near sequence ",
        state_.next_sequence, "; supply identifiers explicitly"));
  }

  void Record(Change change) {
    overlay_.Apply(change);
    changes_.push_back(std::move(change));
  }

  OverlayReader overlay_;
  PlannerState state_;
  const PlannerConfig& config_;
  absl::Time now_;
  int64_t revision_;
  std::vector<Change> changes_;
};

}  // namespace

absl::StatusOr<std::optional<Mapping>> OverlayReader::FindTask(
    const std::string& task) {
  if (auto it = tasks_.find(task); it != tasks_.end()) return it->second;
  return base_->FindTask(task);
}

absl::StatusOr<std::optional<Mapping>> OverlayReader::FindIdentifier(
    Identifier id) {
  if (auto it = identifiers_.find(id.value); it != identifiers_.end()) {
    return it->second;
  }
  return base_->FindIdentifier(id);
}

void OverlayReader::Apply(const Change& change) {
  if (change.before) {
    tasks_[change.before->task] = std::nullopt;
    identifiers_[change.before->identifier.value] = std::nullopt;
  }
  if (change.after) {
    tasks_[change.after->task] = change.after;
    identifiers_[change.after->identifier.value] = change.after;
  }
}

absl::StatusOr<PlannedRequest> PlanRequest(const WriteRequest& request,
                                           StateReader& reader,
                                           const PlannerState& state,
                                           const PlannerConfig& config,
                                           absl::Time now) {
  const auto& ops = request.operations;
  if (ops.empty()) {
    return absl::InvalidArgumentError("operations: empty; nothing to apply");
  }
  if (ops.size() > config.max_operations) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "operations: ", ops.size(), " operations exceed the limit of ",
        config.max_operations));
  }
  auto prefix = [&](size_t i, const absl::Status& s) {
    return request.batch ? Annotate(s, absl::StrCat("operations[", i, "]")) : s;
  };
  // Each task and each chosen identifier at most once per request: one
  // change per key per revision keeps the change log and streams simple.
  absl::flat_hash_map<absl::string_view, size_t> tasks;
  absl::flat_hash_map<uint64_t, size_t> identifiers;
  for (size_t i = 0; i < ops.size(); ++i) {
    ILA_RETURN_IF_ERROR(prefix(i, ValidateOperation(ops[i])));
    auto [it, inserted] = tasks.emplace(TaskOf(ops[i]), i);
    if (!inserted) {
      return prefix(
          i, absl::InvalidArgumentError(absl::StrCat(
                 "task: ", Q(TaskOf(ops[i])), " also appears in operations[",
                 it->second, "]; a request may change a task once")));
    }
    if (const auto* r = std::get_if<RegisterOp>(&ops[i]); r && r->identifier) {
      auto [jt, fresh] = identifiers.emplace(r->identifier->value, i);
      if (!fresh) {
        return prefix(i, absl::InvalidArgumentError(absl::StrCat(
                             "identifier: ", FormatIdentifier(*r->identifier),
                             " also appears in operations[", jt->second, "]")));
      }
    }
  }
  Planner planner(reader, state, config, now);
  std::vector<OperationResult> results;
  results.reserve(ops.size());
  for (size_t i = 0; i < ops.size(); ++i) {
    absl::StatusOr<OperationResult> r = std::visit(
        [&](const auto& op) -> absl::StatusOr<OperationResult> {
          using T = std::decay_t<decltype(op)>;
          if constexpr (std::is_same_v<T, RegisterOp>) {
            return planner.Register(op);
          } else if constexpr (std::is_same_v<T, MoveOp>) {
            return planner.Move(op);
          } else {
            return planner.Unregister(op);
          }
        },
        ops[i]);
    if (!r.ok()) return prefix(i, r.status());
    results.push_back(*std::move(r));
  }
  return std::move(planner).Finish(std::move(results));
}

}  // namespace ila::storage
