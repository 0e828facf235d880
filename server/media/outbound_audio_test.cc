// OutboundConverter (backend audio to the playout rate) and
// InbandToneRenderer (DTMF tones that lib/dsp's detector recognizes).

#include "server/media/outbound_audio.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dsp/dtmf_detector.h"
#include "lib/dsp/resampler.h"
#include "server/playout/playout_queue.h"

namespace audiosocket {
namespace {

using ::testing::Each;
using ::testing::HasSubstr;
using ::testing::SizeIs;

std::vector<int16_t> Tone(size_t samples, int rate, double hz) {
  std::vector<int16_t> pcm(samples);
  for (size_t i = 0; i < samples; ++i) {
    pcm[i] = static_cast<int16_t>(8000 * std::sin(2 * M_PI * hz * static_cast<double>(i) / rate));
  }
  return pcm;
}

double Rms(absl::Span<const int16_t> pcm) {
  double sum = 0;
  for (int16_t s : pcm) sum += static_cast<double>(s) * s;
  return pcm.empty() ? 0 : std::sqrt(sum / static_cast<double>(pcm.size()));
}

TEST(OutboundConverterTest, PrepareAcceptsEveryAudioSocketRate) {
  OutboundConverter converter(8000);
  EXPECT_EQ(converter.output_rate_hz(), 8000);
  for (int rate : dsp::kAudioSocketRates) {
    EXPECT_TRUE(converter.Prepare(rate).ok()) << rate;
    EXPECT_TRUE(converter.Prepare(rate).ok()) << rate;  // again: cheap and still fine
  }
}

TEST(OutboundConverterTest, PrepareRefusesAnUnsupportedRateNamingIt) {
  OutboundConverter converter(8000);
  const absl::Status status = converter.Prepare(500);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("500"));
}

TEST(OutboundConverterTest, ConvertMatchesLibDspsResamplerAndAppends) {
  OutboundConverter converter(8000);
  ASSERT_TRUE(converter.Prepare(16000).ok());
  absl::StatusOr<dsp::Resampler> reference = dsp::Resampler::Create(16000, 8000);
  ASSERT_TRUE(reference.ok());
  const std::vector<int16_t> input = Tone(3200, 16000, 440);
  std::vector<int16_t> expected(reference->MaxOutputSamples(input.size()));
  expected.resize(reference->Process(input, absl::MakeSpan(expected)));

  std::vector<int16_t> out = {7, 7};  // appended after what is there
  converter.Convert(16000, input, &out);
  ASSERT_THAT(out, SizeIs(2 + expected.size()));
  EXPECT_EQ(out[0], 7);
  EXPECT_EQ(out[1], 7);
  EXPECT_EQ(std::vector<int16_t>(out.begin() + 2, out.end()), expected);
  // 0.2 s at 16 kHz is about 0.2 s at 8 kHz, and the tone is still there.
  EXPECT_NEAR(static_cast<double>(expected.size()), 1600.0, 40.0);
  EXPECT_GT(Rms(absl::MakeConstSpan(out).subspan(800)), 8000 / std::sqrt(2.0) * 0.9);
}

TEST(OutboundConverterTest, ConvertingInSlicesEqualsConvertingWhole) {
  const std::vector<int16_t> input = Tone(4410, 44100, 1000);
  OutboundConverter whole(8000);
  OutboundConverter sliced(8000);
  ASSERT_TRUE(whole.Prepare(44100).ok());
  ASSERT_TRUE(sliced.Prepare(44100).ok());
  std::vector<int16_t> a;
  whole.Convert(44100, input, &a);
  std::vector<int16_t> b;
  for (size_t at = 0; at < input.size(); at += 441) {
    sliced.Convert(44100, absl::MakeConstSpan(input).subspan(at, 441), &b);
  }
  EXPECT_EQ(a, b);
}

TEST(OutboundConverterTest, EachInputRateHasItsOwnFilterState) {
  // Interleaving two input rates gives what each would give alone.
  const std::vector<int16_t> at16 = Tone(320, 16000, 500);
  const std::vector<int16_t> at24 = Tone(480, 24000, 700);
  OutboundConverter mixed(8000);
  OutboundConverter only16(8000);
  ASSERT_TRUE(mixed.Prepare(16000).ok());
  ASSERT_TRUE(mixed.Prepare(24000).ok());
  ASSERT_TRUE(only16.Prepare(16000).ok());
  std::vector<int16_t> mixed16;
  std::vector<int16_t> alone16;
  std::vector<int16_t> scratch;
  for (int i = 0; i < 5; ++i) {
    mixed.Convert(16000, at16, &mixed16);
    mixed.Convert(24000, at24, &scratch);
    only16.Convert(16000, at16, &alone16);
  }
  EXPECT_EQ(mixed16, alone16);
}

TEST(OutboundConverterTest, AnUnpreparedRateGivesSilenceOfTheConvertedLength) {
  OutboundConverter converter(8000);
  std::vector<int16_t> out;
  converter.Convert(16000, Tone(320, 16000, 440), &out);
  EXPECT_THAT(out, SizeIs(160));
  EXPECT_THAT(out, Each(0));
}

// Renders `digit` the way the playout queue does: a frame at a time, with
// each frame's offset within the tone, then silence.
std::vector<int16_t> RenderDigit(InbandToneRenderer& renderer, char digit, int rate, int tone_ms,
                                 int total_ms) {
  const size_t frame = static_cast<size_t>(rate) / 50;
  const uint64_t tone_samples = static_cast<uint64_t>(rate) * static_cast<uint64_t>(tone_ms) / 1000;
  std::vector<int16_t> out(static_cast<size_t>(rate) * static_cast<size_t>(total_ms) / 1000);
  for (uint64_t at = 0; at < tone_samples; at += frame) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(frame, tone_samples - at));
    renderer.Render(digit, at, tone_samples, absl::MakeSpan(out).subspan(at, n));
  }
  return out;
}

std::vector<dsp::DtmfEvent> DetectAll(int rate, const std::vector<int16_t>& pcm) {
  absl::StatusOr<dsp::DtmfDetector> detector = dsp::DtmfDetector::Create(rate);
  EXPECT_TRUE(detector.ok());
  std::vector<dsp::DtmfEvent> events;
  const size_t frame = static_cast<size_t>(rate) / 50;
  for (size_t at = 0; at < pcm.size(); at += frame) {
    detector->Process(absl::MakeConstSpan(pcm).subspan(at, std::min(frame, pcm.size() - at)),
                      &events);
  }
  detector->Flush(&events);
  return events;
}

class InbandToneRendererTest : public ::testing::TestWithParam<int> {};

TEST_P(InbandToneRendererTest, RendersToneTheDetectorRecognizes) {
  const int rate = GetParam();
  InbandToneRenderer renderer(rate);
  const std::string digits = "1#9D";
  std::vector<int16_t> pcm;
  for (char digit : digits) {
    const std::vector<int16_t> rendered = RenderDigit(renderer, digit, rate, 100, 200);
    pcm.insert(pcm.end(), rendered.begin(), rendered.end());
  }
  std::vector<dsp::DtmfEvent> events = DetectAll(rate, pcm);
  std::string heard;
  for (const dsp::DtmfEvent& e : events) {
    if (e.kind != dsp::DtmfEvent::Kind::kEnd) continue;
    heard += e.digit;
    EXPECT_NEAR(e.duration_ms, 100, 10) << e.digit;
  }
  EXPECT_EQ(heard, digits);
}

INSTANTIATE_TEST_SUITE_P(Rates, InbandToneRendererTest, ::testing::Values(8000, 16000));

TEST(InbandToneRendererTest, TheToneLastsTheRequestedSamplesAndNoMore) {
  InbandToneRenderer renderer(8000);
  const std::vector<int16_t> pcm = RenderDigit(renderer, '5', 8000, 120, 300);
  // Something sounds in the first and last 20 ms of the tone; after it, silence.
  EXPECT_GT(Rms(absl::MakeConstSpan(pcm).subspan(0, 160)), 100);
  EXPECT_GT(Rms(absl::MakeConstSpan(pcm).subspan(800, 160)), 100);
  EXPECT_THAT(std::vector<int16_t>(pcm.begin() + 960, pcm.end()), Each(0));
}

TEST(InbandToneRendererTest, ANonDigitRendersSilence) {
  InbandToneRenderer renderer(8000);
  std::vector<int16_t> out(160, 99);
  renderer.Render('x', 0, 800, absl::MakeSpan(out));
  EXPECT_THAT(out, Each(0));
}

TEST(InbandToneRendererTest, IsAToneRendererForThePlayoutQueue) {
  // Through the queue, as the playout drives it in the asterisk dialect.
  InbandToneRenderer renderer(8000);
  PlayoutConfig config;
  PlayoutQueue queue(config);
  queue.set_tone_renderer(&renderer);
  ASSERT_TRUE(queue.EnqueueDtmf("42", 100, 60, "cmd", /*inband=*/true).ok());
  std::vector<int16_t> pcm;
  std::vector<int16_t> frame(static_cast<size_t>(queue.samples_per_frame()));
  for (int i = 0; i < 25; ++i) {
    queue.Tick(absl::MakeSpan(frame));
    pcm.insert(pcm.end(), frame.begin(), frame.end());
  }
  std::string heard;
  for (const dsp::DtmfEvent& e : DetectAll(8000, pcm)) {
    if (e.kind == dsp::DtmfEvent::Kind::kBegin) heard += e.digit;
  }
  EXPECT_EQ(heard, "42");
}

}  // namespace
}  // namespace audiosocket
