// Open-loop paced writes for the propagation benchmarks (stream_bench,
// etcd_bench W3): write i is due at start + i/rate whether or not the
// earlier ones were acknowledged, so a server that answers slowly does not
// lower the rate it is measured at. `threads` threads make synchronous
// calls (write i on thread i % threads): at most `threads` writes are in
// flight. Synchronous calls, not gRPC callback-API ones: a callback may
// report completion before gRPC has released its call, and a benchmark
// that then exits crashed inside gRPC (etcd_bench, session 6).
//
// Thread-safety: PacedWrites blocks its caller until every write has been
// answered; `write_one` is called from `threads` threads at once.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace ila::bench {

struct PacedWriteResult {
  // Per revision: when its write was sent and when it was acknowledged.
  absl::flat_hash_map<int64_t, std::pair<absl::Time, absl::Time>> acked;
  int64_t last_revision = 0;
  int64_t failed = 0;  // writes that returned revision 0
  // Writes acknowledged per second, from the start to the last one.
  double rate = 0;
};

// `write_one(i)` makes write i and returns its revision, 0 on failure.
inline PacedWriteResult PacedWrites(
    int64_t count, double rate, int threads,
    const std::function<int64_t(int64_t i)>& write_one) {
  PacedWriteResult out;
  absl::Mutex mu;
  absl::Time last_ack;
  const absl::Time start = absl::Now();
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      for (int64_t i = w; i < count; i += threads) {
        const absl::Time due =
            start + absl::Seconds(static_cast<double>(i) / rate);
        const absl::Time now = absl::Now();
        if (due > now) absl::SleepFor(due - now);  // pacing, not syncing
        const absl::Time sent = absl::Now();
        const int64_t revision = write_one(i);
        const absl::Time ack = absl::Now();
        absl::MutexLock l(&mu);
        if (revision == 0) {
          ++out.failed;
          continue;
        }
        out.acked[revision] = {sent, ack};
        out.last_revision = std::max(out.last_revision, revision);
        last_ack = std::max(last_ack, ack);
      }
    });
  }
  for (std::thread& t : workers) t.join();
  const int64_t answered = count - out.failed;
  if (answered > 0 && last_ack > start) {
    out.rate =
        static_cast<double>(answered) / absl::ToDoubleSeconds(last_ack - start);
  }
  return out;
}

}  // namespace ila::bench
