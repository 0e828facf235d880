#include "server/playout/playout_queue.h"

#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket {
namespace {

using Type = PlayoutNotice::Type;
using ::testing::Each;
using ::testing::ElementsAre;

PlayoutConfig Config() {
  PlayoutConfig config;
  config.sample_rate_hz = 8000;
  config.max_buffer_ms = 1000;
  config.high_watermark_ms = 500;
  config.low_watermark_ms = 100;
  return config;
}

// Room for a voice agent's prompt, 2 s sent ahead of its playing time.
PlayoutConfig PromptConfig() {
  PlayoutConfig config = Config();
  config.max_buffer_ms = 5000;
  config.high_watermark_ms = 4000;
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

// A response played as it streams in, a frame ahead (an echo, a backend
// streaming at real-time pace): its buffer stays the size of what is
// waiting, every sample still plays in order, and nothing was grown and
// copied along the way.
TEST(PlayoutQueueTest, AResponsePlayedAsItStreamsKeepsTheRoomItHas) {
  PlayoutQueue queue(Config());
  std::vector<int16_t> chunk(160);
  int16_t next_in = 0;
  auto enqueue = [&] {
    for (int16_t& sample : chunk) sample = next_in++;
    ASSERT_TRUE(queue.EnqueueAudio(chunk, "stream").ok());
  };
  enqueue();
  enqueue();
  std::vector<int16_t> frame(160);
  int16_t next_out = 0;
  size_t most_bytes = 0;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(queue.Tick(absl::MakeSpan(frame)));
    for (int16_t sample : frame) ASSERT_EQ(sample, next_out++);
    enqueue();
    most_bytes = std::max(most_bytes, queue.audio_buffer_bytes());
  }
  EXPECT_EQ(queue.buffered_samples(), 320u);
  // Two frames waiting and the third arriving: 960 bytes, and half again
  // at most from growing.
  EXPECT_LE(most_bytes, 960u * 3 / 2);
}

TEST(PlayoutQueueTest, MarkResolvesInTheTickThatPlaysTheAudioBeforeIt) {
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(200, 1), "r").ok());
  ASSERT_TRUE(queue.EnqueueMark("m").ok());
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
  ASSERT_TRUE(queue.EnqueueMark("m").ok());
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
  ASSERT_TRUE(queue.EnqueueMark("m").ok());
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

TEST(PlayoutQueueTest, TakeNoticesUpToMaxLeavesTheRestInOrder) {
  PlayoutQueue queue(Config());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(queue.EnqueueMark(absl::StrCat("m", i)).ok());
  queue.Clear("");
  EXPECT_EQ(queue.pending_notices(), 5u);
  std::vector<std::string> names;
  for (const PlayoutNotice& n : queue.TakeNotices(2)) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"m0", "m1"}));
  EXPECT_EQ(queue.pending_notices(), 3u);
  // Newer notices queue behind the rest.
  ASSERT_TRUE(queue.EnqueueMark("late").ok());
  std::vector<int16_t> frame(160);
  queue.Tick(absl::MakeSpan(frame));
  names.clear();
  for (const PlayoutNotice& n : queue.TakeNotices(3)) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"m2", "m3", "m4"}));
  names.clear();
  for (const PlayoutNotice& n : queue.TakeNotices()) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"late"}));
  EXPECT_EQ(queue.pending_notices(), 0u);
}

// The call ends halfway through handing over a clear's notices: the rest
// go to the leftovers, in order, ahead of what was still queued.
TEST(PlayoutQueueTest, AbandonKeepsNoticesNotTakenYetAheadOfTheQueue) {
  PlayoutQueue queue(Config());
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(queue.EnqueueMark(absl::StrCat("m", i)).ok());
  queue.Clear("");
  ASSERT_TRUE(queue.EnqueueMark("queued").ok());
  ASSERT_EQ(queue.TakeNotices(1).size(), 1u);
  PlayoutQueue::Leftovers leftovers = queue.Abandon();
  EXPECT_EQ(queue.pending_notices(), 0u);
  std::vector<PlayoutNotice> out;
  leftovers.Take(100, &out);
  std::vector<std::string> names;
  for (const PlayoutNotice& n : out) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"m1", "m2", "m3", "queued"}));
  EXPECT_TRUE(leftovers.empty());
}

TEST(PlayoutQueueTest, AdoptedNoticesGoAheadOfTheQueuesOwn) {
  PlayoutQueue old_queue(Config());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(old_queue.EnqueueMark(absl::StrCat("old", i)).ok());
  old_queue.Clear("");
  (void)old_queue.TakeNotices(1);
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueMark("new").ok());
  queue.Clear("");
  queue.AdoptNotices(old_queue.ReleaseNotices());
  EXPECT_EQ(old_queue.pending_notices(), 0u);
  std::vector<std::string> names;
  for (const PlayoutNotice& n : queue.TakeNotices()) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"old1", "old2", "new"}));
}

TEST(PlayoutQueueTest, AudioForAResponseThatRanDryAudiblyIsAnUnderrun) {
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(100, 1), "r").ok());
  std::vector<int16_t> frame(160);
  queue.Tick(absl::MakeSpan(frame));  // 60 samples of silence after the audio
  EXPECT_EQ(Types(queue.TakeNotices()), std::vector<Type>{Type::kDrained});
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 1), "r").ok());
  EXPECT_EQ(Types(queue.TakeNotices()), std::vector<Type>{Type::kUnderrun});
  EXPECT_EQ(queue.underruns(), 1u);
  // A new response after a drain is not an underrun.
  queue.Tick(absl::MakeSpan(frame));
  queue.Tick(absl::MakeSpan(frame));
  queue.TakeNotices();
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 1), "next").ok());
  EXPECT_TRUE(queue.TakeNotices().empty());
}

TEST(PlayoutQueueTest, AudioExactlyInTimeIsNeitherDrainedNorAnUnderrun) {
  // A backend streaming 20 ms chunks at real-time pace: each chunk ends
  // exactly on a frame boundary and the next comes before the next frame.
  PlayoutQueue queue(Config());
  std::vector<int16_t> frame(160);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 1), "r").ok());
    EXPECT_TRUE(queue.Tick(absl::MakeSpan(frame)));
    EXPECT_TRUE(queue.TakeNotices().empty()) << "chunk " << i;
  }
  // The stream ends: one DRAINED when the caller hears silence.
  EXPECT_FALSE(queue.Tick(absl::MakeSpan(frame)));
  EXPECT_EQ(Types(queue.TakeNotices()), std::vector<Type>{Type::kDrained});
  EXPECT_FALSE(queue.Tick(absl::MakeSpan(frame)));
  EXPECT_TRUE(queue.TakeNotices().empty());
  EXPECT_EQ(queue.underruns(), 0u);
}

// A backend streams 20 ms chunks at real-time pace with up to `jitter_ms`
// of lateness (deterministic pseudo-random); the queue ticks every 20 ms.
// Returns the underruns and DRAINED notices, and checks that every sample
// played exactly once.
std::pair<int, int> StreamWithJitter(int chunks, int jitter_ms, int pause_at, int pause_ms) {
  PlayoutQueue queue(Config());
  std::vector<int16_t> frame(160);
  uint32_t seed = 12345;
  // Arrival time of chunk i in microseconds: i * 20 ms + jitter (+ a pause).
  std::vector<int64_t> arrival(static_cast<size_t>(chunks));
  for (int i = 0; i < chunks; ++i) {
    seed = seed * 1103515245 + 12345;
    const int64_t jitter = jitter_ms == 0 ? 0 : (seed >> 8) % (jitter_ms * 1000);
    arrival[static_cast<size_t>(i)] =
        i * 20000 + jitter + (pause_at >= 0 && i >= pause_at ? pause_ms * 1000 : 0);
  }
  int drained = 0;
  int underruns = 0;
  uint64_t played = 0;
  size_t next = 0;
  // Ticks at 10 ms + n * 20 ms (any phase does).
  for (int64_t tick = 10000; next < arrival.size() || !queue.empty(); tick += 20000) {
    while (next < arrival.size() && arrival[next] <= tick) {
      EXPECT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 1), "r").ok());
      ++next;
    }
    queue.Tick(absl::MakeSpan(frame));
    played += static_cast<uint64_t>(std::count(frame.begin(), frame.end(), 1));
    for (Type t : Types(queue.TakeNotices())) {
      drained += t == Type::kDrained;
      underruns += t == Type::kUnderrun;
    }
  }
  queue.Tick(absl::MakeSpan(frame));  // the first silence after the stream
  for (Type t : Types(queue.TakeNotices())) drained += t == Type::kDrained;
  EXPECT_EQ(played, static_cast<uint64_t>(chunks) * 160);
  EXPECT_EQ(static_cast<uint64_t>(underruns), queue.underruns());
  return {underruns, drained};
}

TEST(PlayoutQueueTest, RealTimeStreamWithJitterHasAtMostAFewUnderruns) {
  // 10 s of 20 ms chunks, each up to 15 ms late: the first late chunks
  // build a cushion of a frame or two, then none is heard late again.
  auto [underruns, drained] = StreamWithJitter(500, 15, -1, 0);
  EXPECT_LE(underruns, 2);
  EXPECT_LE(drained, underruns + 1);  // the gaps, then the end of the stream
}

TEST(PlayoutQueueTest, AStreamThatPausesMidResponseReportsAnUnderrun) {
  auto [underruns, drained] = StreamWithJitter(100, 0, 50, 200);
  EXPECT_EQ(underruns, 1);
  EXPECT_EQ(drained, 2);
}

TEST(PlayoutQueueTest, RunningDryAfterAMarkIsTheEndOfTheResponseNotAnUnderrun) {
  PlayoutQueue queue(Config());
  std::vector<int16_t> frame(160);
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 1), "r").ok());
  ASSERT_TRUE(queue.EnqueueMark("end of r").ok());
  queue.Tick(absl::MakeSpan(frame));
  queue.Tick(absl::MakeSpan(frame));
  EXPECT_THAT(Types(queue.TakeNotices()), ::testing::Contains(Type::kDrained));
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 1), "r").ok());
  EXPECT_TRUE(queue.TakeNotices().empty());
  EXPECT_EQ(queue.underruns(), 0u);
}

// Halves the rate by keeping every other sample (carrying the odd one
// over), and records how much input each call converted.
class HalvingConverter final : public RateConverter {
 public:
  void Convert(int input_rate_hz, absl::Span<const int16_t> in,
               std::vector<int16_t>* out) override {
    EXPECT_EQ(input_rate_hz, 16000);
    calls.push_back(in.size());
    for (int16_t s : in) {
      if (phase++ % 2 == 0) out->push_back(s);
    }
  }
  std::vector<size_t> calls;
  uint64_t phase = 0;
};

std::string Pcm(const std::vector<int16_t>& samples) {
  return std::string(reinterpret_cast<const char*>(samples.data()), samples.size() * 2);
}

// A prompt sent ahead of its playing time sits in vectors of at most the
// spare's size, each reused once played, not in one vector regrown (and
// copied) to half again the prompt's size; it plays whole and in order,
// and the mark after it resolves in the tick that plays its last sample.
TEST(PlayoutQueueTest, APromptSentAheadSitsInSpareSizedVectorsAndPlaysInOrder) {
  PlayoutQueue queue(PromptConfig());
  std::vector<int16_t> chunk(800);  // 100 ms at 8 kHz
  int16_t next_in = 0;
  for (int i = 0; i < 20; ++i) {
    for (int16_t& sample : chunk) sample = next_in++;
    ASSERT_TRUE(queue.EnqueueAudio(chunk, "prompt").ok());
  }
  ASSERT_TRUE(queue.EnqueueMark("end").ok());
  const size_t prompt_bytes = 20 * chunk.size() * sizeof(int16_t);
  EXPECT_LE(queue.audio_buffer_bytes(), prompt_bytes * 21 / 20);
  EXPECT_GE(queue.audio_buffer_bytes(), prompt_bytes);

  std::vector<int16_t> frame(160);
  int16_t next_out = 0;
  for (int tick = 1; tick <= 100; ++tick) {
    queue.Tick(absl::MakeSpan(frame));
    for (int16_t sample : frame) ASSERT_EQ(sample, next_out++) << "tick " << tick;
    const bool mark =
        ::testing::Value(Types(queue.TakeNotices()), ::testing::Contains(Type::kMarkPlayed));
    EXPECT_EQ(mark, tick == 100) << "tick " << tick;
  }
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.buffered_samples(), 0u);
  EXPECT_EQ(queue.item_bytes(), 0u);
  // What is left is the spare, for the next prompt.
  EXPECT_LE(queue.audio_buffer_bytes(), 4096 * sizeof(int16_t));
}

// A clear in the middle of such a prompt reports it as one response.
TEST(PlayoutQueueAccountTest, AClearInsideAPromptSentAheadReportsItWhole) {
  PlayoutQueue queue(PromptConfig());
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(800, 1), "prompt").ok());
  }
  std::vector<int16_t> frame(160);
  for (int i = 0; i < 30; ++i) queue.Tick(absl::MakeSpan(frame));
  ClearReport report = queue.Clear("prompt");
  ASSERT_EQ(report.responses.size(), 1u);
  EXPECT_EQ(report.responses[0].played_samples, 4800u);
  EXPECT_EQ(report.responses[0].discarded_samples, 11200u);
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.item_bytes(), 0u);
}

// The same for a prompt at another rate: converted in order across its
// items, and counted at the queue's rate.
TEST(PlayoutQueueTest, APromptAtAnotherRateSentAheadPlaysInOrderAcrossItems) {
  HalvingConverter converter;
  PlayoutQueue queue(PromptConfig());
  queue.set_converter(&converter);
  std::vector<int16_t> audio(32000);  // 2 s at 16 kHz
  for (size_t i = 0; i < audio.size(); ++i) audio[i] = static_cast<int16_t>(i % 30000);
  for (size_t at = 0; at < audio.size(); at += 1600) {  // 100 ms chunks
    ASSERT_TRUE(
        queue
            .EnqueuePcm(Pcm(std::vector<int16_t>(audio.begin() + at, audio.begin() + at + 1600)),
                        16000, "prompt")
            .ok());
  }
  EXPECT_EQ(queue.buffered_samples(), 16000u);
  EXPECT_LE(queue.audio_buffer_bytes(), audio.size() * sizeof(int16_t) * 21 / 20);
  std::vector<int16_t> frame(160);
  std::vector<int16_t> heard;
  for (int tick = 0; tick < 50; ++tick) {
    queue.Tick(absl::MakeSpan(frame));
    heard.insert(heard.end(), frame.begin(), frame.end());
  }
  for (size_t i = 0; i < heard.size(); ++i) ASSERT_EQ(heard[i], audio[2 * i]) << i;
  ClearReport report = queue.Clear("");
  ASSERT_EQ(report.responses.size(), 1u);
  EXPECT_EQ(report.responses[0].played_samples, 8000u);
  EXPECT_EQ(report.responses[0].discarded_samples, 8000u);
  EXPECT_EQ(queue.buffered_samples(), 0u);
}

TEST(PlayoutQueueTest, AudioAtAnotherRateIsRefusedBeforeAnyConversion) {
  PlayoutConfig config = Config();  // 8 kHz, at most 1000 ms
  HalvingConverter converter;
  PlayoutQueue queue(config);
  queue.set_converter(&converter);
  // 1.2 s at 16 kHz is 9,600 samples at 8 kHz: over the bound, refused
  // without converting (or copying) a sample.
  absl::Status status = queue.EnqueuePcm(Pcm(std::vector<int16_t>(19200, 1)), 16000, "r");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(status.message(), ::testing::HasSubstr("limit 1000 ms"));
  EXPECT_TRUE(converter.calls.empty());
  EXPECT_EQ(queue.buffered_samples(), 0u);
  EXPECT_TRUE(queue.empty());
}

TEST(PlayoutQueueTest, AudioAtAnotherRateIsConvertedInSlicesAsItPlays) {
  HalvingConverter converter;
  PlayoutQueue queue(Config());
  queue.set_converter(&converter);
  std::vector<int16_t> audio(16000);  // 1 s at 16 kHz
  for (size_t i = 0; i < audio.size(); ++i) audio[i] = static_cast<int16_t>(i % 30000);
  ASSERT_TRUE(queue.EnqueuePcm(Pcm(audio), 16000, "r").ok());
  EXPECT_TRUE(converter.calls.empty());        // nothing converted yet
  EXPECT_EQ(queue.buffered_samples(), 8000u);  // counted at the queue's rate
  std::vector<int16_t> frame(160);
  std::vector<int16_t> heard;
  while (!queue.empty()) {
    queue.Tick(absl::MakeSpan(frame));
    heard.insert(heard.end(), frame.begin(), frame.end());
  }
  // Every slice is at most convert_slice_ms (100 ms) of output, plus one
  // input sample for the phase.
  EXPECT_GE(converter.calls.size(), 10u);
  for (size_t n : converter.calls) EXPECT_LE(n, 1602u);
  ASSERT_GE(heard.size(), 8000u);
  for (size_t i = 0; i < 8000; ++i) ASSERT_EQ(heard[i], audio[2 * i]) << i;
  EXPECT_EQ(queue.buffered_samples(), 0u);
}

TEST(PlayoutQueueTest, ClearCountsAudioNotConvertedYetAtTheQueueRate) {
  HalvingConverter converter;
  PlayoutQueue queue(Config());
  queue.set_converter(&converter);
  ASSERT_TRUE(queue.EnqueuePcm(Pcm(std::vector<int16_t>(16000, 1)), 16000, "r").ok());
  std::vector<int16_t> frame(160);
  queue.Tick(absl::MakeSpan(frame));
  queue.Tick(absl::MakeSpan(frame));
  ClearReport report = queue.Clear("");
  ASSERT_EQ(report.responses.size(), 1u);
  EXPECT_EQ(report.responses[0].played_samples, 320u);
  EXPECT_EQ(report.responses[0].discarded_samples, 7680u);
  EXPECT_EQ(queue.buffered_samples(), 0u);
}

TEST(PlayoutQueueTest, DtmfCountsAgainstThePlayoutBound) {
  PlayoutQueue queue(Config());  // at most 1000 ms
  // 7 digits of 100 + 50 ms is 1050 ms: refused whole.
  absl::Status status = queue.EnqueueDtmf("1234567", 100, 50, "d", false);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_TRUE(queue.empty());
  ASSERT_TRUE(queue.EnqueueDtmf("123456", 100, 50, "d", false).ok());  // 900 ms
  EXPECT_EQ(queue.dtmf_samples(), 7200u);
  EXPECT_EQ(queue.EnqueueAudio(std::vector<int16_t>(1600, 1), "r").code(),
            absl::StatusCode::kResourceExhausted);
  std::vector<int16_t> frame(160);
  for (int i = 0; i < 10; ++i) queue.Tick(absl::MakeSpan(frame));  // 200 ms played
  EXPECT_EQ(queue.dtmf_samples(), 5600u);
  EXPECT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(1600, 1), "r").ok());
  queue.Clear("");
  EXPECT_EQ(queue.dtmf_samples(), 0u);
}

TEST(PlayoutQueueTest, MarksAreBoundedInBytesAndFreedAsTheyResolve) {
  PlayoutConfig config = Config();
  config.max_item_bytes = 10 * (kItemOverheadBytes + 1);
  PlayoutQueue queue(config);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(queue.EnqueueMark("m").ok()) << i;
  absl::Status status = queue.EnqueueMark("m");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  std::vector<int16_t> frame(160);
  queue.Tick(absl::MakeSpan(frame));  // every mark resolves
  EXPECT_EQ(queue.item_bytes(), 0u);
  EXPECT_TRUE(queue.EnqueueMark("m").ok());
}

TEST(PlayoutQueueTest, DtmfTakesSampleExactTimeWithStartAndStop) {
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueDtmf("12", 100, 60, "d", /*inband=*/false).ok());
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
  ASSERT_TRUE(queue.EnqueueMark("a").ok());
  ASSERT_TRUE(queue.EnqueueDtmf("1", 100, 50, "d", false).ok());
  ASSERT_TRUE(queue.EnqueueMark("b").ok());
  PlayoutQueue::Leftovers leftovers = queue.Abandon();
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.item_bytes(), 0u);
  std::vector<PlayoutNotice> notices;
  leftovers.Take(100, &notices);
  EXPECT_TRUE(leftovers.empty());
  EXPECT_EQ(Types(notices),
            (std::vector<Type>{Type::kMarkCleared, Type::kDtmfCancelled, Type::kMarkCleared}));
  EXPECT_EQ(notices[0].name, "a");
  EXPECT_EQ(notices[1].name, "d");
  EXPECT_EQ(notices[2].name, "b");
}

// Leftovers resolve a slice at a time, in queue order, after the notices
// the queue had not handed out yet; audio counts towards a slice.
TEST(PlayoutQueueTest, LeftoversAreTakenASliceAtATimeInOrder) {
  PlayoutQueue queue(Config());
  ASSERT_TRUE(queue.EnqueueMark("first").ok());
  std::vector<int16_t> frame(160);
  queue.Tick(absl::MakeSpan(frame));  // "first" played: a notice not taken yet
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(1600, 1), "r").ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(queue.EnqueueMark(absl::StrCat("m", i)).ok());
  ASSERT_TRUE(queue.EnqueueDtmf("1", 100, 50, "d", false).ok());

  PlayoutQueue::Leftovers leftovers = queue.Abandon();
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.buffered_samples(), 0u);
  std::vector<std::vector<std::string>> slices;
  while (!leftovers.empty()) {
    std::vector<PlayoutNotice> slice;
    leftovers.Take(3, &slice);
    std::vector<std::string> names;
    for (const PlayoutNotice& notice : slice) {
      names.push_back(absl::StrCat(static_cast<int>(notice.type), ":", notice.name));
    }
    slices.push_back(names);
    ASSERT_LE(slices.size(), 10u);
  }
  const std::string played = absl::StrCat(static_cast<int>(Type::kMarkPlayed), ":");
  const std::string cleared = absl::StrCat(static_cast<int>(Type::kMarkCleared), ":");
  const std::string cancelled = absl::StrCat(static_cast<int>(Type::kDtmfCancelled), ":");
  // The played notice, the audio (no notice) and m0; m1 to m3; m4 and the DTMF.
  EXPECT_THAT(slices, ElementsAre(ElementsAre(played + "first", cleared + "m0"),
                                  ElementsAre(cleared + "m1", cleared + "m2", cleared + "m3"),
                                  ElementsAre(cleared + "m4", cancelled + "d")));
}

}  // namespace
}  // namespace audiosocket

namespace audiosocket {
namespace {

// A response's account (docs/API.md "What the caller heard"): a clear after
// it drained reports it whole as played; its id reused before another
// response plays continues the account, reused after starts a new one.
TEST(PlayoutQueueAccountTest, ReusedResponseIdContinuesUntilAnotherResponsePlays) {
  PlayoutQueue queue(Config());
  std::vector<int16_t> frame(160);
  auto play_out = [&](int frames) {
    for (int i = 0; i < frames; ++i) queue.Tick(absl::MakeSpan(frame));
  };
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(1600, 1), "r").ok());  // 200 ms
  play_out(12);                                                              // drained
  ClearReport drained = queue.Clear("r");
  ASSERT_EQ(drained.responses.size(), 1u);
  EXPECT_EQ(drained.responses[0].played_samples, 1600u);
  EXPECT_EQ(drained.responses[0].discarded_samples, 0u);

  // Reused after drain, nothing else played: one account of both.
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(800, 1), "s").ok());
  play_out(6);
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(800, 1), "s").ok());
  play_out(2);
  ClearReport reused = queue.Clear("s");
  ASSERT_EQ(reused.responses.size(), 1u);
  EXPECT_EQ(reused.responses[0].played_samples, 800u + 320u);
  EXPECT_EQ(reused.responses[0].discarded_samples, 480u);

  // Reused after another response played: a new account.
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(800, 1), "t").ok());
  play_out(6);
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(160, 1), "u").ok());
  play_out(2);
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(800, 1), "t").ok());
  play_out(1);
  ClearReport fresh = queue.Clear("t");
  ASSERT_EQ(fresh.responses.size(), 1u);
  EXPECT_EQ(fresh.responses[0].played_samples, 160u);
  EXPECT_EQ(fresh.responses[0].discarded_samples, 640u);
}

// A clear ends a response's account: the same id queued right after starts
// from nothing, though it was the response looked up last.
TEST(PlayoutQueueAccountTest, IdQueuedRightAfterItsClearStartsANewAccount) {
  PlayoutQueue queue(Config());
  std::vector<int16_t> frame(160);
  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(1600, 1), "r").ok());
  for (int i = 0; i < 4; ++i) queue.Tick(absl::MakeSpan(frame));
  ClearReport first = queue.Clear("r");
  ASSERT_EQ(first.responses.size(), 1u);
  EXPECT_EQ(first.responses[0].played_samples, 640u);

  ASSERT_TRUE(queue.EnqueueAudio(std::vector<int16_t>(800, 1), "r").ok());
  for (int i = 0; i < 2; ++i) queue.Tick(absl::MakeSpan(frame));
  ClearReport second = queue.Clear("r");
  ASSERT_EQ(second.responses.size(), 1u);
  EXPECT_EQ(second.responses[0].played_samples, 320u);
  EXPECT_EQ(second.responses[0].discarded_samples, 480u);
}

}  // namespace
}  // namespace audiosocket
