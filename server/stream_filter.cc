#include "server/stream_filter.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "server/convert.h"

namespace ila::server {

uint32_t ShardOf(Identifier id, uint32_t count) {
  uint64_t z = id.value + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<uint32_t>(z % count);
}

bool StreamFilter::Matches(const storage::Mapping& m) const {
  if (!locators.empty() && !locators.contains(m.locator.value)) return false;
  if (shard_count != 0 && ShardOf(m.identifier, shard_count) != shard_index) {
    return false;
  }
  if (sir_prefix && m.sir_prefix != *sir_prefix) return false;
  return true;
}

std::string StreamFilter::Key() const {
  std::vector<uint64_t> sorted(locators.begin(), locators.end());
  std::sort(sorted.begin(), sorted.end());
  return absl::StrCat("l=", absl::StrJoin(sorted, ","), ";s=", shard_index, "/",
                      shard_count, ";p=", sir_prefix ? sir_prefix->value : 0);
}

absl::StatusOr<StreamFilter> ParseFilter(const v1::Filter& filter) {
  StreamFilter out;
  if (static_cast<size_t>(filter.locators_size()) > kMaxFilterLocators) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter.locators: ", filter.locators_size(),
                     " locators exceed the limit of ", kMaxFilterLocators));
  }
  for (int i = 0; i < filter.locators_size(); ++i) {
    auto l = ParseLocator(filter.locators(i));
    if (!l.ok()) {
      return Annotate(l.status(), absl::StrCat("filter.locators[", i, "]"));
    }
    out.locators.insert(l->value);
  }
  if (filter.shard_count() > kMaxShardCount) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter.shard_count: ", filter.shard_count(),
                     " exceeds the limit of ", kMaxShardCount));
  }
  if (filter.shard_count() == 0 && filter.shard_index() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter.shard_index: ", filter.shard_index(),
                     " given without filter.shard_count"));
  }
  if (filter.shard_count() != 0 &&
      filter.shard_index() >= filter.shard_count()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter.shard_index: ", filter.shard_index(),
        " must be below filter.shard_count ", filter.shard_count()));
  }
  out.shard_index = filter.shard_index();
  out.shard_count = filter.shard_count();
  if (!filter.sir_prefix().empty()) {
    auto p = ParseSirPrefix(filter.sir_prefix());
    if (!p.ok()) return Annotate(p.status(), "filter.sir_prefix");
    out.sir_prefix = *p;
  }
  return out;
}

bool FilterChangeSet(const storage::ChangeSet& set, const StreamFilter& filter,
                     v1::Update* out) {
  out->set_revision(set.revision);
  const bool all = filter.IsAll();
  bool any = false;
  for (const storage::Change& c : set.changes) {
    const bool in_after = c.after && (all || filter.Matches(*c.after));
    const bool in_before = c.before && (all || filter.Matches(*c.before));
    if (in_after) {
      ToProto(*c.after, out->add_upserts());
      any = true;
    } else if (in_before) {
      out->add_deletes(c.before->identifier.value);
      any = true;
    }
  }
  return any;
}

}  // namespace ila::server
