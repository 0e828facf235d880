// CallerAudio: G.711 and signed linear decoding against lib/dsp, in-band
// DTMF detection with offsets at the call's rate, and where detection
// stops.

#include "server/media/caller_audio.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dsp/dtmf_generator.h"
#include "lib/dsp/g711.h"

namespace audiosocket {
namespace {

namespace v1 = bridge::v1;
using ::testing::IsEmpty;
using ::testing::SizeIs;

TEST(CallerAudioTest, SamplesInCountsBytesPerSampleOfTheEncoding) {
  EXPECT_EQ(CallerAudio(dsp::AudioEncoding::kSlin16).SamplesIn(320), 160u);
  EXPECT_EQ(CallerAudio(dsp::AudioEncoding::kUlaw).SamplesIn(160), 160u);
  EXPECT_EQ(CallerAudio(dsp::AudioEncoding::kAlaw).SamplesIn(160), 160u);
}

TEST(CallerAudioTest, DecodesUlawLikeLibDsp) {
  CallerAudio audio(dsp::AudioEncoding::kUlaw);
  std::vector<uint8_t> payload(256);
  for (int i = 0; i < 256; ++i) payload[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
  absl::Span<const int16_t> linear = audio.Decode(payload);
  ASSERT_THAT(linear, SizeIs(256));
  for (int i = 0; i < 256; ++i) {
    EXPECT_EQ(linear[static_cast<size_t>(i)], dsp::UlawToLinear(static_cast<uint8_t>(i))) << i;
  }
}

TEST(CallerAudioTest, DecodesAlawLikeLibDsp) {
  CallerAudio audio(dsp::AudioEncoding::kAlaw);
  std::vector<uint8_t> payload(256);
  for (int i = 0; i < 256; ++i) payload[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
  absl::Span<const int16_t> linear = audio.Decode(payload);
  ASSERT_THAT(linear, SizeIs(256));
  for (int i = 0; i < 256; ++i) {
    EXPECT_EQ(linear[static_cast<size_t>(i)], dsp::AlawToLinear(static_cast<uint8_t>(i))) << i;
  }
  // Not μ-law by mistake: the two tables differ.
  EXPECT_NE(linear[0], dsp::UlawToLinear(0));
}

TEST(CallerAudioTest, DecodesSignedLinearLittleEndian) {
  CallerAudio audio(dsp::AudioEncoding::kSlin16);
  const std::vector<uint8_t> payload = {0x01, 0x00, 0xff, 0xff, 0x34, 0x12, 0x00, 0x80};
  absl::Span<const int16_t> linear = audio.Decode(payload);
  EXPECT_EQ(std::vector<int16_t>(linear.begin(), linear.end()),
            (std::vector<int16_t>{1, -1, 0x1234, -32768}));
}

TEST(CallerAudioTest, EachDecodeReplacesTheLast) {
  CallerAudio audio(dsp::AudioEncoding::kUlaw);
  EXPECT_THAT(audio.Decode(std::vector<uint8_t>(160, 0x00)), SizeIs(160));
  absl::Span<const int16_t> linear = audio.Decode(std::vector<uint8_t>(80, 0xff));
  ASSERT_THAT(linear, SizeIs(80));
  EXPECT_EQ(linear[0], dsp::UlawToLinear(0xff));
}

// `silence_ms` of silence, then `digit` for `tone_ms` and the generator's
// gap, then silence to `total_ms`.
std::vector<int16_t> Signal(int rate, char digit, int silence_ms, int tone_ms, int total_ms) {
  std::vector<int16_t> pcm(static_cast<size_t>(rate) * static_cast<size_t>(total_ms) / 1000);
  dsp::DtmfGenerator::Options options;
  options.tone_ms = tone_ms;
  absl::StatusOr<dsp::DtmfGenerator> generator = dsp::DtmfGenerator::Create(rate, options);
  EXPECT_TRUE(generator.ok());
  EXPECT_TRUE(generator->Queue(std::string(1, digit)).ok());
  const size_t start = static_cast<size_t>(rate) * static_cast<size_t>(silence_ms) / 1000;
  generator->Generate(absl::MakeSpan(pcm).subspan(start));
  return pcm;
}

// Runs `pcm` through DetectDtmf in 20 ms chunks, the first at `first_offset`.
std::vector<v1::CallEvent> Detect(CallerAudio& audio, const std::vector<int16_t>& pcm, int rate,
                                  uint64_t first_offset) {
  std::vector<v1::CallEvent> events;
  const size_t chunk = static_cast<size_t>(rate) / 50;
  for (size_t at = 0; at < pcm.size(); at += chunk) {
    const size_t n = std::min(chunk, pcm.size() - at);
    audio.DetectDtmf(absl::MakeConstSpan(pcm).subspan(at, n), rate, first_offset + at, &events);
  }
  return events;
}

class CallerAudioDtmfTest : public ::testing::TestWithParam<int> {};

TEST_P(CallerAudioDtmfTest, ADigitGivesBeginAndEndWithOffsetsAtTheCallsRate) {
  const int rate = GetParam();
  CallerAudio audio(dsp::AudioEncoding::kSlin16);
  // The call's audio started before this listener's first chunk: offsets
  // count from the call's offset of that chunk.
  const uint64_t first_offset = static_cast<uint64_t>(rate);  // 1 s in
  const std::vector<int16_t> pcm = Signal(rate, '5', 200, 120, 600);
  const std::vector<v1::CallEvent> events = Detect(audio, pcm, rate, first_offset);
  ASSERT_THAT(events, SizeIs(2));
  const int64_t per_ms = rate / 1000;
  const int64_t tone_start = static_cast<int64_t>(first_offset) + 200 * per_ms;
  const int64_t tone_end = tone_start + 120 * per_ms;

  const v1::DtmfEvent& begin = events[0].dtmf();
  EXPECT_EQ(begin.digit(), "5");
  EXPECT_EQ(begin.phase(), v1::DTMF_PHASE_BEGIN);
  EXPECT_EQ(begin.source(), v1::DTMF_SOURCE_INBAND);
  EXPECT_EQ(begin.duration_ms(), 0u);
  EXPECT_LE(std::llabs(static_cast<int64_t>(begin.offset_samples()) - tone_start), 5 * per_ms)
      << begin.offset_samples() << " vs " << tone_start;

  const v1::DtmfEvent& end = events[1].dtmf();
  EXPECT_EQ(end.digit(), "5");
  EXPECT_EQ(end.phase(), v1::DTMF_PHASE_END);
  EXPECT_EQ(end.source(), v1::DTMF_SOURCE_INBAND);
  EXPECT_NEAR(end.duration_ms(), 120, 10);
  EXPECT_LE(std::llabs(static_cast<int64_t>(end.offset_samples()) - tone_end), 10 * per_ms)
      << end.offset_samples() << " vs " << tone_end;
  EXPECT_TRUE(audio.detection_available());
}

INSTANTIATE_TEST_SUITE_P(Rates, CallerAudioDtmfTest, ::testing::Values(8000, 16000));

TEST(CallerAudioTest, DetectsADigitInDecodedUlaw) {
  const std::vector<int16_t> linear = Signal(8000, '#', 100, 100, 400);
  std::vector<uint8_t> ulaw(linear.size());
  dsp::LinearToUlaw(linear, absl::MakeSpan(ulaw));
  CallerAudio audio(dsp::AudioEncoding::kUlaw);
  std::vector<v1::CallEvent> events;
  for (size_t at = 0; at < ulaw.size(); at += 160) {
    absl::Span<const int16_t> pcm = audio.Decode(absl::MakeConstSpan(ulaw).subspan(at, 160));
    audio.DetectDtmf(pcm, 8000, at, &events);
  }
  ASSERT_THAT(events, SizeIs(2));
  EXPECT_EQ(events[0].dtmf().digit(), "#");
  EXPECT_EQ(events[0].dtmf().phase(), v1::DTMF_PHASE_BEGIN);
  EXPECT_EQ(events[1].dtmf().phase(), v1::DTMF_PHASE_END);
}

TEST(CallerAudioTest, SilenceGivesNoEvents) {
  CallerAudio audio(dsp::AudioEncoding::kSlin16);
  EXPECT_THAT(Detect(audio, std::vector<int16_t>(8000, 0), 8000, 0), IsEmpty());
}

TEST(CallerAudioTest, DetectionIsUnavailableAbove48kHz) {
  CallerAudio audio(dsp::AudioEncoding::kSlin16);
  EXPECT_TRUE(audio.detection_available());  // not known before the first audio
  const std::vector<int16_t> pcm = Signal(96000, '1', 50, 100, 300);
  EXPECT_THAT(Detect(audio, pcm, 96000, 0), IsEmpty());
  EXPECT_FALSE(audio.detection_available());
}

TEST(CallerAudioTest, DetectionIsAvailableAt48kHz) {
  CallerAudio audio(dsp::AudioEncoding::kSlin16);
  std::vector<v1::CallEvent> events;
  audio.DetectDtmf(std::vector<int16_t>(960, 0), 48000, 0, &events);
  EXPECT_TRUE(audio.detection_available());
}

TEST(CallerAudioTest, StopDetectingStopsForGood) {
  CallerAudio audio(dsp::AudioEncoding::kSlin16);
  // The detector has started (silence), then detection stops.
  EXPECT_THAT(Detect(audio, std::vector<int16_t>(1600, 0), 8000, 0), IsEmpty());
  audio.StopDetecting();
  EXPECT_THAT(Detect(audio, Signal(8000, '9', 100, 150, 500), 8000, 1600), IsEmpty());
}

TEST(CallerAudioTest, StopDetectingMidDigitGivesNoEnd) {
  CallerAudio audio(dsp::AudioEncoding::kSlin16);
  const std::vector<int16_t> pcm = Signal(8000, '3', 100, 200, 600);
  std::vector<v1::CallEvent> events;
  // Up to 200 ms: the digit has begun (at 100 ms) and is still sounding.
  const size_t cut = 1600;
  for (size_t at = 0; at < cut; at += 160) {
    audio.DetectDtmf(absl::MakeConstSpan(pcm).subspan(at, 160), 8000, at, &events);
  }
  ASSERT_THAT(events, SizeIs(1));
  EXPECT_EQ(events[0].dtmf().phase(), v1::DTMF_PHASE_BEGIN);
  audio.StopDetecting();
  for (size_t at = cut; at < pcm.size(); at += 160) {
    audio.DetectDtmf(absl::MakeConstSpan(pcm).subspan(at, 160), 8000, at, &events);
  }
  EXPECT_THAT(events, SizeIs(1));
}

TEST(CallerAudioTest, DtmfCallEventCarriesEveryField) {
  const v1::CallEvent event =
      DtmfCallEvent('A', v1::DTMF_PHASE_END, 80, v1::DTMF_SOURCE_SIGNALLED, 12345);
  ASSERT_TRUE(event.has_dtmf());
  EXPECT_EQ(event.dtmf().digit(), "A");
  EXPECT_EQ(event.dtmf().phase(), v1::DTMF_PHASE_END);
  EXPECT_EQ(event.dtmf().duration_ms(), 80u);
  EXPECT_EQ(event.dtmf().source(), v1::DTMF_SOURCE_SIGNALLED);
  EXPECT_EQ(event.dtmf().offset_samples(), 12345u);
}

}  // namespace
}  // namespace audiosocket
