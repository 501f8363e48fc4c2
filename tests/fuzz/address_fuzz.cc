// libFuzzer target: the text parsers every RPC and CLI argument goes
// through (common/address.h). Any text must parse or be refused with
// INVALID_ARGUMENT; what parses must print back to text that parses to
// the same value.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/address.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ila;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto refused = [](const absl::Status& s) {
    return s.code() == absl::StatusCode::kInvalidArgument &&
           !s.message().empty();
  };
  if (auto l = ParseLocator(text); l.ok()) {
    auto again = ParseLocator(FormatLocator(*l));
    FUZZ_CHECK(again.ok() && *again == *l);
  } else {
    FUZZ_CHECK(refused(l.status()));
  }
  if (auto p = ParseSirPrefix(text); p.ok()) {
    auto again = ParseSirPrefix(FormatSirPrefix(*p));
    FUZZ_CHECK(again.ok() && *again == *p);
  } else {
    FUZZ_CHECK(refused(p.status()));
  }
  if (auto id = ParseIdentifier(text); id.ok()) {
    auto again = ParseIdentifier(FormatIdentifier(*id));
    FUZZ_CHECK(again.ok() && *again == *id);
    (void)ValidateKernelIdentifier(*id);
  } else {
    FUZZ_CHECK(refused(id.status()));
  }
  if (auto a = ParseSirAddress(text); a.ok()) {
    auto again = ParseSirAddress(FormatSirAddress(*a));
    FUZZ_CHECK(again.ok() && *again == *a);
    FUZZ_CHECK(FromIn6Addr(ToIn6Addr(a->prefix.value, a->identifier.value)) ==
               *a);
  } else {
    FUZZ_CHECK(refused(a.status()));
  }
  if (auto m = ParseChecksumMode(text); m.ok()) {
    auto again = ParseChecksumMode(ChecksumModeName(*m));
    FUZZ_CHECK(again.ok() && *again == *m);
  } else {
    FUZZ_CHECK(refused(m.status()));
  }
  if (absl::Status s = ValidateTaskName(text); s.ok()) {
    FUZZ_CHECK(!text.empty() && text.size() <= kMaxTaskNameBytes);
  } else {
    FUZZ_CHECK(refused(s));
  }
  return 0;
}
