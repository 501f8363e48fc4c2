// The project's one logging header: spdlog behind a few functions.
//
// Thread-safety: every function here may be called from any thread.
#pragma once

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "spdlog/spdlog.h"

// absl::string_view is its own type in Debian's absl: teach fmt to print it.
template <>
struct fmt::formatter<absl::string_view> : fmt::formatter<fmt::string_view> {
  template <typename FormatContext>
  auto format(absl::string_view s, FormatContext& ctx) const {
    return fmt::formatter<fmt::string_view>::format(
        fmt::string_view(s.data(), s.size()), ctx);
  }
};

namespace ila::logging {

// Sends log lines to stderr (stdout stays for program output). Call once,
// early in main().
void LogToStderr();

// Sets the global log level from "trace|debug|info|warn|error|off".
absl::Status SetLevel(absl::string_view level);

}  // namespace ila::logging

#define ILA_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define ILA_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define ILA_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define ILA_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
