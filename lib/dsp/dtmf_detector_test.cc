// The DTMF detector's acceptance criteria, one test per criterion, each run at 8
// and 16 kHz, in linear PCM and through μ-law and A-law. Every case is built
// from exact parameters (digit, offsets, twist, level, duration, SNR, seed);
// tone phases and positions relative to the 20 ms frames are random from a
// fixed seed. docs/DSP.md tabulates the cases and the measured results.
#include "lib/dsp/dtmf_detector.h"

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dsp/dsp_testing.h"
#include "lib/dsp/dtmf_generator.h"

namespace audiosocket::dsp {
namespace {

using testing::AddBurst;
using testing::AddNoise;
using testing::AddSine;
using testing::Burst;
using testing::BurstSpec;
using testing::Channel;
using testing::Rng;
using testing::Score;

constexpr char kAllDigits[] = "123A456B789C*0#D";

struct Condition {
  int rate;
  Channel channel;
};

std::string ConditionName(const ::testing::TestParamInfo<Condition>& info) {
  return absl::StrFormat("%dHz_%s", info.param.rate, testing::ChannelName(info.param.channel));
}

class DtmfDetectorTest : public ::testing::TestWithParam<Condition> {
 protected:
  int rate() const { return GetParam().rate; }
  int64_t Ms(double ms) const { return std::llround(ms * rate() / 1000.0); }

  // A sequence of bursts, each followed by `gap_ms` of silence, starting at a
  // random offset within a 20 ms frame; optional continuous noise at
  // `snr_db` below the DTMF power (both tones) of the first burst.
  struct Plan {
    std::vector<BurstSpec> specs;  // start filled in by Run()
    double gap_ms = 50;
    double snr_db = 0;  // 0: no noise
    double third_tone_hz = 0;
    double third_tone_rel_db = -16;
  };

  Score Run(Plan plan, uint64_t seed, std::vector<DtmfEvent>* events_out = nullptr) {
    Rng rng(seed);
    int64_t t = Ms(60) + rng.Int(0, static_cast<int>(Ms(20)));
    std::vector<Burst> bursts;
    for (BurstSpec& s : plan.specs) {
      s.start = t;
      bursts.push_back({s.digit, s.start, s.length});
      t += s.length + Ms(plan.gap_ms) + rng.Int(0, static_cast<int>(Ms(4)));
    }
    std::vector<double> x(static_cast<size_t>(t + Ms(100)), 0.0);
    for (const BurstSpec& s : plan.specs) {
      AddBurst(&x, rate(), s, &rng);
      if (plan.third_tone_hz > 0) {
        AddSine(&x, rate(), s.start, s.length, plan.third_tone_hz,
                std::max(s.low_dbm0, s.high_dbm0) + plan.third_tone_rel_db, rng.Uniform(0, 6.283));
      }
    }
    if (plan.snr_db != 0 && !plan.specs.empty()) {
      const BurstSpec& s = plan.specs[0];
      const double dtmf_power =
          testing::PowerForDbm0(s.low_dbm0) + testing::PowerForDbm0(s.high_dbm0);
      const double noise_dbm0 =
          10 * std::log10(dtmf_power / testing::PowerForDbm0(0)) - plan.snr_db;
      AddNoise(&x, 0, static_cast<int64_t>(x.size()), noise_dbm0, &rng);
    }
    const std::vector<int16_t> pcm = testing::ToPcm(x, GetParam().channel);
    std::vector<DtmfEvent> events = testing::Detect(rate(), pcm, static_cast<int>(Ms(20)));
    Score score = testing::ScoreEvents(rate(), bursts, events);
    if (events_out != nullptr) *events_out = events;
    std::printf("[%s] %s\n", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                score.Describe().c_str());
    return score;
  }

  BurstSpec Spec(char digit, double ms, double level = -4) {
    BurstSpec s{};
    s.digit = digit;
    s.length = Ms(ms);
    s.low_dbm0 = level;
    s.high_dbm0 = level;
    return s;
  }

  static void ExpectAllCorrect(const Score& s) {
    EXPECT_EQ(s.correct, s.bursts) << s.Describe();
    EXPECT_EQ(s.wrong_digit, 0) << s.Describe();
    EXPECT_EQ(s.false_events, 0) << s.Describe();
    EXPECT_EQ(s.split, 0) << s.Describe();
  }
  static void ExpectNothing(const Score& s) {
    EXPECT_EQ(s.bursts - s.missed + s.false_events + s.wrong_digit, 0) << s.Describe();
  }
};

TEST_P(DtmfDetectorTest, AllDigitsFiftyOnFiftyOff) {
  Plan plan;
  for (int round = 0; round < 8; ++round) {
    for (char d : std::string(kAllDigits)) plan.specs.push_back(Spec(d, 50));
  }
  ExpectAllCorrect(Run(plan, 1));
}

TEST_P(DtmfDetectorTest, FrequencyWithinQ24ToleranceDetected) {
  // One tone off by ±(1.5% + 2 Hz), and both tones off in the same and in
  // opposite directions.
  const double o = 0.015;
  const double hz = 2.0;
  const int combos[][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}, {-1, -1}, {1, -1}, {-1, 1}};
  Plan plan;
  for (const auto& c : combos) {
    for (char d : std::string(kAllDigits)) {
      BurstSpec s = Spec(d, 50, -10);
      s.low_offset = c[0] * o;
      s.low_offset_hz = c[0] * hz;
      s.high_offset = c[1] * o;
      s.high_offset_hz = c[1] * hz;
      plan.specs.push_back(s);
    }
  }
  ExpectAllCorrect(Run(plan, 2));
}

TEST_P(DtmfDetectorTest, FrequencyOffByThreePointFivePercentOrMoreRejected) {
  const int combos[][2] = {{1, 0}, {-1, 0}, {0, 1}, {0, -1}, {1, 1}, {-1, -1}, {1, -1}, {-1, 1}};
  Plan plan;
  for (double o : {0.035, 0.04, 0.05, 0.07}) {
    for (const auto& c : combos) {
      for (char d : std::string(kAllDigits)) {
        BurstSpec s = Spec(d, 100, -10);
        s.low_offset = c[0] * o;
        s.high_offset = c[1] * o;
        plan.specs.push_back(s);
      }
    }
  }
  ExpectNothing(Run(plan, 3));
}

TEST_P(DtmfDetectorTest, TwistFromMinusEightToPlusFourDetected) {
  Plan plan;
  for (double twist = -8.0; twist <= 4.0; twist += 1.0) {
    for (char d : std::string(kAllDigits)) {
      BurstSpec s = Spec(d, 50, -8);
      s.high_dbm0 = -8 + twist;
      plan.specs.push_back(s);
    }
  }
  ExpectAllCorrect(Run(plan, 4));
}

TEST_P(DtmfDetectorTest, LevelFromPlusThreeToMinusThirtySixDetected) {
  Plan plan;
  for (double level : {3.0, 0.0, -3.0, -6.0, -10.0, -15.0, -20.0, -25.0, -30.0, -33.0, -36.0}) {
    for (char d : std::string(kAllDigits)) plan.specs.push_back(Spec(d, 50, level));
  }
  ExpectAllCorrect(Run(plan, 5));
}

TEST_P(DtmfDetectorTest, LevelMinusFiftyFiveAndBelowRejected) {
  Plan plan;
  for (double level : {-55.0, -60.0, -70.0}) {
    for (char d : std::string(kAllDigits)) plan.specs.push_back(Spec(d, 100, level));
  }
  ExpectNothing(Run(plan, 6));
}

TEST_P(DtmfDetectorTest, FortyMillisecondTonesDetected) {
  Plan plan;
  plan.gap_ms = 60;
  for (int round = 0; round < 6; ++round) {
    for (char d : std::string(kAllDigits)) plan.specs.push_back(Spec(d, 40));
  }
  ExpectAllCorrect(Run(plan, 7));
}

TEST_P(DtmfDetectorTest, TwentyThreeMillisecondsOrShorterRejected) {
  Plan plan;
  plan.gap_ms = 60;
  for (double ms : {23.0, 20.0, 15.0, 10.0}) {
    for (int round = 0; round < 4; ++round) {
      for (char d : std::string(kAllDigits)) plan.specs.push_back(Spec(d, ms));
    }
  }
  ExpectNothing(Run(plan, 8));
}

TEST_P(DtmfDetectorTest, FortyMillisecondPauseGivesTwoDigits) {
  // Same digit twice and different digits, 60 ms tones, 40 ms pauses.
  Plan plan;
  plan.gap_ms = 40;
  for (int round = 0; round < 3; ++round) {
    for (char d : std::string(kAllDigits)) {
      plan.specs.push_back(Spec(d, 60));
      plan.specs.push_back(Spec(d, 60));
    }
  }
  ExpectAllCorrect(Run(plan, 9));
}

TEST_P(DtmfDetectorTest, DropoutUpToTenMillisecondsGivesOneDigit) {
  for (double dropout_ms : {2.0, 5.0, 8.0, 10.0}) {
    Rng rng(10 + static_cast<uint64_t>(dropout_ms));
    std::vector<double> x(static_cast<size_t>(Ms(200) * 16 + Ms(200)), 0.0);
    std::vector<Burst> bursts;
    int64_t t = Ms(50) + rng.Int(0, static_cast<int>(Ms(20)));
    for (char d : std::string(kAllDigits)) {
      BurstSpec s = Spec(d, 100);
      s.start = t;
      AddBurst(&x, rate(), s, &rng);
      // Silence a dropout somewhere inside the tone.
      const int64_t at = t + Ms(rng.Uniform(25, 65));
      for (int64_t n = at; n < at + Ms(dropout_ms); ++n) x[n] = 0;
      bursts.push_back({d, t, s.length});
      t += Ms(200);
    }
    const auto pcm = testing::ToPcm(x, GetParam().channel);
    const Score score = testing::ScoreEvents(rate(), bursts, testing::Detect(rate(), pcm, Ms(20)));
    std::printf("[dropout %.0f ms] %s\n", dropout_ms, score.Describe().c_str());
    ExpectAllCorrect(score);
  }
}

TEST_P(DtmfDetectorTest, BeginWithinFortyMsAndDurationWithinTenMs) {
  Plan plan;
  plan.gap_ms = 60;
  Rng lengths(11);
  for (int round = 0; round < 4; ++round) {
    for (char d : std::string(kAllDigits)) plan.specs.push_back(Spec(d, lengths.Uniform(40, 300)));
  }
  const Score s = Run(plan, 12);
  ExpectAllCorrect(s);
  EXPECT_LE(s.max_begin_latency_ms, 40.0) << s.Describe();
  EXPECT_LE(s.max_duration_error_ms, 10.0) << s.Describe();
  // Goal: ±5 ms (reported in docs/DSP.md; not asserted).
}

TEST_P(DtmfDetectorTest, WhiteNoiseAtTenDbSnrDetectedWithoutWrongDigits) {
  Plan plan;
  plan.snr_db = 10;
  for (int round = 0; round < 8; ++round) {
    for (char d : std::string(kAllDigits)) plan.specs.push_back(Spec(d, 50, -10));
  }
  ExpectAllCorrect(Run(plan, 13));
}

TEST_P(DtmfDetectorTest, WhiteNoiseAtEightDbSnrGoal) {
  Plan plan;
  plan.snr_db = 8;
  for (int round = 0; round < 8; ++round) {
    for (char d : std::string(kAllDigits)) plan.specs.push_back(Spec(d, 50, -10));
  }
  const Score s = Run(plan, 14);
  EXPECT_EQ(s.wrong_digit, 0) << s.Describe();
  EXPECT_EQ(s.false_events, 0) << s.Describe();
  ExpectAllCorrect(s);
}

TEST_P(DtmfDetectorTest, ThirdToneAtMinusSixteenDbDoesNotPreventDetection) {
  Plan plan;
  plan.specs.clear();
  int i = 0;
  for (double f = 300; f <= 3400; f += 25, ++i) {
    Plan one;
    one.third_tone_hz = f;
    one.specs.push_back(Spec(kAllDigits[i % 16], 50, -10));
    one.specs.push_back(Spec(kAllDigits[(i + 5) % 16], 50, -10));
    const Score s = Run(one, 100 + static_cast<uint64_t>(i));
    EXPECT_EQ(s.correct, s.bursts) << "third tone at " << f << " Hz: " << s.Describe();
    EXPECT_EQ(s.wrong_digit + s.false_events, 0) << "third tone at " << f << " Hz";
  }
}

TEST_P(DtmfDetectorTest, TenMinutesOfNoiseAloneGiveNothing) {
  // Ten minutes at each level, streamed in 20 ms frames.
  for (double level : {-10.0, -20.0, -30.0, -40.0}) {
    auto detector = DtmfDetector::Create(rate());
    ASSERT_TRUE(detector.ok());
    Rng rng(15 + static_cast<uint64_t>(-level));
    std::vector<double> chunk(static_cast<size_t>(rate()));
    std::vector<DtmfEvent> events;
    for (int second = 0; second < 600; ++second) {
      std::fill(chunk.begin(), chunk.end(), 0.0);
      AddNoise(&chunk, 0, static_cast<int64_t>(chunk.size()), level, &rng);
      const auto pcm = testing::ToPcm(chunk, GetParam().channel);
      for (size_t i = 0; i < pcm.size(); i += static_cast<size_t>(Ms(20))) {
        detector->Process(absl::MakeConstSpan(pcm).subspan(i, static_cast<size_t>(Ms(20))),
                          &events);
      }
    }
    detector->Flush(&events);
    std::printf("[noise %.0f dBm0, 10 min] %zu events\n", level, events.size());
    EXPECT_THAT(events, ::testing::IsEmpty()) << "noise at " << level << " dBm0";
  }
}

INSTANTIATE_TEST_SUITE_P(
    Conditions, DtmfDetectorTest,
    ::testing::Values(Condition{8000, Channel::kLinear}, Condition{8000, Channel::kUlaw},
                      Condition{8000, Channel::kAlaw}, Condition{16000, Channel::kLinear},
                      Condition{16000, Channel::kUlaw}, Condition{16000, Channel::kAlaw}),
    ConditionName);

// Chunking: the events do not depend on how the stream is cut.
TEST(DtmfDetector, ChunkSizeDoesNotChangeEvents) {
  Rng rng(20);
  std::vector<double> x(8000 * 3, 0.0);
  int64_t t = 400;
  for (char d : std::string("159D*#")) {
    BurstSpec s{};
    s.digit = d;
    s.start = t;
    s.length = 480;
    s.low_dbm0 = s.high_dbm0 = -10;
    AddBurst(&x, 8000, s, &rng);
    t += 900;
  }
  const auto pcm = testing::ToPcm(x, Channel::kLinear);
  const auto reference = testing::Detect(8000, pcm, 160);
  ASSERT_EQ(reference.size(), 12u);
  for (int chunk : {1, 7, 80, 159, 161, 333, 8000}) {
    const auto events = testing::Detect(8000, pcm, chunk);
    ASSERT_EQ(events.size(), reference.size()) << "chunk " << chunk;
    for (size_t i = 0; i < events.size(); ++i) {
      EXPECT_EQ(events[i].digit, reference[i].digit);
      EXPECT_EQ(events[i].kind, reference[i].kind);
      EXPECT_EQ(events[i].start_sample, reference[i].start_sample);
      EXPECT_EQ(events[i].duration_samples, reference[i].duration_samples);
    }
  }
}

TEST(DtmfDetector, RejectsUnsupportedRates) {
  EXPECT_EQ(DtmfDetector::Create(4000).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DtmfDetector::Create(96000).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(DtmfDetector::Create(8000).ok());
  EXPECT_TRUE(DtmfDetector::Create(48000).ok());
}

TEST(DtmfDetector, ProcessDoesNotAllocateWhenVectorHasCapacity) {
  auto detector = DtmfDetector::Create(8000);
  ASSERT_TRUE(detector.ok());
  std::vector<DtmfEvent> events;
  events.reserve(8);
  const DtmfEvent* data = events.data();
  std::vector<int16_t> frame(160, 0);
  for (int i = 0; i < 100; ++i) {
    detector->Process(frame, &events);
    events.clear();
  }
  EXPECT_EQ(events.data(), data);
}

}  // namespace
}  // namespace audiosocket::dsp
