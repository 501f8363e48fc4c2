#include "ila/v1/trace_hop.h"

namespace ila {

void AddProbeToHop(const v1::ProbeEvent& e, v1::TraceHop* hop) {
  hop->set_ttl(e.ttl());
  if (e.address().empty()) {
    hop->set_lost(hop->lost() + 1);
    return;
  }
  if (hop->address().empty()) hop->set_address(e.address());
  hop->add_rtts_ms(e.rtt_ms());
  if (hop->quoted_destination().empty()) {
    hop->set_quoted_destination(e.quoted_destination());
  }
  if (e.has_ila() && !hop->has_ila()) *hop->mutable_ila() = e.ila();
  if (e.reached()) hop->set_reached(true);
}

}  // namespace ila
