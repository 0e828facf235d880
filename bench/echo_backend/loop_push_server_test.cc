// echo-backend's loop push server against the real bridge in push mode: it
// accepts the call and echoes the caller's audio back, and the stream ends
// cleanly when the call does.

#include "bench/echo_backend/loop_push_server.h"

#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/echo_backend/echo_stats.h"
#include "bench/echo_backend/echo_test_call.h"
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
  const std::vector<int16_t> sent = SendRamp(asterisk, -1000, -1);
  const std::vector<int16_t> echoed = ReadEcho(asterisk, sent.size());
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
