// DTMF tone generator: phase-continuous dual tones with raised-cosine edges,
// sample-exact durations, at any sample rate AudioSocket carries.
//
// Each digit is tone_ms of the two tones (the raised-cosine ramps lie inside
// that length) followed by gap_ms of silence. The oscillators start each digit
// at phase 0 (the ramp starts at zero amplitude) and run continuously across
// Generate() calls, so chunk sizes never show in the output.
//
// Levels are per tone in dBm0, where a full-scale sine in 16-bit linear PCM is
// +3.14 dBm0 (ITU-T G.711). Twist is the high-group tone's level minus the
// low-group tone's level.
//
// Thread safety: not thread-safe; one object per call, used from one thread.
// Generate() and Mix() never allocate.
#ifndef AUDIOSOCKET_BRIDGE_LIB_DSP_DTMF_GENERATOR_H_
#define AUDIOSOCKET_BRIDGE_LIB_DSP_DTMF_GENERATOR_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace audiosocket::dsp {

// The DTMF keypad: digits 0-9, *, #, A-D. Returns false for any other
// character; lowercase a-d are accepted.
bool DtmfFrequencies(char digit, double* low_hz, double* high_hz);

// dBm0 of a full-scale sine in 16-bit linear PCM.
inline constexpr double kFullScaleSineDbm0 = 3.14;

// Peak amplitude (16-bit units) of a sine at `dbm0`.
double SineAmplitudeForDbm0(double dbm0);

class DtmfGenerator {
 public:
  struct Options {
    double level_dbm0 = -10.0;  // low-group tone; -40 .. +3 dBm0
    double twist_db = 0.0;      // high tone minus low tone, -10 .. +10 dB
    int tone_ms = 100;          // >= 40 ms
    int gap_ms = 50;            // silence after each digit, >= 30 ms
    double ramp_ms = 2.0;       // raised-cosine rise and fall inside the tone
  };

  // Errors (InvalidArgument, with the offending value and the allowed range):
  // sample rate outside 8000..192000 Hz, tone shorter than 40 ms, gap shorter
  // than 30 ms, level or twist out of range, ramps longer than a third of the
  // tone.
  static absl::StatusOr<DtmfGenerator> Create(int sample_rate_hz, Options options);
  static absl::StatusOr<DtmfGenerator> Create(int sample_rate_hz) {
    return Create(sample_rate_hz, Options());
  }

  // Appends digits to play after what is already queued. InvalidArgument names
  // the first character that is not a DTMF digit; nothing is queued then.
  absl::Status Queue(absl::string_view digits);

  // Writes out.size() samples: queued tones and gaps, then silence once the
  // queue is empty. Returns how many samples came from the queue.
  size_t Generate(absl::Span<int16_t> out);
  // Like Generate() but adds the tones to `inout` with saturation (for
  // in-band DTMF over other audio). Samples after the queue ends are untouched.
  size_t Mix(absl::Span<int16_t> inout);

  // True when nothing is queued or playing.
  bool Idle() const { return !playing_ && next_ == pending_.size(); }
  // Drops queued digits and the one playing (it stops abruptly).
  void Clear();

  int sample_rate_hz() const { return rate_; }
  // Exact lengths in samples: round(ms * rate / 1000).
  int64_t tone_samples() const { return tone_samples_; }
  int64_t gap_samples() const { return gap_samples_; }

 private:
  DtmfGenerator(int rate, const Options& options);
  template <bool kMix>
  size_t Run(absl::Span<int16_t> out);
  void StartDigit(char digit);

  int rate_;
  Options options_;
  int64_t tone_samples_;
  int64_t gap_samples_;
  int64_t ramp_samples_;
  double low_amplitude_;
  double high_amplitude_;

  std::string pending_;  // queued digits; pending_[next_] plays next
  size_t next_ = 0;
  int64_t position_ = 0;  // sample index within the current digit (0 = none playing)
  bool playing_ = false;
  // Phase accumulators in cycles, continuous across Generate() calls.
  double low_phase_ = 0, high_phase_ = 0;
  double low_step_ = 0, high_step_ = 0;
};

}  // namespace audiosocket::dsp

#endif  // AUDIOSOCKET_BRIDGE_LIB_DSP_DTMF_GENERATOR_H_
