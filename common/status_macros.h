// Status helpers for absl::Status / absl::StatusOr (absl 20220623 has none).
//
// ILA_RETURN_IF_ERROR(expr): returns the status of `expr` if it is not OK.
// ILA_ASSIGN_OR_RETURN(lhs, expr): evaluates the StatusOr `expr`; returns its
// status on error, else assigns (moves) its value to `lhs`.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

#define ILA_RETURN_IF_ERROR(expr)                                 \
  do {                                                            \
    if (::absl::Status ila_status_ = (expr); !ila_status_.ok()) { \
      return ila_status_;                                         \
    }                                                             \
  } while (0)

#define ILA_STATUS_CONCAT_INNER_(a, b) a##b
#define ILA_STATUS_CONCAT_(a, b) ILA_STATUS_CONCAT_INNER_(a, b)

#define ILA_ASSIGN_OR_RETURN(lhs, expr)                                        \
  ILA_ASSIGN_OR_RETURN_IMPL_(ILA_STATUS_CONCAT_(ila_statusor_, __LINE__), lhs, \
                             expr)

#define ILA_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, expr) \
  auto statusor = (expr);                               \
  if (!statusor.ok()) {                                 \
    return std::move(statusor).status();                \
  }                                                     \
  lhs = std::move(statusor).value()

namespace ila {

// Returns `status` with "context: " put before its message; OK stays OK.
inline absl::Status Annotate(const absl::Status& status,
                             absl::string_view context) {
  if (status.ok()) return status;
  return absl::Status(status.code(),
                      absl::StrCat(context, ": ", status.message()));
}

}  // namespace ila
