#include "lib/dsp/resampler.h"

#include <cmath>
#include <numbers>
#include <vector>

#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace audiosocket::dsp {
namespace {

std::vector<int16_t> Sine(int rate, double f, double amplitude, size_t n) {
  std::vector<int16_t> x(n);
  for (size_t i = 0; i < n; ++i) {
    x[i] = static_cast<int16_t>(
        std::lround(amplitude * std::sin(2 * std::numbers::pi * f * i / rate)));
  }
  return x;
}

// Streams `in` through a resampler in 20 ms chunks.
std::vector<int16_t> Stream(Resampler* r, const std::vector<int16_t>& in) {
  const size_t chunk = static_cast<size_t>(r->input_rate_hz() / 50);
  std::vector<int16_t> out, buf(r->MaxOutputSamples(chunk));
  for (size_t i = 0; i < in.size(); i += chunk) {
    const size_t n = std::min(chunk, in.size() - i);
    const size_t m = r->Process(absl::MakeConstSpan(in).subspan(i, n), absl::MakeSpan(buf));
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(m));
  }
  return out;
}

// Amplitude of frequency f in the second half of x (past the start-up delay).
double Amplitude(const std::vector<int16_t>& x, int rate, double f) {
  double c = 0, s = 0;
  const size_t start = x.size() / 2;
  double wsum = 0;
  for (size_t i = start; i < x.size(); ++i) {
    const double w = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * (i - start) / (x.size() - start));
    const double ph = 2 * std::numbers::pi * f * i / rate;
    c += w * x[i] * std::cos(ph);
    s += w * x[i] * std::sin(ph);
    wsum += w;
  }
  return 2 * std::hypot(c, s) / wsum;
}

double Db(double ratio) { return 20 * std::log10(std::max(ratio, 1e-9)); }

// Every pair of AudioSocket rates: a 1 kHz tone keeps its level and the
// output length follows the rate ratio.
TEST(Resampler, AllRatePairsKeepASpeechBandTone) {
  for (int in_rate : kAudioSocketRates) {
    for (int out_rate : kAudioSocketRates) {
      auto r = Resampler::Create(in_rate, out_rate);
      ASSERT_TRUE(r.ok()) << r.status();
      const auto in = Sine(in_rate, 1000, 10000, static_cast<size_t>(in_rate / 2));
      const auto out = Stream(&*r, in);
      EXPECT_NEAR(static_cast<double>(out.size()), in.size() * double(out_rate) / in_rate, 2)
          << in_rate << "->" << out_rate;
      EXPECT_NEAR(Db(Amplitude(out, out_rate, 1000) / 10000), 0, 0.1)
          << in_rate << "->" << out_rate;
    }
  }
}

// Passband flatness and stopband rejection on sweeps, 16 kHz -> 8 kHz
// (downsampling: tones above 4 kHz must vanish) and 8 kHz -> 16 kHz
// (upsampling: images above 4 kHz must vanish). Figures in docs/DSP.md.
TEST(Resampler, PassbandFlatAndStopbandRejected) {
  auto down = Resampler::Create(16000, 8000);
  ASSERT_TRUE(down.ok());
  double worst_pass = 0, worst_stop = -200;
  for (double f = 100; f <= 3400; f += 100) {
    down->Reset();
    const auto out = Stream(&*down, Sine(16000, f, 10000, 16000));
    worst_pass = std::max(worst_pass, std::abs(Db(Amplitude(out, 8000, f) / 10000)));
  }
  for (double f = 4600; f <= 7900; f += 100) {
    down->Reset();
    const auto out = Stream(&*down, Sine(16000, f, 10000, 16000));
    // Where the tone would alias to.
    worst_stop = std::max(worst_stop, Db(Amplitude(out, 8000, 8000 - f) / 10000));
  }
  std::printf("16k->8k: passband 100-3400 Hz within +-%.2f dB, stopband 4600-7900 Hz <= %.1f dB\n",
              worst_pass, worst_stop);
  EXPECT_LT(worst_pass, 0.5);
  EXPECT_LT(worst_stop, -60);

  auto up = Resampler::Create(8000, 16000);
  ASSERT_TRUE(up.ok());
  worst_pass = 0;
  worst_stop = -200;
  for (double f = 100; f <= 3400; f += 100) {
    up->Reset();
    const auto out = Stream(&*up, Sine(8000, f, 10000, 8000));
    worst_pass = std::max(worst_pass, std::abs(Db(Amplitude(out, 16000, f) / 10000)));
    worst_stop = std::max(worst_stop, Db(Amplitude(out, 16000, 8000 - f) / 10000));
  }
  std::printf("8k->16k: passband 100-3400 Hz within +-%.2f dB, images <= %.1f dB\n", worst_pass,
              worst_stop);
  EXPECT_LT(worst_pass, 0.5);
  EXPECT_LT(worst_stop, -60);
}

// 8k -> 16k -> 8k keeps a speech-band tone: level within 0.2 dB and the
// waveform (after the round trip's delay) within -40 dB error.
TEST(Resampler, RoundTripKeepsSpeechBandTone) {
  auto up = Resampler::Create(8000, 16000, {.quality = 7, .skip_initial_delay = true});
  auto down = Resampler::Create(16000, 8000, {.quality = 7, .skip_initial_delay = true});
  ASSERT_TRUE(up.ok() && down.ok());
  for (double f : {300.0, 1000.0, 2000.0, 3000.0}) {
    up->Reset();
    down->Reset();
    const auto in = Sine(8000, f, 10000, 8000);
    const auto out = Stream(&*down, Stream(&*up, in));
    ASSERT_GT(out.size(), 7000u);
    EXPECT_NEAR(Db(Amplitude(out, 8000, f) / 10000), 0, 0.2) << f;
    double err = 0, sig = 0;
    for (size_t i = 1000; i < out.size() - 200; ++i) {
      err += (out[i] - in[i]) * double(out[i] - in[i]);
      sig += in[i] * double(in[i]);
    }
    std::printf("8k->16k->8k %.0f Hz: error %.1f dB\n", f, 10 * std::log10(err / sig));
    EXPECT_LT(10 * std::log10(err / sig), -40) << f;
  }
}

// Chunk boundaries leave no trace: any chunking gives the same samples as
// one call.
TEST(Resampler, ChunkingDoesNotChangeOutput) {
  const auto in = Sine(8000, 440, 12000, 8000);
  auto whole = Resampler::Create(8000, 44100);
  ASSERT_TRUE(whole.ok());
  std::vector<int16_t> ref(whole->MaxOutputSamples(in.size()));
  ref.resize(whole->Process(in, absl::MakeSpan(ref)));
  for (size_t chunk : {1u, 13u, 160u, 999u}) {
    auto r = Resampler::Create(8000, 44100);
    std::vector<int16_t> out, buf(r->MaxOutputSamples(chunk));
    for (size_t i = 0; i < in.size(); i += chunk) {
      const size_t n = std::min(chunk, in.size() - i);
      const size_t m = r->Process(absl::MakeConstSpan(in).subspan(i, n), absl::MakeSpan(buf));
      out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(m));
    }
    ASSERT_EQ(out.size(), ref.size()) << chunk;
    int max_diff = 0;
    for (size_t i = 0; i < out.size(); ++i)
      max_diff = std::max(max_diff, std::abs(out[i] - ref[i]));
    EXPECT_LE(max_diff, 1) << "chunk " << chunk;
  }
}

TEST(Resampler, RejectsBadArguments) {
  EXPECT_EQ(Resampler::Create(0, 8000).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Resampler::Create(8000, 8000, {.quality = 11}).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto same = Resampler::Create(8000, 8000);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(same->LatencyOutputSamples(), 0);
}

}  // namespace
}  // namespace audiosocket::dsp
