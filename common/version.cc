#include "common/version.h"

namespace ila {
absl::string_view Version() { return ILA_VERSION; }
}  // namespace ila
