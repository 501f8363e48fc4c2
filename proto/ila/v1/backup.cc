#include "ila/v1/backup.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "common/files.h"

namespace ila::v1 {
namespace {

constexpr absl::string_view kMagic = "ila-backup 1 revision=";
constexpr absl::string_view kEnd = "end mappings=";
constexpr size_t kMaxRecord = 1 << 20;

uint64_t Fnv1a(absl::string_view bytes, uint64_t h) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}
constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ULL;

absl::Status Corrupt(absl::string_view what) {
  return absl::DataLossError(absl::StrCat("backup: ", what));
}

}  // namespace

std::string EncodeBackup(const Backup& backup) {
  std::string out = absl::StrCat(kMagic, backup.revision, "\n");
  std::string record;
  for (const Mapping& m : backup.mappings) {
    record.clear();
    m.SerializeToString(&record);
    const uint32_t n = static_cast<uint32_t>(record.size());
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(n >> (8 * i)));
    out += record;
  }
  const uint64_t sum = Fnv1a(out, kFnvBasis);  // the header and the records
  absl::StrAppend(&out, kEnd, backup.mappings.size(),
                  absl::StrFormat(" fnv1a64=%016x\n", sum));
  return out;
}

absl::StatusOr<Backup> DecodeBackup(const std::string& bytes) {
  absl::string_view rest = bytes;
  if (!absl::ConsumePrefix(&rest, kMagic)) {
    return Corrupt("not an ila-server backup (no \"ila-backup 1\" header)");
  }
  const size_t eol = rest.find('\n');
  Backup b;
  if (eol == absl::string_view::npos ||
      !absl::SimpleAtoi(rest.substr(0, eol), &b.revision) || b.revision < 0) {
    return Corrupt("the header's revision is malformed");
  }
  rest.remove_prefix(eol + 1);
  while (!absl::StartsWith(rest, kEnd)) {
    if (rest.size() < 4) return Corrupt("truncated (no end line)");
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) {
      n |= static_cast<uint32_t>(static_cast<unsigned char>(rest[i]))
           << (8 * i);
    }
    rest.remove_prefix(4);
    if (n > kMaxRecord || n > rest.size()) {
      return Corrupt(absl::StrCat("record ", b.mappings.size() + 1, " claims ",
                                  n,
                                  " bytes; truncated or "
                                  "corrupted"));
    }
    Mapping m;
    if (!m.ParseFromArray(rest.data(), static_cast<int>(n))) {
      return Corrupt(
          absl::StrCat("record ", b.mappings.size() + 1, " is not a Mapping"));
    }
    b.mappings.push_back(std::move(m));
    rest.remove_prefix(n);
  }
  const uint64_t sum =
      Fnv1a(absl::string_view(bytes).substr(0, bytes.size() - rest.size()),
            kFnvBasis);
  rest.remove_prefix(kEnd.size());
  const size_t space = rest.find(' ');
  uint64_t count = 0;
  if (space == absl::string_view::npos ||
      !absl::SimpleAtoi(rest.substr(0, space), &count)) {
    return Corrupt("the end line is malformed");
  }
  if (count != b.mappings.size()) {
    return Corrupt(absl::StrCat("the end line says ", count,
                                " mappings; the file holds ",
                                b.mappings.size()));
  }
  const std::string want = absl::StrFormat(" fnv1a64=%016x\n", sum);
  if (rest.substr(space) != want) {
    return Corrupt("checksum mismatch: the file was changed or damaged");
  }
  return b;
}

absl::Status WriteBackup(const std::string& path, const Backup& backup) {
  absl::Status s = WriteFileAtomically(path, EncodeBackup(backup));
  if (!s.ok())
    return absl::UnavailableError(absl::StrCat("backup: ", s.message()));
  return absl::OkStatus();
}

absl::StatusOr<Backup> ReadBackup(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("backup: cannot read \"", path, "\""));
  }
  std::ostringstream s;
  s << in.rdbuf();
  auto b = DecodeBackup(s.str());
  if (!b.ok()) {
    return absl::Status(b.status().code(),
                        absl::StrCat("\"", path, "\": ", b.status().message()));
  }
  return b;
}

}  // namespace ila::v1
