// FallbackAudio: rendered once at every AudioSocket rate, with the length
// of the original at each.

#include "server/playout/fallback_audio.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket {
namespace {

using ::testing::IsEmpty;

constexpr int kRates[] = {8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000};

std::vector<int16_t> Tone(int rate, int ms) {
  std::vector<int16_t> pcm(static_cast<size_t>(rate) * static_cast<size_t>(ms) / 1000);
  for (size_t i = 0; i < pcm.size(); ++i) {
    pcm[i] =
        static_cast<int16_t>(6000 * std::sin(2 * M_PI * 300.0 * static_cast<double>(i) / rate));
  }
  return pcm;
}

double Rms(const std::vector<int16_t>& pcm, size_t from, size_t to) {
  double sum = 0;
  for (size_t i = from; i < to; ++i) sum += static_cast<double>(pcm[i]) * pcm[i];
  return std::sqrt(sum / static_cast<double>(to - from));
}

TEST(FallbackAudioTest, DefaultIsEmpty) {
  FallbackAudio audio;
  EXPECT_TRUE(audio.empty());
  EXPECT_THAT(audio.At(8000), IsEmpty());
}

TEST(FallbackAudioTest, NoSamplesRenderNothing) {
  absl::StatusOr<FallbackAudio> audio = FallbackAudio::Render({}, 8000);
  ASSERT_TRUE(audio.ok());
  EXPECT_TRUE(audio->empty());
}

class FallbackAudioRateTest : public ::testing::TestWithParam<int> {};

TEST_P(FallbackAudioRateTest, RenderedAtEveryRateWithTheSameDuration) {
  const int source_rate = GetParam();
  const std::vector<int16_t> source = Tone(source_rate, 500);
  absl::StatusOr<FallbackAudio> audio = FallbackAudio::Render(source, source_rate);
  ASSERT_TRUE(audio.ok()) << audio.status();
  EXPECT_FALSE(audio->empty());
  for (int rate : kRates) {
    const std::vector<int16_t>& at = audio->At(rate);
    if (rate == source_rate) {
      EXPECT_EQ(at, source);  // as it came
      continue;
    }
    // 500 ms at `rate`: never more, and less by at most the resampler's
    // filter delay (a few ms).
    const int64_t expected = rate / 2;
    EXPECT_LE(static_cast<int64_t>(at.size()), expected) << rate;
    EXPECT_GE(static_cast<int64_t>(at.size()), expected - rate / 1000 * 3) << rate;
    // The tone is there, at about its level, in the middle.
    EXPECT_NEAR(Rms(at, at.size() / 4, at.size() * 3 / 4), 6000 / std::sqrt(2.0), 400) << rate;
  }
}

INSTANTIATE_TEST_SUITE_P(SourceRates, FallbackAudioRateTest, ::testing::Values(8000, 16000, 22050));

TEST(FallbackAudioTest, AnUnknownRateIsEmpty) {
  absl::StatusOr<FallbackAudio> audio = FallbackAudio::Render(Tone(8000, 100), 8000);
  ASSERT_TRUE(audio.ok());
  EXPECT_THAT(audio->At(11025), IsEmpty());
  EXPECT_THAT(audio->At(0), IsEmpty());
  EXPECT_FALSE(audio->At(8000).empty());
}

TEST(FallbackAudioTest, ASourceRateTheResamplerCannotTakeIsAnError) {
  absl::StatusOr<FallbackAudio> audio = FallbackAudio::Render(Tone(8000, 100), 500);
  EXPECT_FALSE(audio.ok());
  EXPECT_EQ(audio.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace audiosocket
