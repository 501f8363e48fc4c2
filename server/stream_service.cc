#include "server/stream_service.h"

#include <grpcpp/impl/codegen/proto_utils.h>

#include "common/logging.h"
#include "server/mapping_service.h"
#include "server/parse_errors.h"
#include "server/trace_service.h"

namespace ila::server {
namespace {

// A host certificate subscribes only to its own locators. Locators that do
// not parse are left to the hub, which names the bad field.
absl::Status CheckHello(const Identity& who, const v1::Hello& hello) {
  std::vector<Locator> locators;
  for (const std::string& text : hello.filter().locators()) {
    auto l = ParseLocator(text);
    if (l.ok()) locators.push_back(*l);
  }
  if (who.role == Role::kHost &&
      locators.size() != static_cast<size_t>(hello.filter().locators_size())) {
    return absl::OkStatus();  // the hub rejects the malformed filter
  }
  return CheckSubscription(who, locators);
}

// One Subscribe stream. Exactly one write in flight; Finish() exactly once,
// deferred until the write in flight (if any) completes; deletes itself in
// OnDone after leaving the hub.
class SubscribeReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
      public SubscriberSink {
 public:
  SubscribeReactor(StreamHub* hub, const Authorizer* auth,
                   grpc::CallbackServerContext* ctx)
      : hub_(hub),
        peer_(ctx->peer()),
        identity_(auth->Authorize(*ctx, Action::kSubscribe)),
        limits_(auth->limits()) {
    if (identity_.ok() && limits_ != nullptr) {
      client_ = ClientLimits::ClientOf(*ctx, auth->tls());
      stream_slot_ = limits_->AcquireStream(client_);
      holds_slot_ = stream_slot_.ok();
    }
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // the client closed its side, or the stream broke
      Terminate(grpc::Status::OK);
      return;
    }
    v1::SubscribeRequest req;
    TakeUtf8ErrorField();  // only this parse's finding counts
    grpc::Status parsed =
        grpc::SerializationTraits<v1::SubscribeRequest>::Deserialize(&in_,
                                                                     &req);
    if (!parsed.ok()) {
      Terminate(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                             ParseErrorMessage(TakeUtf8ErrorField())));
      return;
    }
    absl::Status status;
    if (sub_ == nullptr) {
      if (!req.has_hello()) {
        status = absl::InvalidArgumentError(
            "hello: the first message of a stream must be a Hello");
      } else if (!identity_.ok()) {
        status = identity_.status();
      } else if (!stream_slot_.ok()) {
        status = stream_slot_;
      } else if (status = CheckHello(*identity_, req.hello()); !status.ok()) {
      } else {
        auto sub = hub_->Add(req.hello(), peer_, this);
        status = sub.status();
        if (sub.ok()) {
          absl::MutexLock l(&mu_);
          sub_ = *std::move(sub);
        }
      }
      if (status.ok()) Wake();
    } else if (req.has_ack()) {
      status = hub_->OnAck(*sub_, req.ack());
    } else if (req.has_nack()) {
      hub_->OnNack(*sub_, req.nack());
    } else if (req.has_hello()) {
      status = absl::InvalidArgumentError("hello: sent twice on one stream");
    } else {
      status = absl::InvalidArgumentError("request: empty SubscribeRequest");
    }
    if (!status.ok()) {
      Terminate(ToGrpcStatus(status));
      return;
    }
    StartRead(&in_);
  }

  // Decisions are made under mu_; StartWrite/Finish are called after it is
  // released, so a reaction that gRPC runs inline cannot deadlock.
  void Wake() override {
    bool write = false, finish = false;
    {
      absl::MutexLock l(&mu_);
      if (writing_ || finish_requested_ || sub_ == nullptr) return;
      auto next = hub_->NextMessage(*sub_);
      if (!next.ok()) {
        ILA_LOG_ERROR("stream to {}: {}", peer_, next.status().message());
        finish = RequestFinishLocked(ToGrpcStatus(next.status()));
      } else if (next->has_value()) {
        out_ = **std::move(next);
        writing_ = write = true;
      }
    }
    if (write) StartWrite(&out_);
    if (finish) DoFinish();
  }

  void OnWriteDone(bool ok) override {
    bool finish = false;
    {
      absl::MutexLock l(&mu_);
      writing_ = false;
      if (!ok && !finish_requested_) {
        finish_requested_ = true;
        finish_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                      "stream broken while writing");
      }
      if (finish_requested_) finish = ClaimFinishLocked();
    }
    if (finish) {
      DoFinish();
      return;
    }
    Wake();
  }

  void Close(const grpc::Status& status) override { Terminate(status); }

  void OnCancel() override {
    Terminate(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
  }

  void OnDone() override {
    std::shared_ptr<Subscription> sub;
    {
      absl::MutexLock l(&mu_);
      sub = sub_;
    }
    if (sub != nullptr) hub_->Remove(sub);
    if (holds_slot_) limits_->ReleaseStream(client_);
    delete this;
  }

 private:
  void Terminate(const grpc::Status& status) {
    bool finish;
    {
      absl::MutexLock l(&mu_);
      finish = RequestFinishLocked(status);
    }
    if (finish) DoFinish();
  }

  // Records the final status; true when the caller must call DoFinish().
  bool RequestFinishLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_requested_) return false;
    finish_requested_ = true;
    finish_status_ = status;
    return !writing_ && ClaimFinishLocked();
  }

  bool ClaimFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return false;
    finished_ = true;
    return true;
  }

  // Called exactly once (guarded by finished_).
  void DoFinish() {
    grpc::Status status;
    {
      absl::MutexLock l(&mu_);
      status = finish_status_;
    }
    Finish(status);
  }

  StreamHub* const hub_;
  const std::string peer_;
  const absl::StatusOr<Identity> identity_;  // from the client certificate
  ClientLimits* const limits_;
  std::string client_;
  absl::Status stream_slot_;  // why the client may not open another stream
  bool holds_slot_ = false;   // released in OnDone
  grpc::ByteBuffer in_;       // only the read path touches it
  absl::Mutex mu_;
  std::shared_ptr<Subscription> sub_ ABSL_GUARDED_BY(mu_);
  grpc::ByteBuffer out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>*
MappingStreamImpl::Subscribe(grpc::CallbackServerContext* ctx) {
  return new SubscribeReactor(hub_, auth_, ctx);
}

grpc::ServerUnaryReactor* DiagnosticsImpl::ListSubscribers(
    grpc::CallbackServerContext* ctx, const v1::ListSubscribersRequest* req,
    v1::ListSubscribersResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (auto id = auth_->Authorize(*ctx, Action::kDiagnose); !id.ok()) {
    reactor->Finish(ToGrpcStatus(id.status()));
    return reactor;
  }
  *resp = hub_->ListSubscribers();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<v1::TraceEvent>* DiagnosticsImpl::Trace(
    grpc::CallbackServerContext* ctx, const v1::TraceRequest* request) {
  auto id = auth_->Authorize(*ctx, Action::kDiagnose);
  return StartTrace(ctx, request, store_, hub_, id.status());
}

}  // namespace ila::server
