#ifndef AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_FALLBACK_AUDIO_H_
#define AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_FALLBACK_AUDIO_H_

// The message a caller hears when the backend side of the call fails
// (--fallback_wav), rendered once at start-up at every AudioSocket rate so
// that no call resamples it.
//
// Threads: immutable after Render; shared by every call.

#include <cstdint>
#include <map>
#include <vector>

#include "absl/status/statusor.h"

namespace audiosocket {

class FallbackAudio {
 public:
  // No audio: calls end without a message.
  FallbackAudio() = default;
  // `samples` at `sample_rate_hz`, rendered at every rate a call can play at.
  static absl::StatusOr<FallbackAudio> Render(const std::vector<int16_t>& samples,
                                              int sample_rate_hz);

  bool empty() const { return by_rate_.empty(); }
  // The audio at `rate_hz` (empty for a rate no call plays at).
  const std::vector<int16_t>& At(int rate_hz) const;

 private:
  std::map<int, std::vector<int16_t>> by_rate_;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_FALLBACK_AUDIO_H_
