#ifndef AUDIOSOCKET_BRIDGE_SERVER_MEDIA_OUTBOUND_AUDIO_H_
#define AUDIOSOCKET_BRIDGE_SERVER_MEDIA_OUTBOUND_AUDIO_H_

// The outbound media pipeline's two stages that the playout queue drives as
// it reaches the audio: rate conversion of backend audio to the playout
// rate, and in-band DTMF tones toward a caller whose dialect cannot signal
// digits.
//
// Threads: owned by one call on its loop, like the queue they serve.

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"
#include "lib/dsp/dtmf_generator.h"
#include "lib/dsp/resampler.h"
#include "server/playout/playout_queue.h"

namespace audiosocket {

// Renders each digit's tone with lib/dsp's generator.
class InbandToneRenderer final : public ToneRenderer {
 public:
  explicit InbandToneRenderer(int sample_rate_hz) : rate_(sample_rate_hz) {}
  void Render(char digit, uint64_t offset, uint64_t tone_samples, absl::Span<int16_t> out) override;

 private:
  const int rate_;
  std::optional<dsp::DtmfGenerator> generator_;
};

// One streaming resampler per input rate.
class OutboundConverter final : public RateConverter {
 public:
  explicit OutboundConverter(int output_rate_hz) : output_rate_(output_rate_hz) {}
  int output_rate_hz() const { return output_rate_; }
  // Makes sure audio at `input_rate_hz` can be converted (INVALID_ARGUMENT
  // naming the rate otherwise). Cheap after the first call for a rate.
  absl::Status Prepare(int input_rate_hz);
  void Convert(int input_rate_hz, absl::Span<const int16_t> in, std::vector<int16_t>* out) override;

 private:
  const int output_rate_;
  absl::flat_hash_map<int, dsp::Resampler> resamplers_;  // by input rate
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_MEDIA_OUTBOUND_AUDIO_H_
