#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_OPTIONS_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_OPTIONS_H_

// What a run of audiosocket-call does, independent of how the flags spell
// it: the per-call configuration, the many-calls settings, and parsers for
// the schedule syntaxes ("1@500ms,#@2s").
//
// Thread-safety: plain values.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lib/dsp/g711.h"
#include "lib/net/net.h"
#include "tools/audiosocket-call/arrivals.h"
#include "tools/audiosocket-call/nanos.h"
#include "tools/audiosocket-call/source.h"

namespace audiosocket::call {

// How a call ends once --duration has passed.
enum class EndMode : uint8_t {
  kHangup,  // send 0x00, half-close, read until the far end closes (or linger)
  kClose,   // close the socket without a hangup message
  kWait,    // keep sending until the far end hangs up; --duration is the limit
};
absl::string_view EndModeName(EndMode mode);
bool ParseEndMode(absl::string_view text, EndMode* mode);

// Misbehaviour on purpose. Bytes on the wire are documented in README.md.
enum class Fault : uint8_t {
  kNone,
  kTruncatedHeader,  // uuid, then 2 of the 3 header bytes, then close
  kShortPayload,     // uuid, an audio header announcing 320 bytes, 160 bytes, close
  kOversizedLength,  // uuid, an audio header of length 65535 and its payload, then the call
  kGarbage,          // uuid, 64 undefined bytes, then the call
  kNoUuid,           // connect and stay silent until --duration, then close
  kBadUuidLength,    // a 0x01 message of 15 bytes, then the call
  kOddAudio,         // uuid, then every audio frame one byte short (odd length)
  kFlood,            // uuid, then audio as fast as the socket takes it
};
absl::string_view FaultName(Fault fault);
bool ParseFault(absl::string_view text, Fault* fault);
// "truncated_header, short_payload, ..." for messages.
std::string FaultNames();

struct TimedDigit {
  char digit = '0';
  Nanos at = 0;  // since the call connected
};
struct TimedByte {
  uint8_t value = 0;
  Nanos at = 0;
};

// "1@500ms,#@2s": DTMF digits (0-9 * # A-D) at times since connect.
absl::StatusOr<std::vector<TimedDigit>> ParseDtmfSchedule(absl::string_view text);
// "4@1s,16@3s": byte values 0-255 (control codes, error flags). `flag`
// names the flag in messages.
absl::StatusOr<std::vector<TimedByte>> ParseByteSchedule(absl::string_view text,
                                                         absl::string_view flag);

struct CallConfig {
  net::SocketAddress target;
  std::string uuid;  // canonical text; empty = a random v4 UUID per call
  bool extended_dialect = false;
  int rate_hz = 8000;
  // How the audio this caller sends is encoded. G.711 goes out as Asterisk
  // sends it with c(ulaw) / c(alaw): one byte a sample, labelled 0x10.
  // Received audio is always read as signed linear at the kind's rate, as
  // Asterisk reads it, whatever this says.
  dsp::AudioEncoding encoding = dsp::AudioEncoding::kSlin16;
  SourceSpec source;
  // Embed the frame number in the least significant bit of the first 32
  // samples of each frame, so every frame is unique and echoes match (RTT).
  bool mark_frames = true;
  // Write the send time (CLOCK_MONOTONIC, ns) in the least significant bit
  // of samples 32..95 of each frame, so a far end on the same host can
  // measure one-way latency (bench/echo_backend does).
  bool stamp_frames = false;
  Nanos duration = 10 * kSecond;
  EndMode end = EndMode::kHangup;
  std::vector<TimedDigit> dtmf;
  Nanos dtmf_duration = 100 * kMillisecond;
  std::vector<TimedByte> controls;  // extended dialect only
  std::vector<TimedByte> errors;
  Fault fault = Fault::kNone;
  std::string record_path;  // empty = no recording
  bool log_messages = true;
  Nanos connect_timeout = 2 * kSecond;  // as Asterisk
  // After a hangup or a fault's close: how long to keep reading for the far
  // end to close.
  Nanos linger = 1 * kSecond;
  // Call starts are rounded up to this grid so that many calls' frames are
  // sent in the same wake-up (fewer timer syscalls); 0 = no rounding.
  Nanos tick = 0;
};

struct RunConfig {
  CallConfig call;
  int calls = 1;
  double ramp = 0;                      // calls started per second; 0 = all at once
  Arrivals arrivals = Arrivals::kEven;  // how starts are spread at that rate
};

// Checks combinations the flags alone cannot (e.g. --control needs the
// extended dialect). Messages name the flags to change.
absl::Status Validate(const RunConfig& config);

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_OPTIONS_H_
