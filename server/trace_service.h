// Diagnostics.Trace (design.md §8): resolves the target (task, identifier,
// SIR address or any IPv6 address), probes it from this host with the
// trace/ Prober, and explains each answer: where the quoted destination
// differs from the probe's, the hop saw the packet after ILA translation;
// the quoted locator is looked up among the host agents' locators (which
// host), the identifier (checksum-neutral change undone) in the store
// (which task), and compared with the mapping (a stale router).
//
// TraceSession holds that logic without gRPC (tested directly);
// StartTrace runs one on its own thread for a server-streaming call.
//
// Thread-safety: a TraceSession is used by one thread at a time.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "ila/v1/diagnostics.pb.h"
#include "server/stream_hub.h"
#include "storage/mapping_store.h"
#include "trace/prober.h"

namespace grpc {
class CallbackServerContext;
template <class Response>
class ServerWriteReactor;
}  // namespace grpc

namespace ila::server {

class TraceSession {
 public:
  TraceSession(storage::MappingStore* store, StreamHub* hub)
      : store_(store), hub_(hub) {}

  // Checks the request (INVALID_ARGUMENT naming the field) and resolves its
  // target (NOT_FOUND for an unknown task or identifier).
  absl::Status Prepare(const v1::TraceRequest& request);
  const trace::ProbeOptions& options() const { return options_; }
  // What the prober cannot see (Prober::Limitations), for the summary.
  void set_limitations(std::string text) { limitations_ = std::move(text); }

  // The event for one probe result; remembers it for the summary.
  v1::ProbeEvent Annotate(const trace::ProbeResult& result);
  // Per hop: the answering address, RTTs, losses, the ILA column; up to the
  // first hop that reached the destination.
  v1::TraceSummary Summary() const;

 private:
  v1::IlaRewrite Explain(const trace::Ipv6Bytes& quoted);

  storage::MappingStore* const store_;
  StreamHub* const hub_;
  v1::TraceRequest request_;
  trace::ProbeOptions options_;
  std::string task_;  // when the target is a task's SIR address
  std::string limitations_;
  std::map<uint64_t, std::string> hosts_;  // locator -> host agent(s)
  std::map<trace::Ipv6Bytes, v1::IlaRewrite> explained_;
  std::map<int, std::vector<v1::ProbeEvent>> events_;  // by ttl
};

// The reactor for one Diagnostics.Trace call: the session runs on a thread
// of its own; events go out one write at a time; a cancelled call stops the
// probes. At most `kMaxConcurrentTraces` at once (RESOURCE_EXHAUSTED).
// A non-OK `refused` (the caller's authorization) ends the call with it.
inline constexpr int kMaxConcurrentTraces = 4;
grpc::ServerWriteReactor<v1::TraceEvent>* StartTrace(
    grpc::CallbackServerContext* ctx, const v1::TraceRequest* request,
    storage::MappingStore* store, StreamHub* hub,
    absl::Status refused = absl::OkStatus());

}  // namespace ila::server
