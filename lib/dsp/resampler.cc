#include "lib/dsp/resampler.h"

#include <speex/speex_resampler.h>

#include <algorithm>
#include <cassert>
#include <utility>

#include "absl/strings/str_cat.h"

namespace audiosocket::dsp {

struct Resampler::State {
  SpeexResamplerState* speex = nullptr;
  Options options;
  ~State() {
    if (speex != nullptr) speex_resampler_destroy(speex);
  }
};

absl::StatusOr<Resampler> Resampler::Create(int input_rate_hz, int output_rate_hz,
                                            Options options) {
  for (int rate : {input_rate_hz, output_rate_hz}) {
    if (rate < 1000 || rate > 384000) {
      return absl::InvalidArgumentError(
          absl::StrCat("resampler: sample rate ", rate, " Hz is out of range 1000..384000 Hz"));
    }
  }
  if (options.quality < SPEEX_RESAMPLER_QUALITY_MIN ||
      options.quality > SPEEX_RESAMPLER_QUALITY_MAX) {
    return absl::InvalidArgumentError(
        absl::StrCat("resampler: quality ", options.quality, " is out of range 0..10"));
  }
  if (input_rate_hz == output_rate_hz) return Resampler(input_rate_hz, output_rate_hz, nullptr);
  int err = RESAMPLER_ERR_SUCCESS;
  SpeexResamplerState* speex =
      speex_resampler_init(1, static_cast<spx_uint32_t>(input_rate_hz),
                           static_cast<spx_uint32_t>(output_rate_hz), options.quality, &err);
  if (speex == nullptr || err != RESAMPLER_ERR_SUCCESS) {
    if (speex != nullptr) speex_resampler_destroy(speex);
    return absl::InternalError(absl::StrCat("resampler: libspeexdsp refused ", input_rate_hz,
                                            " -> ", output_rate_hz,
                                            " Hz: ", speex_resampler_strerror(err)));
  }
  auto state = std::make_unique<State>();
  state->speex = speex;
  state->options = options;
  if (options.skip_initial_delay) speex_resampler_skip_zeros(speex);
  return Resampler(input_rate_hz, output_rate_hz, std::move(state));
}

Resampler::Resampler(int input_rate, int output_rate, std::unique_ptr<State> state)
    : input_rate_(input_rate), output_rate_(output_rate), state_(std::move(state)) {}
Resampler::Resampler(Resampler&&) noexcept = default;
Resampler& Resampler::operator=(Resampler&&) noexcept = default;
Resampler::~Resampler() = default;

size_t Resampler::MaxOutputSamples(size_t input_samples) const {
  // ceil(n * out / in) plus one for the fractional phase carried over.
  const auto in = static_cast<uint64_t>(input_rate_);
  const auto out = static_cast<uint64_t>(output_rate_);
  return static_cast<size_t>((input_samples * out + in - 1) / in + 1);
}

size_t Resampler::Process(absl::Span<const int16_t> in, absl::Span<int16_t> out) {
  if (state_ == nullptr) {
    assert(out.size() >= in.size());
    std::copy(in.begin(), in.end(), out.begin());
    return in.size();
  }
  size_t consumed = 0;
  size_t produced = 0;
  // libspeexdsp consumes everything when the output has room; the loop only
  // guards against a short output buffer handed to it in pieces.
  while (consumed < in.size() && produced < out.size()) {
    auto in_len = static_cast<spx_uint32_t>(in.size() - consumed);
    auto out_len = static_cast<spx_uint32_t>(out.size() - produced);
    speex_resampler_process_int(state_->speex, 0, in.data() + consumed, &in_len,
                                out.data() + produced, &out_len);
    consumed += in_len;
    produced += out_len;
    if (in_len == 0 && out_len == 0) break;
  }
  assert(consumed == in.size() && "Process: output buffer smaller than MaxOutputSamples()");
  return produced;
}

int Resampler::LatencyOutputSamples() const {
  if (state_ == nullptr) return 0;
  return speex_resampler_get_output_latency(state_->speex);
}

void Resampler::Reset() {
  if (state_ == nullptr) return;
  speex_resampler_reset_mem(state_->speex);
  if (state_->options.skip_initial_delay) speex_resampler_skip_zeros(state_->speex);
}

}  // namespace audiosocket::dsp
