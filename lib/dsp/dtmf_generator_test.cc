#include "lib/dsp/dtmf_generator.h"

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lib/dsp/dsp_testing.h"
#include "lib/dsp/dtmf_detector.h"
#include "lib/dsp/resampler.h"

namespace audiosocket::dsp {
namespace {

// Least-squares amplitude of a sine at exactly `f` over x (Hann-free, the
// segment is many periods long).
double Amplitude(const std::vector<double>& x, int rate, double f) {
  double c = 0, s = 0;
  for (size_t n = 0; n < x.size(); ++n) {
    const double ph = 2 * std::numbers::pi * f * n / rate;
    c += x[n] * std::cos(ph);
    s += x[n] * std::sin(ph);
  }
  return 2 * std::hypot(c, s) / x.size();
}

// Frequency of the strongest component near `f` (golden-section search on
// the Hann-windowed spectrum).
double PeakFrequency(const std::vector<double>& x, int rate, double f) {
  auto mag = [&](double g) {
    double c = 0, s = 0;
    for (size_t n = 0; n < x.size(); ++n) {
      const double w = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * n / (x.size() - 1));
      const double ph = 2 * std::numbers::pi * g * n / rate;
      c += w * x[n] * std::cos(ph);
      s += w * x[n] * std::sin(ph);
    }
    return std::hypot(c, s);
  };
  double lo = f * 0.99, hi = f * 1.01;
  for (int i = 0; i < 40; ++i) {
    const double a = lo + (hi - lo) * 0.382, b = lo + (hi - lo) * 0.618;
    (mag(a) > mag(b) ? hi : lo) = (mag(a) > mag(b) ? b : a);
  }
  return (lo + hi) / 2;
}

class GeneratorRateTest : public ::testing::TestWithParam<int> {};

TEST_P(GeneratorRateTest, SampleExactDurationsLevelFrequencyAndPurity) {
  const int rate = GetParam();
  auto gen = DtmfGenerator::Create(rate);
  ASSERT_TRUE(gen.ok()) << gen.status();
  ASSERT_TRUE(gen->Queue("1D").ok());
  const int64_t tone = gen->tone_samples(), gap = gen->gap_samples();
  EXPECT_EQ(tone, 100LL * rate / 1000);
  EXPECT_EQ(gap, 50LL * rate / 1000);
  // Generate in odd-sized chunks: phase continuity makes chunking invisible.
  std::vector<int16_t> out(static_cast<size_t>(3 * (tone + gap)));
  size_t produced = 0;
  for (size_t i = 0; i < out.size(); i += 77) {
    produced += gen->Generate(absl::MakeSpan(out).subspan(i, std::min<size_t>(77, out.size() - i)));
  }
  EXPECT_EQ(produced, static_cast<size_t>(2 * (tone + gap)));
  EXPECT_TRUE(gen->Idle());
  const int64_t ramp = std::llround(0.002 * rate);
  // Exactly `tone` non-silent samples at the start of each digit.
  for (int d = 0; d < 2; ++d) {
    const int64_t base = d * (tone + gap);
    // The ramp starts at zero amplitude; all but a few ramp samples are
    // non-zero inside the tone.
    int zeros = 0;
    for (int64_t n = base; n < base + tone; ++n) zeros += out[n] == 0;
    EXPECT_LE(zeros, 2 + ramp / 8);
    for (int64_t n = base + tone; n < base + tone + gap; ++n) ASSERT_EQ(out[n], 0) << n;
  }
  // Steady part of digit 1: level, frequency, spurious.
  std::vector<double> steady(out.begin() + ramp, out.begin() + tone - ramp);
  const double a_lo = Amplitude(steady, rate, 697), a_hi = Amplitude(steady, rate, 1209);
  const double want = SineAmplitudeForDbm0(-10);
  EXPECT_NEAR(20 * std::log10(a_lo / want), 0, 0.5);
  EXPECT_NEAR(20 * std::log10(a_hi / want), 0, 0.5);
  EXPECT_NEAR(PeakFrequency(steady, rate, 697) / 697, 1, 0.001);
  EXPECT_NEAR(PeakFrequency(steady, rate, 1209) / 1209, 1, 0.001);
  // Residual after removing the two ideal tones: spurious + noise > 40 dB down.
  double c1 = 0, s1 = 0, c2 = 0, s2 = 0;
  for (size_t n = 0; n < steady.size(); ++n) {
    const double p1 = 2 * std::numbers::pi * 697 * n / rate,
                 p2 = 2 * std::numbers::pi * 1209 * n / rate;
    c1 += steady[n] * std::cos(p1);
    s1 += steady[n] * std::sin(p1);
    c2 += steady[n] * std::cos(p2);
    s2 += steady[n] * std::sin(p2);
  }
  const double k = 2.0 / steady.size();
  double residual = 0, total = 0;
  for (size_t n = 0; n < steady.size(); ++n) {
    const double p1 = 2 * std::numbers::pi * 697 * n / rate,
                 p2 = 2 * std::numbers::pi * 1209 * n / rate;
    const double model =
        k * (c1 * std::cos(p1) + s1 * std::sin(p1) + c2 * std::cos(p2) + s2 * std::sin(p2));
    residual += (steady[n] - model) * (steady[n] - model);
    total += steady[n] * steady[n];
  }
  EXPECT_LT(10 * std::log10(residual / total), -40);
  // No clicks: the first and last samples of a tone are small, and no
  // sample step at the edges is larger than the largest step in the middle.
  int max_mid_step = 0;
  for (int64_t n = ramp + 1; n < tone - ramp; ++n)
    max_mid_step = std::max(max_mid_step, std::abs(out[n] - out[n - 1]));
  for (int64_t n = 1; n <= ramp; ++n) {
    EXPECT_LE(std::abs(out[n] - out[n - 1]), max_mid_step);
    EXPECT_LE(std::abs(out[tone - n] - out[tone - n - 1]), max_mid_step);
  }
  EXPECT_LT(std::abs(out[0]), 0.05 * want * 2);
  EXPECT_LT(std::abs(out[tone - 1]), 0.05 * want * 2);
}

INSTANTIATE_TEST_SUITE_P(AudioSocketRates, GeneratorRateTest,
                         ::testing::Values(8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000,
                                           192000));

TEST(DtmfGenerator, RefusesShortTonesAndGapsWithClearErrors) {
  DtmfGenerator::Options o;
  o.tone_ms = 39;
  auto g = DtmfGenerator::Create(8000, o);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(g.status().message().find("tone_ms >= 40"), absl::string_view::npos);
  o.tone_ms = 40;
  o.gap_ms = 29;
  g = DtmfGenerator::Create(8000, o);
  EXPECT_NE(g.status().message().find("gap_ms >= 30"), absl::string_view::npos);
  o.gap_ms = 30;
  EXPECT_TRUE(DtmfGenerator::Create(8000, o).ok());
  EXPECT_FALSE(DtmfGenerator::Create(4000).ok());
  auto ok = DtmfGenerator::Create(8000);
  const absl::Status bad = ok->Queue("12x");
  EXPECT_NE(bad.message().find("'x'"), absl::string_view::npos);
  EXPECT_TRUE(ok->Idle());
}

TEST(DtmfGenerator, TwistSetsHighToneLevel) {
  DtmfGenerator::Options o;
  o.twist_db = 4;
  auto g = DtmfGenerator::Create(8000, o);
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(g->Queue("5").ok());
  std::vector<int16_t> out(800);
  g->Generate(absl::MakeSpan(out));
  std::vector<double> steady(out.begin() + 40, out.begin() + 760);
  EXPECT_NEAR(20 * std::log10(Amplitude(steady, 8000, 1336) / Amplitude(steady, 8000, 770)), 4,
              0.3);
}

// Everything the generator makes is recognised with durations within ±10 ms,
// at the detector's rates directly and at every AudioSocket rate after
// resampling to 8 kHz.
TEST(DtmfGenerator, DetectorRecognisesEverythingGenerated) {
  const std::string digits = "0123456789*#ABCD";
  for (int rate : {8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000}) {
    for (int tone_ms : {40, 70, 100}) {
      DtmfGenerator::Options o;
      o.tone_ms = tone_ms;
      o.gap_ms = 40;
      auto g = DtmfGenerator::Create(rate, o);
      ASSERT_TRUE(g.ok());
      ASSERT_TRUE(g->Queue(digits).ok());
      std::vector<int16_t> pcm(static_cast<size_t>((g->tone_samples() + g->gap_samples()) * 17));
      g->Generate(absl::MakeSpan(pcm));
      int detect_rate = rate == 16000 ? 16000 : 8000;
      std::vector<int16_t> in = pcm;
      if (rate != detect_rate) {
        auto r = Resampler::Create(rate, detect_rate, {.quality = 7, .skip_initial_delay = true});
        ASSERT_TRUE(r.ok());
        in.resize(r->MaxOutputSamples(pcm.size()));
        in.resize(r->Process(pcm, absl::MakeSpan(in)));
      }
      const auto events = testing::Detect(detect_rate, in, detect_rate / 50);
      std::string got;
      for (const DtmfEvent& e : events) {
        if (e.kind != DtmfEvent::Kind::kEnd) continue;
        got += e.digit;
        EXPECT_NEAR(e.duration_ms, tone_ms, 10) << rate << " Hz, digit " << e.digit;
      }
      EXPECT_EQ(got, digits) << rate << " Hz, " << tone_ms << " ms tones";
    }
  }
}

TEST(DtmfGenerator, MixAddsOverAudio) {
  auto g = DtmfGenerator::Create(8000);
  ASSERT_TRUE(g->Queue("9").ok());
  std::vector<int16_t> buf(1200, 100);
  EXPECT_EQ(g->Mix(absl::MakeSpan(buf)), 1200u);
  EXPECT_EQ(buf[900], 100);  // gap: audio untouched
  EXPECT_NE(buf[400], 100);
}

}  // namespace
}  // namespace audiosocket::dsp
