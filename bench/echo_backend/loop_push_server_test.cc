// echo-backend's loop push server against the real bridge in push mode: it
// accepts the call and echoes the caller's audio back, and the stream ends
// cleanly when the call does.

#include "bench/echo_backend/loop_push_server.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/echo_backend/echo_stats.h"
#include "gtest/gtest.h"
#include "tests/support/bridge_process.h"
#include "tests/support/fake_asterisk.h"

namespace audiosocket::echo_backend {
namespace {

using testing::BridgeProcess;
using testing::FakeAsterisk;

TEST(LoopPushServerTest, AcceptsACallAndEchoesItsAudio) {
  absl::StatusOr<int> port = StartLoopPushServer(0, absl::Microseconds(500));
  ASSERT_TRUE(port.ok()) << port.status();
  BridgeProcess bridge({"--mode=push", absl::StrCat("--backend=127.0.0.1:", *port)});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();

  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Dial(bridge.audiosocket_port(), "0c8d7e2a-3f4b-4a6c-9d1e-5b2f7a9c4e10"));
  // 10 frames of a ramp no silence or tone the bridge makes could match.
  std::vector<int16_t> sent;
  for (int frame = 0; frame < 10; ++frame) {
    std::vector<int16_t> samples(160);
    for (int i = 0; i < 160; ++i) samples[i] = static_cast<int16_t>(-1000 - frame * 160 - i);
    asterisk.SendAudio(samples);
    sent.insert(sent.end(), samples.begin(), samples.end());
  }
  std::vector<int16_t> echoed;
  const absl::Time read_until = absl::Now() + absl::Seconds(10);
  while (echoed.size() < sent.size() && absl::Now() < read_until) {
    const std::optional<testing::Received> message = asterisk.Read(absl::Seconds(1));
    if (!message.has_value() || !message->is_audio()) continue;
    for (int16_t sample : message->samples()) {
      // Silence before the echo's first frame is played.
      if (echoed.empty() && sample == 0) continue;
      echoed.push_back(sample);
    }
  }
  echoed.resize(std::min(echoed.size(), sent.size()));
  EXPECT_EQ(echoed, sent);
  EXPECT_EQ(g_stats.calls.load(), 1u);
  EXPECT_GE(g_stats.chunks.load(), 10u);
  EXPECT_EQ(g_stats.gap_samples.load(), 0u);

  // The call ends; the bridge half-closes and the stream ends OK.
  asterisk.SendHangup();
  const absl::Time ended_by = absl::Now() + absl::Seconds(10);
  while (g_stats.calls_ended.load() < 1 && absl::Now() < ended_by) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(g_stats.calls_ended.load(), 1u);
  const absl::Time closed_by = absl::Now() + absl::Seconds(10);
  while (bridge.Metric("audiosocket_bridge_active_calls") != 0 && absl::Now() < closed_by) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_active_calls"), 0);
  EXPECT_EQ(g_stats.streams_failed.load(), 0u);
}

}  // namespace
}  // namespace audiosocket::echo_backend
