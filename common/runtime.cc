#include "common/runtime.h"

#include "absl/synchronization/mutex.h"

namespace ila {

void InitRuntime() {
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
}

}  // namespace ila
