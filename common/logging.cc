#include "common/logging.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "spdlog/sinks/stdout_color_sinks.h"

namespace ila::logging {

void LogToStderr() {
  auto logger = spdlog::stderr_color_mt("ila");
  spdlog::set_default_logger(logger);
}

absl::Status SetLevel(absl::string_view level) {
  const std::string name(level);
  auto parsed = spdlog::level::from_str(name);
  // from_str maps unknown names to "off": accept "off" only when asked for.
  if (parsed == spdlog::level::off && name != "off") {
    return absl::InvalidArgumentError(
        absl::StrCat("log level \"", name,
                     "\" is not one of trace|debug|info|warn|error|off"));
  }
  spdlog::set_level(parsed);
  return absl::OkStatus();
}

}  // namespace ila::logging
