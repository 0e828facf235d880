#include "server/media/outbound_audio.h"

#include <algorithm>
#include <utility>

namespace audiosocket {

void InbandToneRenderer::Render(char digit, uint64_t offset, uint64_t tone_samples,
                                absl::Span<int16_t> out) {
  if (offset == 0 || !generator_.has_value()) {
    dsp::DtmfGenerator::Options options;
    options.tone_ms = static_cast<int>(tone_samples * 1000 / static_cast<uint64_t>(rate_));
    auto generator = dsp::DtmfGenerator::Create(rate_, options);
    if (!generator.ok() || !generator->Queue(absl::string_view(&digit, 1)).ok()) {
      std::fill(out.begin(), out.end(), 0);
      return;
    }
    generator_.emplace(std::move(*generator));
  }
  generator_->Generate(out);
}

absl::Status OutboundConverter::Prepare(int input_rate_hz) {
  if (input_rate_hz == output_rate_ || resamplers_.contains(input_rate_hz)) {
    return absl::OkStatus();
  }
  absl::StatusOr<dsp::Resampler> resampler = dsp::Resampler::Create(input_rate_hz, output_rate_);
  if (!resampler.ok()) return resampler.status();
  resamplers_.emplace(input_rate_hz, std::move(*resampler));
  return absl::OkStatus();
}

void OutboundConverter::Convert(int input_rate_hz, absl::Span<const int16_t> in,
                                std::vector<int16_t>* out) {
  auto it = resamplers_.find(input_rate_hz);
  const size_t at = out->size();
  if (it == resamplers_.end()) {
    // Prepare() ran before the audio was queued; a rate change of the
    // playout since replaced this object, and the queue with it.
    out->resize(at +
                in.size() * static_cast<size_t>(output_rate_) / static_cast<size_t>(input_rate_hz));
    return;
  }
  out->resize(at + it->second.MaxOutputSamples(in.size()));
  const size_t produced = it->second.Process(in, absl::MakeSpan(*out).subspan(at));
  out->resize(at + produced);
}

}  // namespace audiosocket
