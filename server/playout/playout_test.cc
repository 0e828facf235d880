// Playout in simulated time on an EpollDispatcher: one frame per 20 ms
// tick, silence, content as slin at the playout rate, late ticks, notices
// around the frame, the shared tick grid, Restart on the same grid, Stop,
// and the owner.

#include "server/playout/playout.h"

#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/time_source.h"
#include "lib/wire/wire.h"
#include "server/ops/counters.h"
#include "server/playout/playout_queue.h"

namespace audiosocket {
namespace {

using std::chrono::milliseconds;
using Type = PlayoutNotice::Type;
using ::testing::Contains;
using ::testing::Each;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

struct Frame {
  int rate = 0;
  std::vector<int16_t> samples;
};

// Decodes each frame and records the order of frames and notices.
class Recorder : public Playout::Delegate {
 public:
  void OnPlayoutFrame(absl::Span<const uint8_t> message) override {
    absl::StatusOr<wire::Message> decoded = wire::DecodeOne(message, wire::DecoderOptions{});
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    const auto* audio = std::get_if<wire::Audio>(&*decoded);
    ASSERT_NE(audio, nullptr);
    Frame frame;
    frame.rate = audio->sample_rate_hz;
    frame.samples.resize(audio->payload.size() / 2);
    std::memcpy(frame.samples.data(), audio->payload.data(), audio->payload.size());
    frames.push_back(std::move(frame));
    log.push_back("frame");
  }
  void OnPlayoutNotices(const std::vector<PlayoutNotice>& notices, bool before_frame) override {
    for (const PlayoutNotice& notice : notices) {
      // As the call does: DTMF starts before the frame, the rest after.
      if (before_frame != (notice.type == Type::kDtmfStart)) continue;
      log.push_back(Name(notice));
      taken.push_back(notice);
    }
    if (stop_on_notice && playout != nullptr && !notices.empty()) playout->Stop();
  }

  static std::string Name(const PlayoutNotice& notice) {
    switch (notice.type) {
      case Type::kDtmfStart:
        return std::string("dtmf_start:") + notice.digit;
      case Type::kDtmfStop:
        return std::string("dtmf_stop:") + notice.digit;
      case Type::kDtmfDone:
        return "dtmf_done:" + notice.name;
      case Type::kMarkPlayed:
        return "mark:" + notice.name;
      case Type::kMarkCleared:
        return "cleared:" + notice.name;
      case Type::kDrained:
        return "drained:" + notice.name;
      default:
        return "other";
    }
  }

  Playout* playout = nullptr;
  bool stop_on_notice = false;
  std::vector<Frame> frames;
  std::vector<PlayoutNotice> taken;
  std::vector<std::string> log;
};

// Another member of a slot: counts its ticks.
struct CountingMember : SlotTicker::Member {
  void OnSlotTick(event::MonoTime) override { ++ticks; }
  int ticks = 0;
};

class PlayoutTest : public ::testing::Test {
 protected:
  void Create(Playout::Options options = Options()) {
    playout_ = std::make_unique<Playout>(&loop_, options, &counters_, &delegate_, owner_);
    delegate_.playout = playout_.get();
  }

  static Playout::Options Options() {
    Playout::Options options;
    options.high_watermark_ms = 5000;
    options.low_watermark_ms = 1000;
    return options;
  }

  // Moves time by `by` and runs the loop: every timer due by then fires.
  void Advance(event::Nanos by) {
    time_.Advance(by);
    for (int i = 0; i < 3; ++i) loop_.RunOnce(event::Nanos(0));
  }
  // `n` ticks, one period apart.
  void Ticks(int n) {
    for (int i = 0; i < n; ++i) Advance(kFramePeriod);
  }

  event::SimulatedTimeSource time_;
  event::EpollDispatcher loop_{&time_};
  BridgeCounters counters_;
  Recorder delegate_;
  std::shared_ptr<int> owner_ = std::make_shared<int>(0);
  std::unique_ptr<Playout> playout_;
};

TEST_F(PlayoutTest, TheFirstFrameGoesAtRestartThenOnePerTick) {
  Create();
  playout_->Restart(8000);
  EXPECT_THAT(delegate_.frames, SizeIs(1));
  Advance(milliseconds(19));
  EXPECT_THAT(delegate_.frames, SizeIs(1));
  Advance(milliseconds(1));
  EXPECT_THAT(delegate_.frames, SizeIs(2));
  for (int i = 0; i < 48; ++i) {
    Advance(milliseconds(10));
    Advance(milliseconds(10));
    EXPECT_THAT(delegate_.frames, SizeIs(static_cast<size_t>(3 + i)));
  }
  EXPECT_EQ(playout_->frames_sent(), 50u);
  EXPECT_EQ(counters_.playout_late_ticks.load(), 0u);
}

// A call that starts between two points of the tick grid sends its first
// frame at the next point, then one a period later each: calls that land in
// one slot play in one wake-up of the loop.
TEST_F(PlayoutTest, TicksFallOnTheSharedGrid) {
  using std::chrono::microseconds;
  Advance(microseconds(2300));  // the simulated clock starts on the grid
  Create();
  playout_->Restart(8000);
  EXPECT_THAT(delegate_.frames, IsEmpty());
  Advance(microseconds(600));
  EXPECT_THAT(delegate_.frames, IsEmpty());
  Advance(microseconds(100));  // 3 ms: the grid's next point
  EXPECT_THAT(delegate_.frames, SizeIs(1));
  Advance(milliseconds(19));
  EXPECT_THAT(delegate_.frames, SizeIs(1));
  Advance(milliseconds(1));
  EXPECT_THAT(delegate_.frames, SizeIs(2));
  EXPECT_EQ(TickSlots::NextGridPoint(event::MonoTime(milliseconds(1000))),
            event::MonoTime(milliseconds(1000)));
  EXPECT_EQ(TickSlots::NextGridPoint(event::MonoTime(microseconds(1000001))),
            event::MonoTime(milliseconds(1001)));
  EXPECT_EQ(counters_.playout_late_ticks.load(), 0u);
}

// With its loop's ticker, a call's ticks start where TickSlots puts them
// (here the slot another member holds, 0.5 ms on), they come from the
// slot's one timer with the other member's, and the place is given back
// when the call stops.
TEST_F(PlayoutTest, TicksComeFromTheLoopsTickerOnTheSlotItChooses) {
  using std::chrono::microseconds;
  SlotTicker ticker(&loop_);
  CountingMember other;
  Advance(microseconds(3500));
  const event::MonoTime other_first = ticker.Join(&other);
  ASSERT_EQ(other_first, time_.Now() + microseconds(500));
  Playout::Options options = Options();
  options.ticker = &ticker;
  Create(options);
  playout_->Restart(8000);
  EXPECT_THAT(delegate_.frames, IsEmpty());
  EXPECT_EQ(ticker.slots().calls_in(TickSlots::SlotOf(other_first)), 2u);
  EXPECT_EQ(ticker.running_timers(), 1u);
  Advance(microseconds(400));
  EXPECT_THAT(delegate_.frames, IsEmpty());
  Advance(microseconds(100));
  EXPECT_THAT(delegate_.frames, SizeIs(1));
  EXPECT_EQ(other.ticks, 1);
  Advance(milliseconds(20));
  EXPECT_THAT(delegate_.frames, SizeIs(2));
  EXPECT_EQ(other.ticks, 2);
  playout_->Stop();
  EXPECT_EQ(ticker.slots().calls_in(TickSlots::SlotOf(other_first)), 1u);
  playout_.reset();  // no second release
  EXPECT_EQ(ticker.slots().calls_in(TickSlots::SlotOf(other_first)), 1u);
  Advance(milliseconds(20));
  EXPECT_THAT(delegate_.frames, SizeIs(2));
  EXPECT_EQ(other.ticks, 3);
  ticker.Leave(&other, other_first);
}

// A call whose slot's timer is late when it joins (the loop still has
// that slot's previous point to run) is not played at that point: its
// first frame is at its own first tick.
TEST_F(PlayoutTest, ALateSlotTimerDoesNotPlayACallBeforeItsFirstTick) {
  SlotTicker ticker(&loop_);
  CountingMember other;
  const event::MonoTime other_first = ticker.Join(&other);  // now, on the grid
  ASSERT_EQ(other_first, time_.Now());
  // The loop does not run until 19.5 ms later: the slot's point at 0 is
  // still to run when the call joins, and its first tick is at 20 ms.
  time_.Advance(std::chrono::microseconds(19500));
  Playout::Options options = Options();
  options.ticker = &ticker;
  Create(options);
  playout_->Restart(8000);
  Advance(event::Nanos(0));
  EXPECT_EQ(other.ticks, 1);
  EXPECT_THAT(delegate_.frames, IsEmpty());
  Advance(std::chrono::microseconds(500));
  EXPECT_EQ(other.ticks, 2);
  EXPECT_THAT(delegate_.frames, SizeIs(1));
  EXPECT_EQ(counters_.playout_late_ticks.load(), 0u);
  playout_.reset();
  ticker.Leave(&other, other_first);
}

TEST_F(PlayoutTest, AnEmptyQueueSendsSilenceFrames) {
  Create();
  playout_->Restart(8000);
  Ticks(9);
  ASSERT_THAT(delegate_.frames, SizeIs(10));
  for (const Frame& frame : delegate_.frames) {
    EXPECT_EQ(frame.rate, 8000);
    EXPECT_THAT(frame.samples, SizeIs(160));
    EXPECT_THAT(frame.samples, Each(0));
  }
  EXPECT_EQ(playout_->silence_frames(), 10u);
  EXPECT_EQ(counters_.silence_frames_out.load(), 10u);
  EXPECT_FALSE(playout_->played_content());
}

TEST_F(PlayoutTest, WithoutSendSilenceOnlyContentIsSent) {
  Playout::Options options = Options();
  options.send_silence = false;
  Create(options);
  playout_->Restart(8000);
  Ticks(5);
  EXPECT_THAT(delegate_.frames, IsEmpty());
  ASSERT_TRUE(playout_->queue().EnqueueAudio(std::vector<int16_t>(320, 5), "r").ok());
  Ticks(5);
  ASSERT_THAT(delegate_.frames, SizeIs(2));
  EXPECT_THAT(delegate_.frames[1].samples, Each(5));
  EXPECT_EQ(playout_->frames_sent(), 2u);
  EXPECT_EQ(playout_->silence_frames(), 0u);
  EXPECT_EQ(counters_.silence_frames_out.load(), 0u);
}

TEST_F(PlayoutTest, ContentIsSentAsSlinAtThePlayoutRate) {
  Create();
  playout_->Restart(16000);
  ASSERT_THAT(delegate_.frames, SizeIs(1));  // silence, before anything was queued
  std::vector<int16_t> audio(640);
  for (size_t i = 0; i < audio.size(); ++i) audio[i] = static_cast<int16_t>(i * 37 - 9000);
  ASSERT_TRUE(playout_->queue().EnqueueAudio(audio, "r").ok());
  Ticks(3);
  ASSERT_THAT(delegate_.frames, SizeIs(4));
  std::vector<int16_t> played;
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_EQ(delegate_.frames[i].rate, 16000);
    ASSERT_THAT(delegate_.frames[i].samples, SizeIs(320));
    played.insert(played.end(), delegate_.frames[i].samples.begin(),
                  delegate_.frames[i].samples.end());
  }
  EXPECT_EQ(played, audio);
  EXPECT_THAT(delegate_.frames[3].samples, Each(0));
  EXPECT_TRUE(playout_->played_content());
  EXPECT_EQ(playout_->silence_frames(), 2u);
}

TEST_F(PlayoutTest, AudioAtAnotherRateIsConvertedToThePlayoutRate) {
  Create();
  playout_->Restart(8000);
  ASSERT_TRUE(playout_->converter().Prepare(16000).ok());
  std::vector<int16_t> pcm(3200, 1000);  // 200 ms at 16 kHz
  const std::string bytes(reinterpret_cast<const char*>(pcm.data()), pcm.size() * 2);
  ASSERT_TRUE(playout_->queue().EnqueuePcm(bytes, 16000, "r").ok());
  Ticks(10);
  ASSERT_THAT(delegate_.frames, SizeIs(11));
  for (size_t i = 1; i < delegate_.frames.size(); ++i) {
    EXPECT_EQ(delegate_.frames[i].rate, 8000);
    EXPECT_THAT(delegate_.frames[i].samples, SizeIs(160));
  }
  // A constant level survives the conversion, past the filter's ramp-up.
  EXPECT_NEAR(delegate_.frames[5].samples[80], 1000, 50);
}

TEST_F(PlayoutTest, ALateTickSendsOneFrameAndIsCounted) {
  Create();
  playout_->Restart(8000);
  Advance(milliseconds(100));  // the tick due at 20 ms runs at 100 ms
  EXPECT_THAT(delegate_.frames, SizeIs(2));
  EXPECT_EQ(counters_.playout_late_ticks.load(), 1u);
  // Back on the grid: the next deadline is 120 ms.
  Advance(milliseconds(19));
  EXPECT_THAT(delegate_.frames, SizeIs(2));
  Advance(milliseconds(1));
  EXPECT_THAT(delegate_.frames, SizeIs(3));
  EXPECT_EQ(counters_.playout_late_ticks.load(), 1u);
}

TEST_F(PlayoutTest, EveryTicksLatenessIsObserved) {
  LatencyHistogram lateness({0.001, 0.005, 0.05});
  Playout::Options options = Options();
  options.tick_lateness = &lateness;
  Create(options);
  playout_->Restart(8000);    // on time: 0
  Advance(milliseconds(20));  // on time
  Advance(milliseconds(23));  // the tick due at 40 ms runs at 43 ms
  Advance(milliseconds(37));  // the one due at 60 ms runs at 80 ms
  const LatencyHistogram::Snapshot seen = lateness.Read();
  EXPECT_EQ(seen.count, 4u);
  EXPECT_THAT(seen.counts, ElementsAre(2, 1, 1, 0));
  EXPECT_NEAR(seen.sum_seconds, 0.023, 1e-6);
}

TEST_F(PlayoutTest, ATickLessThanAFrameLateIsNotCounted) {
  Create();
  playout_->Restart(8000);
  Advance(milliseconds(39));  // 19 ms late
  EXPECT_THAT(delegate_.frames, SizeIs(2));
  EXPECT_EQ(counters_.playout_late_ticks.load(), 0u);
  Advance(milliseconds(1));  // 40 ms: the next deadline, on time
  EXPECT_THAT(delegate_.frames, SizeIs(3));
}

TEST_F(PlayoutTest, DtmfStartGoesBeforeItsFrameAndTheRestAfter) {
  Playout::Options options = Options();
  options.dialect = wire::Dialect::kExtended;
  Create(options);
  playout_->Restart(8000);
  delegate_.log.clear();
  ASSERT_TRUE(playout_->queue().EnqueueDtmf("7", 40, 40, "cmd", /*inband=*/false).ok());
  ASSERT_TRUE(playout_->queue().EnqueueMark("m").ok());
  Ticks(5);
  // The DTMF takes 4 frames (tone 2, gap 2); the mark right after it
  // resolves in the frame that ends it; the queue runs dry in the next.
  EXPECT_THAT(delegate_.log, ElementsAre("dtmf_start:7", "frame", "frame", "dtmf_stop:7", "frame",
                                         "frame", "dtmf_done:cmd", "mark:m", "frame", "drained:"));
}

TEST_F(PlayoutTest, FlushNoticesHandsOverWhatACommandCaused) {
  Create();
  playout_->Restart(8000);
  ASSERT_TRUE(playout_->queue().EnqueueAudio(std::vector<int16_t>(1600, 1), "r").ok());
  ASSERT_TRUE(playout_->queue().EnqueueMark("m").ok());
  delegate_.log.clear();
  playout_->queue().Clear("");
  playout_->FlushNotices();
  EXPECT_THAT(delegate_.log, Contains("cleared:m"));
  EXPECT_THAT(delegate_.log, ::testing::Not(Contains("frame")));
}

// A clear of thousands of marks hands them over a slice per loop round, so
// no round of the call's loop (shared with other calls) turns them all
// into events at once; they come in order, ahead of anything newer.
TEST_F(PlayoutTest, AClearsManyNoticesGoASlicePerRoundInOrder) {
  Create();
  playout_->Restart(8000);
  constexpr int kMarks = 1000;  // about four rounds' worth
  for (int i = 0; i < kMarks; ++i) {
    ASSERT_TRUE(playout_->queue().EnqueueMark(absl::StrCat("m", i)).ok());
  }
  delegate_.log.clear();
  playout_->queue().Clear("");
  ASSERT_TRUE(playout_->queue().EnqueueMark("after").ok());
  playout_->FlushNotices();
  EXPECT_THAT(delegate_.log, SizeIs(Playout::kNoticesPerRound));
  // One more round: one more slice.
  loop_.RunOnce(event::Nanos(0));
  EXPECT_THAT(delegate_.log, SizeIs(2 * Playout::kNoticesPerRound));
  // The tick a period later plays "after" behind the rest.
  Ticks(1);
  for (int i = 0; i < 5 && delegate_.log.size() < kMarks + 2; ++i) loop_.RunOnce(event::Nanos(0));
  std::vector<std::string> want;
  for (int i = 0; i < kMarks; ++i) want.push_back(absl::StrCat("cleared:m", i));
  std::vector<std::string> got;
  for (const std::string& entry : delegate_.log) {
    if (entry != "frame" && entry != "mark:after") got.push_back(entry);
  }
  EXPECT_EQ(got, want);
  ASSERT_FALSE(delegate_.log.empty());
  EXPECT_EQ(delegate_.log.back(), "mark:after");
  EXPECT_EQ(playout_->queue().pending_notices(), 0u);
}

// Notices not handed over yet survive a Restart (the call learning its
// real rate), in order.
TEST_F(PlayoutTest, RestartKeepsNoticesNotHandedOverYet) {
  Create();
  playout_->Restart(8000);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(playout_->queue().EnqueueMark(absl::StrCat("m", i)).ok());
  }
  delegate_.log.clear();
  playout_->queue().Clear("");
  playout_->FlushNotices();
  ASSERT_THAT(delegate_.log, SizeIs(Playout::kNoticesPerRound));
  playout_->Restart(16000);
  for (int i = 0; i < 3; ++i) loop_.RunOnce(event::Nanos(0));
  ASSERT_THAT(delegate_.log, SizeIs(300));
  EXPECT_EQ(delegate_.log[Playout::kNoticesPerRound],
            absl::StrCat("cleared:m", Playout::kNoticesPerRound));
  EXPECT_EQ(delegate_.log.back(), "cleared:m299");
}

TEST_F(PlayoutTest, RestartKeepsThePacersGrid) {
  Create();
  playout_->Restart(8000);
  Advance(milliseconds(20));
  Advance(milliseconds(5));
  ASSERT_TRUE(playout_->queue().EnqueueAudio(std::vector<int16_t>(160, 3), "r").ok());
  playout_->Restart(16000);                  // at 25 ms: the queue starts over, empty, at 16 kHz
  EXPECT_THAT(delegate_.frames, SizeIs(2));  // no extra frame
  EXPECT_EQ(playout_->rate_hz(), 16000);
  EXPECT_TRUE(playout_->queue().empty());
  Advance(milliseconds(14));
  EXPECT_THAT(delegate_.frames, SizeIs(2));
  Advance(milliseconds(1));  // 40 ms, the grid's next deadline
  ASSERT_THAT(delegate_.frames, SizeIs(3));
  EXPECT_EQ(delegate_.frames[2].rate, 16000);
  EXPECT_THAT(delegate_.frames[2].samples, SizeIs(320));
  EXPECT_THAT(delegate_.frames[2].samples, Each(0));  // what was queued went with the old queue
  Advance(milliseconds(20));
  EXPECT_THAT(delegate_.frames, SizeIs(4));
}

TEST_F(PlayoutTest, StopStopsTheTicks) {
  Create();
  playout_->Restart(8000);
  Ticks(2);
  playout_->Stop();
  Ticks(10);
  EXPECT_THAT(delegate_.frames, SizeIs(3));
  EXPECT_EQ(loop_.pending_timers(), 0u);
}

TEST_F(PlayoutTest, StoppingFromTheBeforeFrameNoticesSendsNoFrame) {
  Playout::Options options = Options();
  options.dialect = wire::Dialect::kExtended;
  Create(options);
  playout_->Restart(8000);
  ASSERT_TRUE(playout_->queue().EnqueueDtmf("1", 40, 40, "", /*inband=*/false).ok());
  delegate_.stop_on_notice = true;
  delegate_.log.clear();
  Ticks(3);
  EXPECT_THAT(delegate_.log, ElementsAre("dtmf_start:1"));
}

// The default options are usable as they are: an empty queue is below the
// low watermark and above no high one, so it sends neither.
TEST_F(PlayoutTest, DefaultOptionsSendNoWatermarksForAnEmptyQueue) {
  Create(Playout::Options{});
  playout_->Restart(8000);
  Ticks(4);
  for (const PlayoutNotice& notice : delegate_.taken) {
    EXPECT_NE(notice.type, Type::kHighWatermark);
    EXPECT_NE(notice.type, Type::kLowWatermark);
  }
}

TEST_F(PlayoutTest, NoTickOnceTheOwnerIsGone) {
  Create();
  playout_->Restart(8000);
  Ticks(1);
  owner_.reset();
  Ticks(10);
  EXPECT_THAT(delegate_.frames, SizeIs(2));
}

}  // namespace
}  // namespace audiosocket
