// Output formats of ilactl: human tables and JSON (one object per mapping).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "ila/v1/diagnostics.pb.h"
#include "ila/v1/mapping.pb.h"

namespace ila::client {

// `s` as a JSON string literal, quotes included.
std::string JsonQuote(absl::string_view s);

// {"task":..., "identifier":"2000:0:0:1", "locator":"2001:db8:100:0",
//  "sir_prefix":..., "sir_address":..., "checksum_mode":"adj-transport",
//  "create_revision":1, "mod_revision":1, "version":1, "update_time":"..."}
// `extra` is appended inside the object verbatim (e.g. ,"revision":3).
std::string MappingJson(const v1::Mapping& m, absl::string_view extra = "");

// A table with a header line; columns padded to their widest cell.
std::string MappingTable(const std::vector<v1::Mapping>& mappings);

std::string StatusJson(const v1::StatusResponse& s);
std::string StatusText(const v1::StatusResponse& s);

// "all", or e.g. "locators=2001:db8:1:0,2001:db8:2:0 shard=1/8
// sir-prefix=fd00:0:0:1".
std::string FilterText(const v1::Filter& filter);

// ilactl subscribers: a table, or one JSON object per subscriber.
std::string SubscribersTable(const v1::ListSubscribersResponse& resp,
                             absl::Time now);
std::string SubscriberJson(const v1::SubscriberInfo& s, int64_t revision);

// Aligns rows of cells into columns separated by two spaces.
// `ilactl trace`: a hop as traceroute prints it plus the ILA column, e.g.
//  3  2001:db8:f0::1  0.41 ms  *  0.38 ms  translated -> locator
//     2001:db8:1:0 (host h1) task web/1
std::string TraceHopLine(const v1::TraceHop& hop, int queries);
// The ILA column alone ("" when the hop saw no translation).
std::string IlaColumn(const v1::IlaRewrite& ila);
// The whole trace as one JSON object (target, destination, protocol,
// reached, hops[...]).
std::string TraceJson(const v1::TraceSummary& summary);
std::string ProbeProtocolName(v1::ProbeProtocol p);

std::string FormatColumns(const std::vector<std::vector<std::string>>& rows);

}  // namespace ila::client
