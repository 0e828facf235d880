#ifndef AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_ECHO_TEST_CALL_H_
#define AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_ECHO_TEST_CALL_H_

// For the loop transport's tests: a caller's audio sent through the real
// bridge to echo-backend's loop code, and what came back.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/support/fake_asterisk.h"

namespace audiosocket::echo_backend {

// Sends 10 frames of a ramp from `first`, one `step` a sample (no silence
// or tone the bridge makes could match it), and returns what was sent.
inline std::vector<int16_t> SendRamp(testing::FakeAsterisk& asterisk, int first, int step) {
  std::vector<int16_t> sent;
  for (int frame = 0; frame < 10; ++frame) {
    std::vector<int16_t> samples(160);
    for (int i = 0; i < 160; ++i)
      samples[i] = static_cast<int16_t>(first + step * (frame * 160 + i));
    asterisk.SendAudio(samples);
    sent.insert(sent.end(), samples.begin(), samples.end());
  }
  return sent;
}

// The first `count` samples played back after the silence before the echo,
// or fewer if they do not come within 10 s.
inline std::vector<int16_t> ReadEcho(testing::FakeAsterisk& asterisk, size_t count) {
  std::vector<int16_t> echoed;
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (echoed.size() < count && absl::Now() < until) {
    const std::optional<testing::Received> message = asterisk.Read(absl::Seconds(1));
    if (!message.has_value() || !message->is_audio()) continue;
    for (int16_t sample : message->samples()) {
      if (echoed.empty() && sample == 0) continue;
      echoed.push_back(sample);
    }
  }
  echoed.resize(std::min(echoed.size(), count));
  return echoed;
}

}  // namespace audiosocket::echo_backend

#endif  // AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_ECHO_TEST_CALL_H_
