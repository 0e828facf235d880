// echo-backend's loop worker against the real bridge in pull mode: it keeps
// its slots open, claims a call and echoes the caller's audio back.

#include "bench/echo_backend/loop_slots.h"

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

TEST(LoopSlotsTest, KeepsItsSlotsOpenAndEchoesACallsAudio) {
  BridgeProcess bridge({"--mode=pull"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  ASSERT_TRUE(
      StartLoopSlots(absl::StrCat("127.0.0.1:", bridge.grpc_port()), 3, absl::Microseconds(500))
          .ok());
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (bridge.Metric("audiosocket_bridge_idle_pull_slots") < 3 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(bridge.Metric("audiosocket_bridge_idle_pull_slots"), 3);

  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Dial(bridge.audiosocket_port(), "7b5a1a0e-0c47-4c1e-9f3e-2a6f3f1a6d01"));
  const std::vector<int16_t> sent = SendRamp(asterisk, 1000, 1);
  const std::vector<int16_t> echoed = ReadEcho(asterisk, sent.size());
  EXPECT_EQ(echoed, sent);
  EXPECT_EQ(g_stats.calls.load(), 1u);
  EXPECT_GE(g_stats.chunks.load(), 10u);
  EXPECT_EQ(g_stats.gap_samples.load(), 0u);
  EXPECT_EQ(g_stats.streams_failed.load(), 0u);

  // When the call ends, its stream ends and the slot is opened again.
  asterisk.SendHangup();
  const absl::Time reopened_by = absl::Now() + absl::Seconds(10);
  while (
      (g_stats.calls_ended.load() < 1 || bridge.Metric("audiosocket_bridge_idle_pull_slots") < 3) &&
      absl::Now() < reopened_by) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(g_stats.calls_ended.load(), 1u);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_idle_pull_slots"), 3);
  EXPECT_EQ(g_stats.streams_failed.load(), 0u);
}

}  // namespace
}  // namespace audiosocket::echo_backend
