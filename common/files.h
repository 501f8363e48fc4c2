// Small file helpers shared by ila-server, ila-router-sync and the backup
// file.
//
// Thread-safety: plain functions.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ila {

// Writes `data` to `path` so that `path` is either the old file or the
// whole new one: a temporary file next to it, fsync, rename, fsync of the
// directory. UNAVAILABLE naming the file and the errno otherwise (the
// temporary file is removed).
absl::Status WriteFileAtomically(const std::string& path,
                                 absl::string_view data);

}  // namespace ila
