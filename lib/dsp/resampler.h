// Streaming sample-rate conversion of 16-bit mono PCM, one object per call
// and direction, built on libspeexdsp's resampler (docs/DSP.md says why).
//
// Thread safety: a Resampler is not thread-safe; use each object from one
// thread at a time (a call's own event loop). Different objects are
// independent.
#ifndef AUDIOSOCKET_BRIDGE_LIB_DSP_RESAMPLER_H_
#define AUDIOSOCKET_BRIDGE_LIB_DSP_RESAMPLER_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace audiosocket::dsp {

// The nine sample rates AudioSocket's 0x10-0x18 audio kinds carry.
inline constexpr int kAudioSocketRates[] = {8000,  12000, 16000, 24000, 32000,
                                            44100, 48000, 96000, 192000};

class Resampler {
 public:
  struct Options {
    // libspeexdsp quality 0..10. 7 gives > 70 dB stopband rejection and a flat
    // passband to 0.85 of the lower Nyquist frequency (docs/DSP.md has the
    // measured figures) at a few µs per 20 ms frame.
    int quality = 7;
    // Drops the filter's start-up delay so output sample 0 lines up with
    // input sample 0 (the first output chunk is shorter by
    // LatencyOutputSamples()). Off by default: constant delay, constant
    // chunk sizes.
    bool skip_initial_delay = false;
  };

  // Rates from 1000 to 384000 Hz. Equal rates give a pass-through object.
  // Errors: InvalidArgument for a rate or quality out of range.
  static absl::StatusOr<Resampler> Create(int input_rate_hz, int output_rate_hz, Options options);
  static absl::StatusOr<Resampler> Create(int input_rate_hz, int output_rate_hz) {
    return Create(input_rate_hz, output_rate_hz, Options());
  }

  Resampler(Resampler&&) noexcept;
  Resampler& operator=(Resampler&&) noexcept;
  ~Resampler();

  int input_rate_hz() const { return input_rate_; }
  int output_rate_hz() const { return output_rate_; }

  // Upper bound on the output of Process() for `input_samples` input samples.
  size_t MaxOutputSamples(size_t input_samples) const;

  // Converts all of `in`, carrying filter state across calls, and writes the
  // output to the front of `out`; returns the number of samples written. `out`
  // must hold MaxOutputSamples(in.size()). Chunks of any size give the same
  // output as one call over the concatenation. No allocation.
  size_t Process(absl::Span<const int16_t> in, absl::Span<int16_t> out);

  // The filter's group delay in output samples (0 for pass-through).
  int LatencyOutputSamples() const;

  // Forgets the stream: the next Process() starts as on a new object.
  void Reset();

 private:
  struct State;
  Resampler(int input_rate, int output_rate, std::unique_ptr<State> state);

  int input_rate_;
  int output_rate_;
  std::unique_ptr<State> state_;  // null for pass-through
};

}  // namespace audiosocket::dsp

#endif  // AUDIOSOCKET_BRIDGE_LIB_DSP_RESAMPLER_H_
