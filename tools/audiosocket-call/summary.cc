#include "tools/audiosocket-call/summary.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace audiosocket::call {
namespace {

void AppendHistogram(absl::string_view name, const Histogram& h, std::string* out) {
  absl::StrAppend(out, "\"", name, "\":{\"p50\":", FormatMillis(h.Percentile(0.5)),
                  ",\"p99\":", FormatMillis(h.Percentile(0.99)), ",\"max\":", FormatMillis(h.max()),
                  ",\"count\":", h.count(), "}");
}

void AppendList(absl::string_view name, const std::vector<std::string>& items, std::string* out) {
  absl::StrAppend(out, "\"", name, "\":[", absl::StrJoin(items, ","), "]");
}

}  // namespace

void AppendJsonString(absl::string_view text, std::string* out) {
  out->push_back('"');
  for (char c : text) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      absl::StrAppend(out, absl::StrFormat("\\u%04x", u));
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

std::string FormatMillis(Nanos n) { return absl::StrFormat("%.3f", ToMillis(n)); }

std::string SummaryJson(const RunStats& stats, const std::vector<CallResult>& results,
                        Nanos wall_time, const std::vector<std::string>& run_errors) {
  // Lists stay readable with thousands of failed calls; counts stay exact.
  constexpr size_t kMaxErrors = 100;
  uint64_t failed = 0;
  uint64_t ok = 0, frames_sent = 0, frames_received = 0, bytes_sent = 0, bytes_received = 0;
  std::map<std::string, int> ended;
  std::vector<std::string> errors = run_errors;
  std::vector<std::string> failures;
  for (const CallResult& r : results) {
    ok += r.ok ? 1 : 0;
    frames_sent += r.frames_sent;
    frames_received += r.frames_received;
    bytes_sent += r.bytes_sent;
    bytes_received += r.bytes_received;
    ++ended[r.ended.empty() ? "running" : r.ended];
    const std::string joined = absl::StrJoin(r.errors, "; ");
    for (const std::string& e : r.errors) {
      if (errors.size() < kMaxErrors) {
        errors.push_back(results.size() > 1 ? absl::StrCat("call ", r.index, ": ", e) : e);
      }
    }
    if (!r.ok) ++failed;
    if (!r.ok && failures.size() < kMaxErrors) {
      std::string f = absl::StrCat("{\"call\":", r.index, ",\"uuid\":");
      AppendJsonString(r.uuid, &f);
      absl::StrAppend(&f, ",\"ended\":");
      AppendJsonString(r.ended, &f);
      absl::StrAppend(&f, ",\"error\":");
      AppendJsonString(joined.empty() ? "did not end as asked" : joined, &f);
      f.push_back('}');
      failures.push_back(std::move(f));
    }
  }
  std::string out = absl::StrCat(
      "{\"calls\":", results.size(), ",\"ok\":", ok, ",\"failed\":", results.size() - ok,
      ",\"wall_time_ms\":", FormatMillis(wall_time), ",\"frames_sent\":", frames_sent,
      ",\"frames_received\":", frames_received, ",\"bytes_sent\":", bytes_sent,
      ",\"bytes_received\":", bytes_received, ",");
  AppendHistogram("send_jitter_ms", stats.send_jitter, &out);
  out.push_back(',');
  AppendHistogram("recv_jitter_ms", stats.recv_jitter, &out);
  out.push_back(',');
  AppendHistogram("arrival_jitter_ms", stats.arrival_jitter, &out);
  out.append(",\"rtt_ms\":");
  if (stats.rtt.count() == 0) {
    out.append("null");
  } else {
    absl::StrAppend(&out, "{\"p50\":", FormatMillis(stats.rtt.Percentile(0.5)),
                    ",\"p99\":", FormatMillis(stats.rtt.Percentile(0.99)),
                    ",\"max\":", FormatMillis(stats.rtt.max()), ",\"count\":", stats.rtt.count(),
                    "}");
  }
  absl::StrAppend(&out, ",\"rtt_ambiguous\":", stats.rtt_ambiguous, ",\"recv_drift_ppm\":");
  if (stats.drift_calls == 0) {
    out.append("null,");
  } else {
    absl::StrAppend(
        &out, "{\"mean\":",
        absl::StrFormat("%.1f", 1e6 * static_cast<double>(stats.drift_span - stats.drift_expected) /
                                    static_cast<double>(stats.drift_expected)),
        ",\"worst_call\":", absl::StrFormat("%.1f", stats.drift_worst_ppm),
        ",\"calls\":", stats.drift_calls, "},");
  }
  AppendList("dtmf_received", stats.dtmf_received, &out);
  out.push_back(',');
  AppendList("controls_received", stats.controls_received, &out);
  out.push_back(',');
  AppendList("errors_received", stats.errors_received, &out);
  out.push_back(',');
  AppendList("other_received", stats.other_received, &out);
  out.append(",\"ended\":");
  if (ended.size() == 1) {
    AppendJsonString(ended.begin()->first, &out);
  } else {
    out.append("\"mixed\"");
  }
  out.append(",\"ended_counts\":{");
  bool first = true;
  for (const auto& [name, count] : ended) {
    if (!first) out.push_back(',');
    first = false;
    AppendJsonString(name, &out);
    absl::StrAppend(&out, ":", count);
  }
  out.append("},\"errors\":[");
  for (size_t i = 0; i < errors.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(errors[i], &out);
  }
  out.append("],");
  AppendList("per_call_failures", failures, &out);
  absl::StrAppend(&out, ",\"failures_not_listed\":", failed - failures.size());
  out.push_back('}');
  return out;
}

}  // namespace audiosocket::call
