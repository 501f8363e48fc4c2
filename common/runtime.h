// Process-wide set-up every binary and test main calls first.
//
// Thread-safety: call once, before starting threads.
#pragma once

namespace ila {

// Turns off absl::Mutex deadlock detection (Debian's absl enables it; it
// costs a graph update on every lock acquisition: ~8% of the CPU with
// thousands of streams). Lock order is documented per class instead.
void InitRuntime();

}  // namespace ila
