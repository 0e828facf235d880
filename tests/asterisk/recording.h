#ifndef AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_RECORDING_H_
#define AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_RECORDING_H_

// What a caller heard, measured: tone runs found block by block (20 ms)
// with a Goertzel filter, and DTMF digits found by lib/dsp's detector. Used
// on Asterisk's recordings of the caller's leg and on audio a backend got.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "lib/audio/wav.h"

namespace audiosocket::testing {

// `ms` of a sine at `frequency_hz`, amplitude `amplitude` (of 32767).
std::vector<int16_t> Sine(double frequency_hz, int ms, int sample_rate_hz, int amplitude = 8000);

// Share of a block's energy that lies at `frequency_hz` (0..1); 0 for silence.
double ToneShare(absl::Span<const int16_t> block, double frequency_hz, int sample_rate_hz);

// The 20 ms blocks of `samples` in which `frequency_hz` dominates (share at
// least `min_share`, level above silence).
struct ToneRun {
  int first_block = -1;  // -1: the tone was never found
  int last_block = -1;
  int blocks_with_tone = 0;
  // Blocks between first and last without the tone: gaps the caller heard.
  int gap_blocks = 0;
  int duration_ms() const { return first_block < 0 ? 0 : (last_block - first_block + 1) * 20; }
};
ToneRun FindTone(absl::Span<const int16_t> samples, int sample_rate_hz, double frequency_hz,
                 double min_share = 0.6);

// The digits lib/dsp's detector hears in `samples`, in order.
std::string DetectDigits(absl::Span<const int16_t> samples, int sample_rate_hz);

// Waits until Asterisk has closed the WAV file at `path` (its header's sizes
// agree with the file's) and reads it.
absl::StatusOr<audio::WavAudio> ReadFinishedWav(const std::string& path, absl::Duration timeout);

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_RECORDING_H_
