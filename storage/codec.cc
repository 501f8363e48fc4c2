#include "storage/codec.h"

#include "absl/strings/str_cat.h"
#include "ila/storage/v1/records.pb.h"

namespace ila::storage {
namespace {

namespace pb = ::ila::storage::v1;

void ToRecord(const Mapping& m, pb::MappingRecord* r) {
  r->set_task(m.task);
  r->set_identifier(m.identifier.value);
  r->set_locator(m.locator.value);
  r->set_sir_prefix(m.sir_prefix.value);
  r->set_checksum_mode(static_cast<uint32_t>(m.checksum_mode));
  r->set_create_revision(m.create_revision);
  r->set_mod_revision(m.mod_revision);
  r->set_version(m.version);
  r->set_update_time_unix_nanos(absl::ToUnixNanos(m.update_time));
}

absl::StatusOr<Mapping> FromRecord(const pb::MappingRecord& r) {
  if (!IsValidChecksumMode(r.checksum_mode())) {
    return absl::DataLossError(absl::StrCat("mapping record of task \"",
                                            r.task(), "\" has checksum mode ",
                                            r.checksum_mode()));
  }
  Mapping m;
  m.task = r.task();
  m.identifier = Identifier{r.identifier()};
  m.locator = Locator{r.locator()};
  m.sir_prefix = SirPrefix{r.sir_prefix()};
  m.checksum_mode = static_cast<ChecksumMode>(r.checksum_mode());
  m.create_revision = r.create_revision();
  m.mod_revision = r.mod_revision();
  m.version = r.version();
  m.update_time = absl::FromUnixNanos(r.update_time_unix_nanos());
  return m;
}

}  // namespace

std::string EncodeUint64Key(uint64_t v) {
  std::string key(8, '\0');
  for (int i = 7; i >= 0; --i) {
    key[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return key;
}

absl::StatusOr<uint64_t> DecodeUint64Key(absl::string_view key) {
  if (key.size() != 8) {
    return absl::DataLossError(
        absl::StrCat("key of ", key.size(), " bytes where 8 are expected"));
  }
  uint64_t v = 0;
  for (unsigned char c : key) v = (v << 8) | c;
  return v;
}

std::string EncodeMapping(const Mapping& m) {
  pb::MappingRecord r;
  ToRecord(m, &r);
  return r.SerializeAsString();
}

absl::StatusOr<Mapping> DecodeMapping(absl::string_view bytes) {
  pb::MappingRecord r;
  if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("mapping record does not parse");
  }
  return FromRecord(r);
}

std::string EncodeChangeSet(const ChangeSet& c) {
  pb::ChangeSetRecord r;
  r.set_revision(c.revision);
  r.set_commit_time_unix_nanos(absl::ToUnixNanos(c.commit_time));
  for (const Change& ch : c.changes) {
    pb::ChangeRecord* cr = r.add_changes();
    if (ch.before) ToRecord(*ch.before, cr->mutable_before());
    if (ch.after) ToRecord(*ch.after, cr->mutable_after());
  }
  return r.SerializeAsString();
}

absl::StatusOr<ChangeSet> DecodeChangeSet(absl::string_view bytes) {
  pb::ChangeSetRecord r;
  if (!r.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("change set record does not parse");
  }
  ChangeSet c;
  c.revision = r.revision();
  c.commit_time = absl::FromUnixNanos(r.commit_time_unix_nanos());
  c.changes.reserve(r.changes_size());
  for (const pb::ChangeRecord& cr : r.changes()) {
    Change ch;
    if (cr.has_before()) {
      auto m = FromRecord(cr.before());
      if (!m.ok()) return m.status();
      ch.before = *std::move(m);
    }
    if (cr.has_after()) {
      auto m = FromRecord(cr.after());
      if (!m.ok()) return m.status();
      ch.after = *std::move(m);
    }
    c.changes.push_back(std::move(ch));
  }
  return c;
}

}  // namespace ila::storage
