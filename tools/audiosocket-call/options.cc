#include "tools/audiosocket-call/options.h"

#include <algorithm>
#include <array>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"

namespace audiosocket::call {
namespace {

constexpr std::array<std::pair<Fault, absl::string_view>, 9> kFaults = {{
    {Fault::kNone, "none"},
    {Fault::kTruncatedHeader, "truncated_header"},
    {Fault::kShortPayload, "short_payload"},
    {Fault::kOversizedLength, "oversized_length"},
    {Fault::kGarbage, "garbage"},
    {Fault::kNoUuid, "no_uuid"},
    {Fault::kBadUuidLength, "bad_uuid_length"},
    {Fault::kOddAudio, "odd_audio"},
    {Fault::kFlood, "flood"},
}};

bool IsDigit(char c) {
  return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D');
}

// Splits "X@TIME" and parses TIME (e.g. 500ms, 2s, 1.5s).
absl::Status SplitAt(absl::string_view item, absl::string_view flag, absl::string_view* value,
                     Nanos* at) {
  const size_t pos = item.rfind('@');
  absl::Duration d;
  if (pos == absl::string_view::npos || !absl::ParseDuration(item.substr(pos + 1), &d) ||
      d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": \"", item, "\" must be VALUE@TIME with a time like 500ms or 2s"));
  }
  *value = item.substr(0, pos);
  *at = ToNanos(d);
  return absl::OkStatus();
}

}  // namespace

absl::string_view EndModeName(EndMode mode) {
  switch (mode) {
    case EndMode::kHangup:
      return "hangup";
    case EndMode::kClose:
      return "close";
    case EndMode::kWait:
      return "wait";
  }
  return "hangup";
}

bool ParseEndMode(absl::string_view text, EndMode* mode) {
  for (EndMode m : {EndMode::kHangup, EndMode::kClose, EndMode::kWait}) {
    if (text == EndModeName(m)) {
      *mode = m;
      return true;
    }
  }
  return false;
}

absl::string_view FaultName(Fault fault) {
  for (const auto& [f, name] : kFaults) {
    if (f == fault) return name;
  }
  return "none";
}

bool ParseFault(absl::string_view text, Fault* fault) {
  for (const auto& [f, name] : kFaults) {
    if (text == name) {
      *fault = f;
      return true;
    }
  }
  return false;
}

std::string FaultNames() {
  std::vector<absl::string_view> names;
  for (const auto& entry : kFaults) names.push_back(entry.second);
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<std::vector<TimedDigit>> ParseDtmfSchedule(absl::string_view text) {
  std::vector<TimedDigit> out;
  if (text.empty()) return out;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    absl::string_view value;
    Nanos at;
    if (absl::Status s = SplitAt(item, "dtmf", &value, &at); !s.ok()) return s;
    if (value.size() != 1 || !IsDigit(value[0])) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--dtmf: \"", value, "\" is not a DTMF digit (one of 0-9 * # A-D, upper case)"));
    }
    out.push_back({value[0], at});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const TimedDigit& a, const TimedDigit& b) { return a.at < b.at; });
  return out;
}

absl::StatusOr<std::vector<TimedByte>> ParseByteSchedule(absl::string_view text,
                                                         absl::string_view flag) {
  std::vector<TimedByte> out;
  if (text.empty()) return out;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    absl::string_view value;
    Nanos at;
    if (absl::Status s = SplitAt(item, flag, &value, &at); !s.ok()) return s;
    int number = -1;
    if (!absl::SimpleAtoi(value, &number) || number < 0 || number > 255) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": \"", value, "\" is not a number from 0 to 255"));
    }
    out.push_back({static_cast<uint8_t>(number), at});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const TimedByte& a, const TimedByte& b) { return a.at < b.at; });
  return out;
}

absl::Status Validate(const RunConfig& config) {
  const CallConfig& c = config.call;
  constexpr std::array<int, 9> kRates = {8000,  12000, 16000, 24000, 32000,
                                         44100, 48000, 96000, 192000};
  if (std::find(kRates.begin(), kRates.end(), c.rate_hz) == kRates.end()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--rate=", c.rate_hz,
        " is not an AudioSocket rate; use 8000, 12000, 16000, 24000, 32000, 44100, 48000, "
        "96000 or 192000"));
  }
  if (c.encoding != dsp::AudioEncoding::kSlin16) {
    if (c.rate_hz != 8000) {
      return absl::InvalidArgumentError(
          absl::StrCat("--encoding=", dsp::AudioEncodingName(c.encoding),
                       " needs --rate=8000: G.711 is 8 kHz, labelled 0x10"));
    }
    if (c.stamp_frames) {
      return absl::InvalidArgumentError(
          "--stamp_frames needs --encoding=slin: G.711 does not keep the stamp's low bits");
    }
    if (c.fault == Fault::kOddAudio) {
      return absl::InvalidArgumentError(
          "--fault=odd_audio needs --encoding=slin: an odd length is legal G.711");
    }
  }
  if (!c.controls.empty() && !c.extended_dialect) {
    return absl::InvalidArgumentError(
        "--control needs --dialect=extended: in the asterisk dialect 0x03 is a DTMF digit");
  }
  if (config.calls < 1) return absl::InvalidArgumentError("--calls must be at least 1");
  if (config.ramp < 0) return absl::InvalidArgumentError("--ramp must be 0 or more calls/second");
  if (config.calls > 1 && !c.record_path.empty()) {
    return absl::InvalidArgumentError(
        "--record works with one call only; drop --calls or --record");
  }
  if (c.duration <= 0 && c.end != EndMode::kWait) {
    return absl::InvalidArgumentError("--duration must be positive");
  }
  if (c.dtmf_duration <= 0 || c.dtmf_duration > 10 * kSecond) {
    return absl::InvalidArgumentError("--dtmf_duration must be between 1ms and 10s");
  }
  return absl::OkStatus();
}

}  // namespace audiosocket::call
