#ifndef AUDIOSOCKET_BRIDGE_SERVER_MEDIA_BACKEND_FEED_H_
#define AUDIOSOCKET_BRIDGE_SERVER_MEDIA_BACKEND_FEED_H_

// The inbound media pipeline's last stage: events for the backend, held
// until a backend takes the call (bounded: the oldest audio goes first),
// then, as they are delivered, filtered (in-band DTMF the backend did not
// ask for, a digit both signalled and heard) and converted from the call's
// rate to the backend's.
//
// Threads: owned by one call on its loop.

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/dsp/resampler.h"
#include "server/backend/backend_link.h"
#include "server/media/dtmf_dedup.h"

namespace audiosocket {

class BackendFeed {
 public:
  // Holds at most `hold_audio_ms` of audio before a backend takes the call.
  explicit BackendFeed(uint32_t hold_audio_ms) : hold_audio_ms_(hold_audio_ms) {}

  // The rates audio arrives at and is delivered at (backend 0: not chosen
  // yet). Errors name a conversion lib/dsp cannot do.
  absl::Status SetRates(int call_rate_hz, int backend_rate_hz);
  void set_detect_inband(bool detect) { detect_inband_ = detect; }
  bool detect_inband() const { return detect_inband_; }

  // Delivers to `link` from now on, first what was held (which the link
  // takes whole, beyond its queue's bound).
  void Connect(BackendLink* link);
  // Holds again (the call ended: nothing more is delivered).
  void Disconnect() { link_ = nullptr; }
  // An event from the caller's side (audio and DTMF offsets at the call's
  // rate).
  void Emit(bridge::v1::CallEvent&& event);

  // Converts a call-rate offset to the backend's rate.
  uint64_t ToBackendOffset(uint64_t call_offset) const;
  // Audio dropped while held, at the call's rate.
  uint64_t held_dropped_samples() const { return held_dropped_samples_; }
  uint64_t held_dropped_events() const { return held_dropped_events_; }

 private:
  void Deliver(bridge::v1::CallEvent&& event);

  const uint32_t hold_audio_ms_;
  int call_rate_hz_ = 8000;
  int backend_rate_hz_ = 0;
  bool detect_inband_ = false;
  BackendLink* link_ = nullptr;

  std::deque<bridge::v1::CallEvent> held_;
  uint64_t held_audio_samples_ = 0;  // at the call's rate
  uint64_t held_dropped_samples_ = 0;
  uint64_t held_dropped_events_ = 0;

  DtmfDeduplicator dedup_;
  std::optional<dsp::Resampler> resampler_;  // call rate -> backend rate
  uint64_t backend_offset_ = 0;              // backend-rate samples delivered
  uint64_t expected_call_offset_ = 0;        // call-rate offset of the next chunk
  std::vector<int16_t> input_;               // scratch: a chunk's samples
  std::vector<int16_t> converted_;           // scratch: resampler output
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_MEDIA_BACKEND_FEED_H_
