// Folding the probe results of one hop into a TraceHop, the same way in
// ila-server's summary and in `ilactl trace`'s live output.
//
// Thread-safety: pure functions; thread-safe.
#pragma once

#include "ila/v1/diagnostics.pb.h"

namespace ila {

// Adds one probe's result to its hop: the first answering address, its
// RTT, a loss when nothing answered, the first quote and ILA explanation.
void AddProbeToHop(const v1::ProbeEvent& probe, v1::TraceHop* hop);

}  // namespace ila
