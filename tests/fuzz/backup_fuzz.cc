// libFuzzer target: the backup file reader (proto/ila/v1/backup.h) that
// `ila-server --restore` trusts. Any bytes must be refused with a message
// or decode to a backup whose re-encoding decodes to the same mappings.
#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/stubs/logging.h"
#include "ila/v1/backup.h"
#include "tests/fuzz/fuzz_check.h"

// Mutated messages make protobuf log every invalid UTF-8 string: not news.
[[maybe_unused]] google::protobuf::LogHandler* const kQuiet =
    google::protobuf::SetLogHandler(nullptr);

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ila::v1;
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  auto backup = DecodeBackup(bytes);
  if (!backup.ok()) {
    FUZZ_CHECK(!backup.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(backup->revision >= 0);
  auto again = DecodeBackup(EncodeBackup(*backup));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->revision == backup->revision);
  FUZZ_CHECK(again->mappings.size() == backup->mappings.size());
  for (size_t i = 0; i < again->mappings.size(); ++i) {
    FUZZ_CHECK(again->mappings[i].SerializeAsString() ==
               backup->mappings[i].SerializeAsString());
  }
  return 0;
}
