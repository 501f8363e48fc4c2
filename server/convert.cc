#include "server/convert.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"

namespace ila::server {
namespace {

std::string Field(absl::string_view path, absl::string_view name) {
  return path.empty() ? std::string(name) : absl::StrCat(path, ".", name);
}

absl::Status CheckTask(const std::string& task, absl::string_view path) {
  return Annotate(ValidateTaskName(task), Field(path, "task"));
}

absl::StatusOr<Locator> RequiredLocator(const std::string& text,
                                        absl::string_view path) {
  if (text.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(Field(path, "locator"),
                     ": required (four hex groups like 2001:db8:100:0)"));
  }
  auto l = ParseLocator(text);
  if (!l.ok()) return Annotate(l.status(), Field(path, "locator"));
  return *l;
}

absl::StatusOr<std::optional<int64_t>> Expected(bool has, int64_t value,
                                                absl::string_view path) {
  if (!has) return std::nullopt;
  if (value < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(Field(path, "expected_mod_revision"), ": ", value,
                     " is not a revision (revisions start at 1)"));
  }
  return value;
}

}  // namespace

absl::StatusOr<storage::RegisterOp> ToRegisterOp(
    const v1::RegisterTaskRequest& req, absl::string_view path) {
  storage::RegisterOp op;
  ILA_RETURN_IF_ERROR(CheckTask(req.task(), path));
  op.task = req.task();
  ILA_ASSIGN_OR_RETURN(op.locator, RequiredLocator(req.locator(), path));
  if (!req.identifier().empty()) {
    auto id = ParseIdentifier(req.identifier());
    if (!id.ok()) return Annotate(id.status(), Field(path, "identifier"));
    ILA_RETURN_IF_ERROR(
        Annotate(ValidateKernelIdentifier(*id), Field(path, "identifier")));
    op.identifier = *id;
  }
  if (!req.sir_prefix().empty()) {
    auto p = ParseSirPrefix(req.sir_prefix());
    if (!p.ok()) return Annotate(p.status(), Field(path, "sir_prefix"));
    op.sir_prefix = *p;
  }
  if (req.checksum_mode() != v1::CHECKSUM_MODE_UNSPECIFIED) {
    auto m = FromProtoChecksumMode(req.checksum_mode());
    if (!m.ok()) return Annotate(m.status(), Field(path, "checksum_mode"));
    op.checksum_mode = *m;
  }
  return op;
}

absl::StatusOr<storage::MoveOp> ToMoveOp(const v1::MoveTaskRequest& req,
                                         absl::string_view path) {
  storage::MoveOp op;
  ILA_RETURN_IF_ERROR(CheckTask(req.task(), path));
  op.task = req.task();
  ILA_ASSIGN_OR_RETURN(op.locator, RequiredLocator(req.locator(), path));
  ILA_ASSIGN_OR_RETURN(op.expected_mod_revision,
                       Expected(req.has_expected_mod_revision(),
                                req.expected_mod_revision(), path));
  return op;
}

absl::StatusOr<storage::UnregisterOp> ToUnregisterOp(
    const v1::UnregisterTaskRequest& req, absl::string_view path) {
  storage::UnregisterOp op;
  ILA_RETURN_IF_ERROR(CheckTask(req.task(), path));
  op.task = req.task();
  ILA_ASSIGN_OR_RETURN(op.expected_mod_revision,
                       Expected(req.has_expected_mod_revision(),
                                req.expected_mod_revision(), path));
  return op;
}

absl::StatusOr<storage::WriteRequest> ToWriteRequest(
    const v1::ApplyRequest& req, size_t max_operations) {
  const size_t n = static_cast<size_t>(req.operations_size());
  if (n == 0) {
    return absl::InvalidArgumentError("operations: empty; nothing to apply");
  }
  if (n > max_operations) {
    return absl::ResourceExhaustedError(
        absl::StrCat("operations: ", n, " operations exceed the limit of ",
                     max_operations, " per Apply (--max-apply-operations)"));
  }
  storage::WriteRequest out;
  out.batch = true;
  out.operations.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    const v1::Operation& op = req.operations(static_cast<int>(i));
    const std::string path = absl::StrCat("operations[", i, "]");
    switch (op.op_case()) {
      case v1::Operation::kRegister: {
        ILA_ASSIGN_OR_RETURN(
            storage::RegisterOp r,
            ToRegisterOp(op.register_(), absl::StrCat(path, ".register")));
        out.operations.emplace_back(std::move(r));
        break;
      }
      case v1::Operation::kMove: {
        ILA_ASSIGN_OR_RETURN(storage::MoveOp m,
                             ToMoveOp(op.move(), absl::StrCat(path, ".move")));
        out.operations.emplace_back(std::move(m));
        break;
      }
      case v1::Operation::kUnregister: {
        ILA_ASSIGN_OR_RETURN(
            storage::UnregisterOp u,
            ToUnregisterOp(op.unregister(), absl::StrCat(path, ".unregister")));
        out.operations.emplace_back(std::move(u));
        break;
      }
      case v1::Operation::OP_NOT_SET:
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": empty; set one of register, move, unregister"));
    }
  }
  return out;
}

void SetTimestamp(absl::Time t, google::protobuf::Timestamp* out) {
  if (t == absl::InfinitePast()) return;
  const int64_t nanos = absl::ToUnixNanos(t);
  out->set_seconds(nanos / 1000000000);
  out->set_nanos(static_cast<int32_t>(nanos % 1000000000));
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

void ToProto(const storage::Mapping& m, v1::Mapping* out) {
  out->set_task(m.task);
  out->set_identifier(m.identifier.value);
  out->set_locator(m.locator.value);
  out->set_sir_prefix(m.sir_prefix.value);
  out->set_checksum_mode(ToProtoChecksumMode(m.checksum_mode));
  out->set_create_revision(m.create_revision);
  out->set_mod_revision(m.mod_revision);
  out->set_version(m.version);
  SetTimestamp(m.update_time, out->mutable_update_time());
}

absl::StatusOr<storage::Mapping> FromProto(const v1::Mapping& m) {
  storage::Mapping out;
  out.task = m.task();
  out.identifier = Identifier{m.identifier()};
  out.locator = Locator{m.locator()};
  out.sir_prefix = SirPrefix{m.sir_prefix()};
  auto mode = FromProtoChecksumMode(m.checksum_mode());
  if (!mode.ok()) return Annotate(mode.status(), "checksum_mode");
  out.checksum_mode = *mode;
  out.create_revision = m.create_revision();
  out.mod_revision = m.mod_revision();
  out.version = m.version();
  out.update_time = FromTimestamp(m.update_time());
  return out;
}

std::string EncodePageToken(const PageToken& token) {
  return absl::WebSafeBase64Escape(
      absl::StrCat("v1:", token.revision, ":", token.after.value));
}

absl::StatusOr<PageToken> DecodePageToken(absl::string_view token) {
  std::string raw;
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: \"", token.substr(0, 64),
                     "\" is not a token this server issued; pass "
                     "next_page_token unchanged"));
  };
  if (token.size() > 256 || !absl::WebSafeBase64Unescape(token, &raw)) {
    return bad();
  }
  std::vector<absl::string_view> parts = absl::StrSplit(raw, ':');
  PageToken out;
  if (parts.size() != 3 || parts[0] != "v1" ||
      !absl::SimpleAtoi(parts[1], &out.revision) || out.revision < 1 ||
      !absl::SimpleAtoi(parts[2], &out.after.value)) {
    return bad();
  }
  return out;
}

absl::StatusOr<storage::ListOptions> ToListOptions(const v1::ListRequest& req,
                                                   size_t default_page_size,
                                                   size_t max_page_size) {
  storage::ListOptions o;
  if (req.page_size() < 0 ||
      static_cast<size_t>(req.page_size()) > max_page_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size: ", req.page_size(), " is outside 0..", max_page_size));
  }
  o.limit = req.page_size() == 0 ? default_page_size
                                 : static_cast<size_t>(req.page_size());
  if (!req.page_token().empty()) {
    ILA_ASSIGN_OR_RETURN(PageToken t, DecodePageToken(req.page_token()));
    o.revision = t.revision;
    o.after = t.after;
  }
  if (!req.locator().empty()) {
    auto l = ParseLocator(req.locator());
    if (!l.ok()) return Annotate(l.status(), "locator");
    o.locator = *l;
  }
  if (!req.sir_prefix().empty()) {
    auto p = ParseSirPrefix(req.sir_prefix());
    if (!p.ok()) return Annotate(p.status(), "sir_prefix");
    o.sir_prefix = *p;
  }
  return o;
}

}  // namespace ila::server
