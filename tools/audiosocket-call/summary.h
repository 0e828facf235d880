#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_SUMMARY_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_SUMMARY_H_

// The results of a run and the JSON summary printed at its end. The field
// names are a stable interface (tests and benchmarks parse them); README.md
// documents each.
//
// Thread-safety: plain values, filled on the event-loop thread.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "tools/audiosocket-call/nanos.h"
#include "tools/audiosocket-call/stats.h"

namespace audiosocket::call {

// One call's outcome.
struct CallResult {
  int index = 0;
  std::string uuid;
  // hangup_sent, closed, remote_hangup, remote_closed, timeout, error
  // ("" while running).
  std::string ended;
  bool ok = false;
  std::vector<std::string> errors;
  uint64_t frames_sent = 0;
  uint64_t frames_received = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_received = 0;
};

// Run-wide figures every call reports into.
struct RunStats {
  Histogram send_jitter;  // actual send time - deadline
  Histogram recv_jitter;  // |inter-arrival interval - 20 ms|, as this process read them
  // The same by the kernel's receive times: the far end's pacing without
  // this process's own scheduling delays.
  Histogram arrival_jitter;
  Histogram rtt;  // echoed frames matched by content
  uint64_t rtt_ambiguous = 0;
  // Received audio: per call (>= 2 frames), the time from the first to the
  // last frame vs. 20 ms per interval; summed over calls for the mean.
  Nanos drift_span = 0;
  Nanos drift_expected = 0;
  double drift_worst_ppm = 0;  // the call furthest from 0, signed
  uint64_t drift_calls = 0;
  // JSON objects, one per message received (capped at kMaxListed each).
  std::vector<std::string> dtmf_received;
  std::vector<std::string> controls_received;
  std::vector<std::string> errors_received;
  std::vector<std::string> other_received;  // uuid or unknown kinds from the far end
  static constexpr size_t kMaxListed = 10000;
};

// Renders the summary: one JSON object on one line.
std::string SummaryJson(const RunStats& stats, const std::vector<CallResult>& results,
                        Nanos wall_time, const std::vector<std::string>& run_errors);

// Appends `text` as a JSON string literal, quotes included.
void AppendJsonString(absl::string_view text, std::string* out);

// "12.345": milliseconds with three decimals.
std::string FormatMillis(Nanos n);

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_SUMMARY_H_
