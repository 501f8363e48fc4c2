#include "storage/mapping_store.h"

#include <optional>

#include "absl/synchronization/notification.h"

namespace ila::storage {

absl::StatusOr<CommitResult> MappingStore::Commit(WriteRequest request) {
  absl::Notification done;
  std::optional<absl::StatusOr<CommitResult>> result;
  Submit(std::move(request), [&](absl::StatusOr<CommitResult> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return *std::move(result);
}

}  // namespace ila::storage
