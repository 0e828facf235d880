#include "server/playout/fallback_audio.h"

#include "lib/dsp/resampler.h"

namespace audiosocket {

absl::StatusOr<FallbackAudio> FallbackAudio::Render(const std::vector<int16_t>& samples,
                                                    int sample_rate_hz) {
  FallbackAudio audio;
  if (samples.empty()) return audio;
  // Every rate an AudioSocket audio kind carries (0x10-0x18).
  for (int rate : {8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000}) {
    std::vector<int16_t>& out = audio.by_rate_[rate];
    if (rate == sample_rate_hz) {
      out = samples;
      continue;
    }
    absl::StatusOr<dsp::Resampler> resampler = dsp::Resampler::Create(sample_rate_hz, rate);
    if (!resampler.ok()) return resampler.status();
    out.resize(resampler->MaxOutputSamples(samples.size()));
    out.resize(resampler->Process(samples, absl::MakeSpan(out)));
  }
  return audio;
}

const std::vector<int16_t>& FallbackAudio::At(int rate_hz) const {
  static const std::vector<int16_t>* const kNone = new std::vector<int16_t>();
  auto it = by_rate_.find(rate_hz);
  return it == by_rate_.end() ? *kNone : it->second;
}

}  // namespace audiosocket
