// The product version, as "0.1.0".
#pragma once

#include "absl/strings/string_view.h"

namespace ila {
absl::string_view Version();
}  // namespace ila
