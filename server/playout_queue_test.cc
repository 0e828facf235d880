#include "server/playout_queue.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/frame_pacer.h"

namespace audiosocket {
namespace {

using Type = PlayoutNotice::Type;
using ::testing::Each;

PlayoutConfig Config() {
  PlayoutConfig config;
  config.sample_rate_hz = 8000;
  config.max_buffer_ms = 1000;
  config.high_watermark_ms = 500;
  config.low_watermark_ms = 100;
  return config;
}

std::vector<Type> Types(const std::vector<PlayoutNotice>& notices) {
  std::vector<Type> out;
  for (const auto& n : notices) out.push_back(n.type);
  return out;
}

TEST(PlayoutQueueTest, EmptyQueueGivesSilenceFrames) {
  PlayoutQueue queue(Config());
  std::vector<int16_t> frame(160, 7);
  EXPECT_FALSE(queue.Tick(absl::MakeSpan(frame)));
  EXPECT_THAT(frame, Each(0));
}

TEST(PlayoutQueueTest, ReframesAnyChunkSizeExactlyAndPadsTheTail) {
  PlayoutQueue queue(Config());
  std::vector<int16_t> audio(250);
  for (size_t i = 0; i < audio.size(); ++i) audio[i] = static_cast<int16_t>(i + 1);
  ASSERT_TRUE(queue.EnqueueAudio(absl::MakeSpan(audio).subspan(0, 100), "r").ok());
  ASSERT_TRUE(queue.EnqueueAudio(absl::MakeSpan(audio).subspan(100), "r").ok());
  std::vector<int16_t> out;
  std::vector<int16_t> frame(160);
  for (int i = 0; i < 2; ++i) {
    EXPECT_TRUE(queue.Tick(absl::MakeSpan(frame)));
    out.insert(out.end(), frame.begin(), frame.end());
  }
  EXPECT_EQ(std::vector<int16_t>(out.begin(), out.begin() + 250), audio);
  EXPECT_THAT(std::vector<int16_t>(out.begin() + 250, out.end()), Each(0));
}

TEST(PlayoutQueueTest, MarkResolvesInTheTickThatPlaysTheAudioBeforeIt) {
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(200, 1), "r").ok());
  queue.EnqueueMark("m");
  std::vector<int16_t> frame(160);
  queue.Tick(absl::MakeSpan(frame));
  for (const auto& n : queue.TakeNotices()) EXPECT_NE(n.type, Type::kMarkPlayed);
  queue.Tick(absl::MakeSpan(frame));
  auto notices = queue.TakeNotices();
  ASSERT_FALSE(notices.empty());
  EXPECT_EQ(notices[0].type, Type::kMarkPlayed);
  EXPECT_EQ(notices[0].name, "m");
}

TEST(PlayoutQueueTest, ClearAccountsPlayedAndDiscardedPerResponse) {
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(800, 1), "a").ok());  // 100 ms
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(400, 2), "b").ok());  // 50 ms
  queue.EnqueueMark("m");
  std::vector<int16_t> frame(160);
  queue.Tick(absl::MakeSpan(frame));
  queue.Tick(absl::MakeSpan(frame));  // 320 samples of "a" played
  ClearReport report = queue.Clear("");
  ASSERT_EQ(report.responses.size(), 2u);
  EXPECT_EQ(report.responses[0].response_id, "a");
  EXPECT_EQ(report.responses[0].played_samples, 320u);
  EXPECT_EQ(report.responses[0].discarded_samples, 480u);
  EXPECT_EQ(report.responses[1].response_id, "b");
  EXPECT_EQ(report.responses[1].played_samples, 0u);
  EXPECT_EQ(report.responses[1].discarded_samples, 400u);
  EXPECT_EQ(report.discarded_samples, 880u);
  auto notices = queue.TakeNotices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].type, Type::kMarkCleared);
  EXPECT_EQ(queue.buffered_samples(), 0u);
}

TEST(PlayoutQueueTest, ClearOfOneResponseKeepsMarksAndOtherAudio) {
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 1), "keep").ok());
  queue.EnqueueMark("m");
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 2), "drop").ok());
  ClearReport report = queue.Clear("drop");
  ASSERT_EQ(report.responses.size(), 1u);
  EXPECT_EQ(report.responses[0].discarded_samples, 160u);
  std::vector<int16_t> frame(160);
  queue.Tick(absl::MakeSpan(frame));
  EXPECT_THAT(frame, Each(1));
  EXPECT_THAT(Types(queue.TakeNotices()), ::testing::Contains(Type::kMarkPlayed));
}

TEST(PlayoutQueueTest, BufferLimitRefusesWithResourceExhausted) {
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(8000, 1), "r").ok());
  absl::Status status = queue.EnqueueAudio(std::vector<int16_t>(1, 1), "r");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
}

TEST(PlayoutQueueTest, WatermarksFireOnceEachWay) {
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(4000, 1), "r").ok());  // 500 ms
  EXPECT_EQ(Types(queue.TakeNotices()), std::vector<Type>{Type::kHighWatermark});
  std::vector<int16_t> frame(160);
  std::vector<Type> seen;
  for (int i = 0; i < 25; ++i) {
    queue.Tick(absl::MakeSpan(frame));
    for (Type t : Types(queue.TakeNotices())) seen.push_back(t);
  }
  EXPECT_EQ(std::count(seen.begin(), seen.end(), Type::kLowWatermark), 1);
  EXPECT_EQ(std::count(seen.begin(), seen.end(), Type::kHighWatermark), 0);
}

TEST(PlayoutQueueTest, AudioForADrainedResponseIsAnUnderrun) {
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 1), "r").ok());
  std::vector<int16_t> frame(160);
  queue.Tick(absl::MakeSpan(frame));
  EXPECT_EQ(Types(queue.TakeNotices()), std::vector<Type>{Type::kDrained});
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 1), "r").ok());
  EXPECT_EQ(Types(queue.TakeNotices()), std::vector<Type>{Type::kUnderrun});
  EXPECT_EQ(queue.underruns(), 1u);
  // A new response after a drain is not an underrun.
  queue.Tick(absl::MakeSpan(frame));
  queue.TakeNotices();
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 1), "next").ok());
  EXPECT_TRUE(queue.TakeNotices().empty());
}

TEST(PlayoutQueueTest, DtmfTakesSampleExactTimeWithStartAndStop) {
  PlayoutQueue queue(Config());
  queue.EnqueueDtmf("12", 100, 60, "d", /*inband=*/false);
  std::vector<int16_t> frame(160);
  std::vector<std::pair<Type, int>> seen;  // notice, tick
  for (int tick = 0; tick < 10; ++tick) {
    queue.Tick(absl::MakeSpan(frame));
    for (const auto& n : queue.TakeNotices()) seen.emplace_back(n.type, tick);
  }
  // 100 ms tone = 5 frames, 60 ms gap = 3 frames: 160 ms = 8 frames per digit.
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0], std::make_pair(Type::kDtmfStart, 0));
  EXPECT_EQ(seen[1], std::make_pair(Type::kDtmfStop, 4));
  EXPECT_EQ(seen[2], std::make_pair(Type::kDtmfStart, 8));
}

TEST(PlayoutQueueTest, HangupWaitsForQueuedAudio) {
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(320, 1), "r").ok());
  queue.EnqueueHangup();
  std::vector<int16_t> frame(160);
  queue.Tick(absl::MakeSpan(frame));
  EXPECT_TRUE(queue.TakeNotices().empty());
  queue.Tick(absl::MakeSpan(frame));
  EXPECT_THAT(Types(queue.TakeNotices()), ::testing::Contains(Type::kHangup));
}

TEST(PlayoutQueueTest, AbandonResolvesEveryMarkAndDtmf) {
  PlayoutQueue queue(Config());
  queue.EnqueueMark("a");
  queue.EnqueueDtmf("1", 100, 50, "d", false);
  queue.EnqueueMark("b");
  auto notices = queue.Abandon();
  EXPECT_EQ(Types(notices),
            (std::vector<Type>{Type::kMarkCleared, Type::kDtmfCancelled, Type::kMarkCleared}));
}

// ----------------------------------------------------------- FramePacer

TEST(FramePacerTest, DeadlinesAreAbsoluteSoLateTicksDoNotDrift) {
  FakeClock clock;
  FramePacer pacer(clock.Now(), std::chrono::milliseconds(20));
  const MonoTime start = clock.Now();
  // Every tick 3 ms late: the schedule stays on the 20 ms grid.
  for (int i = 0; i < 1000; ++i) {
    clock.Set(pacer.next_deadline() + std::chrono::milliseconds(3));
    pacer.OnTick(clock.Now());
  }
  EXPECT_EQ(pacer.frames(), 1000u);
  EXPECT_EQ(pacer.next_deadline(), start + std::chrono::milliseconds(20) * 1000);
  EXPECT_EQ(pacer.skipped(), 0u);
}

TEST(FramePacerTest, ALateTickSendsOneFrameNotABurst) {
  FakeClock clock;
  FramePacer pacer(clock.Now(), std::chrono::milliseconds(20));
  const MonoTime start = clock.Now();
  pacer.OnTick(start);
  // The loop stalls for 75 ms: deadlines at 20, 40, 60 ms have passed.
  clock.Set(start + std::chrono::milliseconds(95));
  pacer.OnTick(clock.Now());
  EXPECT_EQ(pacer.frames(), 2u);
  EXPECT_EQ(pacer.skipped(), 3u);
  EXPECT_EQ(pacer.next_deadline(), start + std::chrono::milliseconds(100));
}

TEST(FramePacerTest, FiftyFramesPerSecondOverAnHour) {
  FakeClock clock;
  FramePacer pacer(clock.Now(), std::chrono::milliseconds(20));
  const MonoTime end = clock.Now() + std::chrono::hours(1);
  while (pacer.next_deadline() < end) {
    clock.Set(pacer.next_deadline());
    pacer.OnTick(clock.Now());
  }
  EXPECT_EQ(pacer.frames(), 180000u);
}

}  // namespace
}  // namespace audiosocket
