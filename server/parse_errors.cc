#include "server/parse_errors.h"

#include <mutex>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/support/server_interceptor.h"

namespace ila::server {
namespace {

// Set by the log handler on the thread that parsed the request; read by
// the interceptor on the same thread right after (gRPC deserializes a
// callback request and runs the POST_RECV_MESSAGE hooks in one go).
thread_local std::string t_utf8_field;

void ProtobufLog(google::protobuf::LogLevel level, const char* filename,
                 int line, const std::string& message) {
  std::string field = Utf8ErrorField(message);
  if (!field.empty()) {
    t_utf8_field = field;
    ILA_LOG_DEBUG("protobuf: {}", message);  // the client is told instead
    return;
  }
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO:
      ILA_LOG_INFO("protobuf {}:{}: {}", filename, line, message);
      break;
    case google::protobuf::LOGLEVEL_WARNING:
      ILA_LOG_WARN("protobuf {}:{}: {}", filename, line, message);
      break;
    default:
      ILA_LOG_ERROR("protobuf {}:{}: {}", filename, line, message);
      break;
  }
}

class ParseErrorInterceptor : public grpc::experimental::Interceptor {
 public:
  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    using grpc::experimental::InterceptionHookPoints;
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE)) {
      std::string field = TakeUtf8ErrorField();
      if (methods->GetRecvMessage() == nullptr) {
        failed_ = true;
        field_ = std::move(field);
      }
    }
    if (failed_ && methods->QueryInterceptionHookPoint(
                       InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED &&
          status.error_message().empty()) {
        methods->ModifySendStatus(grpc::Status(
            grpc::StatusCode::INVALID_ARGUMENT, ParseErrorMessage(field_)));
      }
    }
    methods->Proceed();
  }

 private:
  bool failed_ = false;
  std::string field_;
};

class ParseErrorInterceptorFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new ParseErrorInterceptor();
  }
};

}  // namespace

void InstallProtobufLogHandler() {
  static std::once_flag once;
  std::call_once(once, [] { google::protobuf::SetLogHandler(&ProtobufLog); });
}

std::string TakeUtf8ErrorField() {
  return std::exchange(t_utf8_field, std::string());
}

std::string Utf8ErrorField(absl::string_view line) {
  // protobuf 3.21: "String field 'pkg.Message.field' contains invalid UTF-8
  // data when parsing a protocol buffer. ..." (serializing is only logged).
  constexpr absl::string_view kStart = "String field '";
  if (!absl::StartsWith(line, kStart) ||
      !absl::StrContains(line, "invalid UTF-8 data when parsing")) {
    return "";
  }
  line.remove_prefix(kStart.size());
  size_t end = line.find('\'');
  if (end == absl::string_view::npos) return "";
  return std::string(line.substr(0, end));
}

std::string ParseErrorMessage(absl::string_view field) {
  if (field.empty()) {
    return "request: not a valid protobuf message of this method's type "
           "(malformed bytes, or a string field that is not valid UTF-8); "
           "nothing was changed";
  }
  size_t dot = field.rfind('.');
  absl::string_view name =
      dot == absl::string_view::npos ? field : field.substr(dot + 1);
  return absl::StrCat(name, ": not valid UTF-8 (field ", field,
                      "; string fields must be UTF-8); nothing was changed");
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
MakeParseErrorInterceptorFactory() {
  return std::make_unique<ParseErrorInterceptorFactory>();
}

}  // namespace ila::server
