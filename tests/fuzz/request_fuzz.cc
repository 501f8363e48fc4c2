// libFuzzer target: the validation of everything a client or the server
// sends — RPC requests (server/convert.h), page tokens, stream filters,
// certificate SAN URIs (server/auth.h) and, on the agent's side, the
// mappings it turns into routes (router-sync/reconcile.h). The first byte
// picks the input kind, the rest is its serialized protobuf (or text).
// Anything must be accepted or refused with INVALID_ARGUMENT /
// UNAUTHENTICATED, never crash; what is accepted must be within the limits
// the validation promises.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "google/protobuf/stubs/logging.h"
#include "ila/v1/stream.pb.h"
#include "router-sync/reconcile.h"
#include "server/auth.h"
#include "server/convert.h"
#include "server/stream_filter.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using namespace ila;

constexpr size_t kMaxOperations = 64;

bool Refused(const absl::Status& s, absl::StatusCode code) {
  return s.code() == code && !s.message().empty();
}
bool Invalid(const absl::Status& s) {
  return Refused(s, absl::StatusCode::kInvalidArgument);
}

// Mutated messages make protobuf log every invalid UTF-8 string: not news.
[[maybe_unused]] google::protobuf::LogHandler* const kQuiet =
    google::protobuf::SetLogHandler(nullptr);

void CheckTask(const std::string& task) {
  FUZZ_CHECK(ValidateTaskName(task).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t kind = data[0] % 9;
  const std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (kind) {
    case 0: {
      v1::RegisterTaskRequest r;
      if (!r.ParseFromString(rest)) return 0;
      auto op = server::ToRegisterOp(r);
      if (op.ok())
        CheckTask(op->task);
      else
        FUZZ_CHECK(Invalid(op.status()));
      break;
    }
    case 1: {
      v1::MoveTaskRequest r;
      if (!r.ParseFromString(rest)) return 0;
      auto op = server::ToMoveOp(r);
      if (op.ok())
        CheckTask(op->task);
      else
        FUZZ_CHECK(Invalid(op.status()));
      break;
    }
    case 2: {
      v1::UnregisterTaskRequest r;
      if (!r.ParseFromString(rest)) return 0;
      auto op = server::ToUnregisterOp(r);
      if (op.ok())
        CheckTask(op->task);
      else
        FUZZ_CHECK(Invalid(op.status()));
      break;
    }
    case 3: {
      v1::ApplyRequest r;
      if (!r.ParseFromString(rest)) return 0;
      auto w = server::ToWriteRequest(r, kMaxOperations);
      if (w.ok()) {
        FUZZ_CHECK(!w->operations.empty());
        FUZZ_CHECK(w->operations.size() <= kMaxOperations);
        FUZZ_CHECK(w->operations.size() ==
                   static_cast<size_t>(r.operations_size()));
      } else {
        FUZZ_CHECK(Invalid(w.status()) ||
                   Refused(w.status(), absl::StatusCode::kResourceExhausted));
      }
      break;
    }
    case 4: {
      v1::ListRequest r;
      if (!r.ParseFromString(rest)) return 0;
      auto o = server::ToListOptions(r, 100, 1000);
      if (o.ok())
        FUZZ_CHECK(o->limit >= 1 && o->limit <= 1000);
      else
        FUZZ_CHECK(Invalid(o.status()));
      break;
    }
    case 5: {
      auto t = server::DecodePageToken(rest);
      if (t.ok()) {
        auto again = server::DecodePageToken(server::EncodePageToken(*t));
        FUZZ_CHECK(again.ok() && again->revision == t->revision &&
                   again->after == t->after);
      } else {
        FUZZ_CHECK(Invalid(t.status()));
      }
      break;
    }
    case 6: {
      v1::Filter f;
      if (!f.ParseFromString(rest)) return 0;
      auto filter = server::ParseFilter(f);
      if (filter.ok()) {
        FUZZ_CHECK(filter->shard_count == 0 ||
                   filter->shard_index < filter->shard_count);
        FUZZ_CHECK(filter->locators.size() <=
                   static_cast<size_t>(f.locators_size()));
      } else {
        FUZZ_CHECK(Invalid(filter.status()));
      }
      break;
    }
    case 7: {
      const std::vector<std::string> uris = absl::StrSplit(rest, '\n');
      auto who = server::IdentityFromUris(uris);
      if (who.ok()) {
        FUZZ_CHECK(who->role != server::Role::kHost || !who->locators.empty());
      } else {
        FUZZ_CHECK(Refused(who.status(), absl::StatusCode::kUnauthenticated));
      }
      break;
    }
    default: {
      // What the agent gets from the server: a mapping it must program, or
      // refuse naming the task.
      v1::Mapping m;
      if (!m.ParseFromString(rest)) return 0;
      auto converted = server::FromProto(m);
      if (!converted.ok()) FUZZ_CHECK(Invalid(converted.status()));
      router_sync::RouteTemplate t;
      auto route = router_sync::RouteForMapping(m, t);
      if (!route.ok()) FUZZ_CHECK(Invalid(route.status()));
      auto mode = router_sync::MappingChecksumMode(m, std::nullopt);
      if (!mode.ok()) FUZZ_CHECK(Invalid(mode.status()));
      break;
    }
  }
  return 0;
}
