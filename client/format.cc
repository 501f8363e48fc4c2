#include "client/format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/address.h"

namespace ila::client {
namespace {

std::string ChecksumName(int mode) {
  switch (mode) {
    case v1::CHECKSUM_MODE_ADJ_TRANSPORT:
      return "adj-transport";
    case v1::CHECKSUM_MODE_NEUTRAL_MAP:
      return "neutral-map";
    case v1::CHECKSUM_MODE_NEUTRAL_MAP_AUTO:
      return "neutral-map-auto";
    case v1::CHECKSUM_MODE_NO_ACTION:
      return "no-action";
    default:
      return absl::StrCat("unknown(", mode, ")");
  }
}

std::string UpdateTime(const v1::Mapping& m) {
  absl::Time t = absl::FromUnixSeconds(m.update_time().seconds()) +
                 absl::Nanoseconds(m.update_time().nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

}  // namespace

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20) {
          absl::StrAppendFormat(&out, "\\u%04x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string MappingJson(const v1::Mapping& m, absl::string_view extra) {
  SirAddress address{SirPrefix{m.sir_prefix()}, Identifier{m.identifier()}};
  return absl::StrCat(
      "{\"task\":", JsonQuote(m.task()),
      ",\"identifier\":", JsonQuote(FormatGroups(m.identifier())),
      ",\"locator\":", JsonQuote(FormatGroups(m.locator())),
      ",\"sir_prefix\":", JsonQuote(FormatGroups(m.sir_prefix())),
      ",\"sir_address\":", JsonQuote(FormatSirAddress(address)),
      ",\"checksum_mode\":", JsonQuote(ChecksumName(m.checksum_mode())),
      ",\"create_revision\":", m.create_revision(),
      ",\"mod_revision\":", m.mod_revision(), ",\"version\":", m.version(),
      ",\"update_time\":", JsonQuote(UpdateTime(m)), extra, "}");
}

std::string FormatColumns(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string out;
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      absl::StrAppend(&line, row[i]);
      if (i + 1 < row.size()) {
        line.append(widths[i] - row[i].size() + 2, ' ');
      }
    }
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string MappingTable(const std::vector<v1::Mapping>& mappings) {
  std::vector<std::vector<std::string>> rows;
  rows.push_back({"TASK", "IDENTIFIER", "LOCATOR", "SIR-ADDRESS", "CSUM-MODE",
                  "CREATED", "MODIFIED", "VERSION"});
  for (const auto& m : mappings) {
    SirAddress address{SirPrefix{m.sir_prefix()}, Identifier{m.identifier()}};
    rows.push_back({m.task(), FormatGroups(m.identifier()),
                    FormatGroups(m.locator()), FormatSirAddress(address),
                    ChecksumName(m.checksum_mode()),
                    absl::StrCat(m.create_revision()),
                    absl::StrCat(m.mod_revision()), absl::StrCat(m.version())});
  }
  return FormatColumns(rows);
}

std::string FilterText(const v1::Filter& filter) {
  std::vector<std::string> parts;
  if (filter.locators_size() > 0) {
    std::vector<std::string> locs;
    for (const auto& l : filter.locators()) {
      auto parsed = ParseLocator(l);
      locs.push_back(parsed.ok() ? FormatLocator(*parsed) : l);
    }
    parts.push_back(absl::StrCat("locators=", absl::StrJoin(locs, ",")));
  }
  if (filter.shard_count() > 0) {
    parts.push_back(absl::StrCat("shard=", filter.shard_index(), "/",
                                 filter.shard_count()));
  }
  if (!filter.sir_prefix().empty()) {
    parts.push_back(absl::StrCat("sir-prefix=", filter.sir_prefix()));
  }
  return parts.empty() ? "all" : absl::StrJoin(parts, " ");
}

namespace {

absl::Time FromTimestamp(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

std::string RoleName(v1::NodeRole role) {
  switch (role) {
    case v1::NODE_ROLE_ROUTER:
      return "router";
    case v1::NODE_ROLE_HOST:
      return "host";
    case v1::NODE_ROLE_OBSERVER:
      return "observer";
    default:
      return "unknown";
  }
}

std::string Ago(absl::Duration d) {
  return absl::StrFormat("%.1fs", absl::ToDoubleSeconds(d));
}

}  // namespace

std::string SubscribersTable(const v1::ListSubscribersResponse& resp,
                             absl::Time now) {
  std::vector<std::vector<std::string>> rows = {
      {"NODE", "ROLE", "FILTER", "PEER", "CONNECTED", "SENT", "ACKED",
       "LAG-REV", "LAG-TIME", "LAST-NACK"}};
  for (const auto& s : resp.subscribers()) {
    std::string lag_time =
        s.lag_seconds() < 0 ? "?" : absl::StrFormat("%.3fs", s.lag_seconds());
    std::string nack =
        s.last_nack_revision() == 0
            ? "-"
            : absl::StrCat(s.last_nack_revision(), ": ", s.last_nack_error());
    rows.push_back({s.node(), RoleName(s.role()), FilterText(s.filter()),
                    s.peer(),
                    Ago(now - FromTimestamp(s.connected_since())) + " ago",
                    absl::StrCat(s.last_sent_revision(),
                                 s.in_snapshot() ? " (snapshot)" : ""),
                    absl::StrCat(s.last_acked_revision()),
                    absl::StrCat(s.lag_revisions()), lag_time, nack});
  }
  return absl::StrCat(FormatColumns(rows), resp.subscribers_size(),
                      " subscribers; server revision ", resp.revision(), "\n");
}

std::string SubscriberJson(const v1::SubscriberInfo& s, int64_t revision) {
  auto time = [](const google::protobuf::Timestamp& t) {
    if (t.seconds() == 0 && t.nanos() == 0) return std::string("null");
    return JsonQuote(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", FromTimestamp(t),
                                      absl::UTCTimeZone()));
  };
  return absl::StrCat(
      "{\"id\":", s.id(), ",\"node\":", JsonQuote(s.node()),
      ",\"role\":", JsonQuote(RoleName(s.role())),
      ",\"filter\":", JsonQuote(FilterText(s.filter())),
      ",\"peer\":", JsonQuote(s.peer()),
      ",\"connected_since\":", time(s.connected_since()),
      ",\"in_snapshot\":", s.in_snapshot() ? "true" : "false",
      ",\"last_sent_revision\":", s.last_sent_revision(),
      ",\"last_acked_revision\":", s.last_acked_revision(),
      ",\"last_ack_time\":", time(s.last_ack_time()),
      ",\"server_revision\":", revision,
      ",\"lag_revisions\":", s.lag_revisions(), ",\"lag_seconds\":",
      s.lag_seconds() < 0 ? std::string("null") : absl::StrCat(s.lag_seconds()),
      ",\"last_nack_revision\":", s.last_nack_revision(),
      ",\"last_nack_error\":", JsonQuote(s.last_nack_error()),
      ",\"snapshots_sent\":", s.snapshots_sent(),
      ",\"messages_sent\":", s.messages_sent(), "}");
}

std::string StatusJson(const v1::StatusResponse& s) {
  return absl::StrCat("{\"revision\":", s.revision(),
                      ",\"mapping_count\":", s.mapping_count(),
                      ",\"compacted_revision\":", s.compacted_revision(),
                      ",\"version\":", JsonQuote(s.version()),
                      ",\"sync_mode\":", JsonQuote(s.sync_mode()), "}");
}

std::string StatusText(const v1::StatusResponse& s) {
  return FormatColumns(
      {{"revision:", absl::StrCat(s.revision())},
       {"mappings:", absl::StrCat(s.mapping_count())},
       {"compacted revision:", absl::StrCat(s.compacted_revision())},
       {"sync mode:", s.sync_mode()},
       {"server version:", s.version()}});
}

std::string ProbeProtocolName(v1::ProbeProtocol p) {
  switch (p) {
    case v1::PROBE_PROTOCOL_ICMP:
      return "icmp";
    case v1::PROBE_PROTOCOL_TCP:
      return "tcp";
    default:
      return "udp";
  }
}

std::string IlaColumn(const v1::IlaRewrite& ila) {
  if (!ila.translated()) return "";
  std::string out = absl::StrCat("translated -> locator ", ila.locator());
  if (!ila.host().empty()) absl::StrAppend(&out, " (host ", ila.host(), ")");
  if (!ila.task().empty()) {
    absl::StrAppend(&out, " task ", ila.task());
  } else {
    absl::StrAppend(&out, " identifier ", ila.identifier(), " (no task)");
  }
  if (ila.stale()) {
    absl::StrAppend(&out, " STALE: the database has locator ",
                    ila.expected_locator());
  }
  return out;
}

std::string TraceHopLine(const v1::TraceHop& hop, int queries) {
  std::string out = absl::StrFormat("%2d  ", hop.ttl());
  if (hop.address().empty()) {
    absl::StrAppend(&out, "*");
    for (int i = 1; i < queries; ++i) absl::StrAppend(&out, " *");
    return out;
  }
  absl::StrAppend(&out, hop.address());
  for (double rtt : hop.rtts_ms()) {
    absl::StrAppend(&out, absl::StrFormat("  %.3f ms", rtt));
  }
  for (int i = 0; i < hop.lost(); ++i) absl::StrAppend(&out, "  *");
  if (std::string ila = IlaColumn(hop.ila()); !ila.empty()) {
    absl::StrAppend(&out, "  ", ila);
  }
  return out;
}

std::string TraceJson(const v1::TraceSummary& s) {
  std::string out = absl::StrCat(
      "{\"target\":", JsonQuote(s.target()),
      ",\"destination\":", JsonQuote(s.destination()),
      ",\"protocol\":", JsonQuote(ProbeProtocolName(s.protocol())),
      ",\"reached\":", s.reached() ? "true" : "false", ",\"hops\":[");
  for (int i = 0; i < s.hops_size(); ++i) {
    const v1::TraceHop& h = s.hops(i);
    std::vector<std::string> rtts;
    for (double r : h.rtts_ms()) rtts.push_back(absl::StrFormat("%.3f", r));
    absl::StrAppend(
        &out, i ? "," : "", "{\"ttl\":", h.ttl(),
        ",\"address\":", h.address().empty() ? "null" : JsonQuote(h.address()),
        ",\"rtts_ms\":[", absl::StrJoin(rtts, ","), "],\"lost\":", h.lost(),
        ",\"quoted_destination\":",
        h.quoted_destination().empty() ? "null"
                                       : JsonQuote(h.quoted_destination()),
        ",\"translated\":", h.ila().translated() ? "true" : "false");
    if (h.ila().translated()) {
      const v1::IlaRewrite& a = h.ila();
      auto opt = [](const std::string& v) {
        return v.empty() ? std::string("null") : JsonQuote(v);
      };
      absl::StrAppend(&out, ",\"locator\":", JsonQuote(a.locator()),
                      ",\"identifier\":", JsonQuote(a.identifier()),
                      ",\"host\":", opt(a.host()), ",\"task\":", opt(a.task()),
                      ",\"stale\":", a.stale() ? "true" : "false");
    }
    absl::StrAppend(&out, "}");
  }
  absl::StrAppend(&out, "]");
  if (!s.limitations().empty()) {
    absl::StrAppend(&out, ",\"limitations\":", JsonQuote(s.limitations()));
  }
  absl::StrAppend(&out, "}");
  return out;
}

}  // namespace ila::client
