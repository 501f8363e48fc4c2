#include "server/mapping_service.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/version.h"
#include "server/convert.h"

namespace ila::server {
namespace {

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx,
                               const absl::Status& status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// A single-operation write request, or the error that validating it gave.
template <typename Op>
absl::StatusOr<storage::WriteRequest> Single(absl::StatusOr<Op> op) {
  if (!op.ok()) return op.status();
  return storage::WriteRequest{{*std::move(op)}, false};
}

}  // namespace

// Submits `request` and finishes the RPC from the store's completion: `fill`
// writes the response on success. Never blocks the gRPC thread.
template <typename Fill>
grpc::ServerUnaryReactor* MappingServiceImpl::Commit(
    grpc::CallbackServerContext* ctx,
    absl::StatusOr<storage::WriteRequest> request, Fill fill) {
  if (!request.ok()) return Done(ctx, request.status());
  auto* reactor = ctx->DefaultReactor();
  store_->Submit(*std::move(request),
                 [reactor, fill = std::move(fill)](
                     absl::StatusOr<storage::CommitResult> r) mutable {
                   if (r.ok()) fill(*r);
                   reactor->Finish(ToGrpcStatus(r.status()));
                 });
  return reactor;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

MappingServiceImpl::MappingServiceImpl(storage::MappingStore* store,
                                       MappingServiceOptions options)
    : store_(store), options_([&] {
        static const Authorizer kPlaintext(/*tls=*/false);
        if (options.auth == nullptr) options.auth = &kPlaintext;
        return std::move(options);
      }()) {}

grpc::ServerUnaryReactor* MappingServiceImpl::RegisterTask(
    grpc::CallbackServerContext* ctx, const v1::RegisterTaskRequest* req,
    v1::RegisterTaskResponse* resp) {
  if (auto id = options_.auth->Authorize(*ctx, Action::kWrite); !id.ok()) {
    return Done(ctx, id.status());
  }
  return Commit(
      ctx, Single(ToRegisterOp(*req)), [resp](const storage::CommitResult& r) {
        const storage::OperationResult& res = r.results[0];
        ToProto(res.mapping, resp->mutable_mapping());
        resp->set_sir_address(FormatSirAddress(res.mapping.sir_address()));
        resp->set_revision(r.revision);
        resp->set_created(res.changed);
      });
}

grpc::ServerUnaryReactor* MappingServiceImpl::MoveTask(
    grpc::CallbackServerContext* ctx, const v1::MoveTaskRequest* req,
    v1::MoveTaskResponse* resp) {
  if (auto id = options_.auth->Authorize(*ctx, Action::kWrite); !id.ok()) {
    return Done(ctx, id.status());
  }
  return Commit(ctx, Single(ToMoveOp(*req)),
                [resp](const storage::CommitResult& r) {
                  const storage::OperationResult& res = r.results[0];
                  ToProto(res.mapping, resp->mutable_mapping());
                  resp->set_revision(r.revision);
                  resp->set_changed(res.changed);
                  if (res.previous) {
                    resp->set_previous_locator(res.previous->locator.value);
                  }
                });
}

grpc::ServerUnaryReactor* MappingServiceImpl::UnregisterTask(
    grpc::CallbackServerContext* ctx, const v1::UnregisterTaskRequest* req,
    v1::UnregisterTaskResponse* resp) {
  if (auto id = options_.auth->Authorize(*ctx, Action::kWrite); !id.ok()) {
    return Done(ctx, id.status());
  }
  return Commit(ctx, Single(ToUnregisterOp(*req)),
                [resp](const storage::CommitResult& r) {
                  ToProto(r.results[0].mapping, resp->mutable_mapping());
                  resp->set_revision(r.revision);
                });
}

grpc::ServerUnaryReactor* MappingServiceImpl::Apply(
    grpc::CallbackServerContext* ctx, const v1::ApplyRequest* req,
    v1::ApplyResponse* resp) {
  if (auto id = options_.auth->Authorize(*ctx, Action::kWrite); !id.ok()) {
    return Done(ctx, id.status());
  }
  return Commit(
      ctx, ToWriteRequest(*req, options_.max_apply_operations),
      [resp](const storage::CommitResult& r) {
        resp->set_revision(r.revision);
        resp->mutable_results()->Reserve(static_cast<int>(r.results.size()));
        for (const auto& res : r.results) {
          auto* out = resp->add_results();
          ToProto(res.mapping, out->mutable_mapping());
          out->set_changed(res.changed);
        }
      });
}

grpc::ServerUnaryReactor* MappingServiceImpl::Lookup(
    grpc::CallbackServerContext* ctx, const v1::LookupRequest* req,
    v1::LookupResponse* resp) {
  if (auto id = options_.auth->Authorize(*ctx, Action::kRead); !id.ok()) {
    return Done(ctx, id.status());
  }
  absl::StatusOr<storage::LookupResult> r;
  switch (req->key_case()) {
    case v1::LookupRequest::kTask: {
      if (absl::Status s = ValidateTaskName(req->task()); !s.ok()) {
        return Done(ctx, Annotate(s, "task"));
      }
      r = store_->LookupTask(req->task());
      break;
    }
    case v1::LookupRequest::kIdentifier: {
      auto id = ParseIdentifier(req->identifier());
      if (!id.ok()) return Done(ctx, Annotate(id.status(), "identifier"));
      r = store_->LookupIdentifier(*id);
      break;
    }
    case v1::LookupRequest::kSirAddress: {
      auto a = ParseSirAddress(req->sir_address());
      if (!a.ok()) return Done(ctx, Annotate(a.status(), "sir_address"));
      r = store_->LookupIdentifier(a->identifier);
      if (r.ok() && r->mapping.sir_prefix != a->prefix) {
        r = absl::NotFoundError(absl::StrCat(
            "no task has SIR address ", FormatSirAddress(*a), " (identifier ",
            FormatIdentifier(a->identifier), " belongs to task \"",
            r->mapping.task, "\" under SIR prefix ",
            FormatSirPrefix(r->mapping.sir_prefix), ")"));
      } else if (!r.ok() && absl::IsNotFound(r.status())) {
        r = absl::NotFoundError(
            absl::StrCat("no task has SIR address ", FormatSirAddress(*a)));
      }
      break;
    }
    case v1::LookupRequest::KEY_NOT_SET:
      return Done(ctx, absl::InvalidArgumentError(
                           "key: set one of task, identifier, sir_address"));
  }
  if (!r.ok()) return Done(ctx, r.status());
  ToProto(r->mapping, resp->mutable_mapping());
  resp->set_revision(r->revision);
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* MappingServiceImpl::List(
    grpc::CallbackServerContext* ctx, const v1::ListRequest* req,
    v1::ListResponse* resp) {
  if (auto id = options_.auth->Authorize(*ctx, Action::kRead); !id.ok()) {
    return Done(ctx, id.status());
  }
  auto options =
      ToListOptions(*req, options_.default_page_size, options_.max_page_size);
  if (!options.ok()) return Done(ctx, options.status());
  auto page = store_->List(*options);
  if (!page.ok()) {
    return Done(ctx, absl::IsOutOfRange(page.status())
                         ? Annotate(page.status(), "page_token")
                         : page.status());
  }
  resp->mutable_mappings()->Reserve(static_cast<int>(page->mappings.size()));
  for (const auto& m : page->mappings) ToProto(m, resp->add_mappings());
  resp->set_revision(page->revision);
  if (page->more) {
    resp->set_next_page_token(EncodePageToken(
        PageToken{page->revision, page->mappings.back().identifier}));
  }
  return Done(ctx, absl::OkStatus());
}

grpc::ServerUnaryReactor* MappingServiceImpl::Status(
    grpc::CallbackServerContext* ctx, const v1::StatusRequest* req,
    v1::StatusResponse* resp) {
  if (auto id = options_.auth->Authorize(*ctx, Action::kRead); !id.ok()) {
    return Done(ctx, id.status());
  }
  auto st = store_->Status();
  if (!st.ok()) return Done(ctx, st.status());
  resp->set_revision(st->revision);
  resp->set_mapping_count(st->mapping_count);
  resp->set_compacted_revision(st->compacted_revision);
  resp->set_version(std::string(Version()));
  resp->set_sync_mode(options_.sync_mode);
  return Done(ctx, absl::OkStatus());
}

}  // namespace ila::server
