// Test signals and scoring for the DSP tests and benchmarks (testonly).
//
// Signals are built in double precision and converted to 16-bit PCM with
// rounding and saturation. Levels are dBm0 (a full-scale sine is +3.14 dBm0);
// a noise level is its total power in the whole band 0..rate/2 expressed as
// the dBm0 of a sine of equal power.
#ifndef AUDIOSOCKET_BRIDGE_LIB_DSP_DSP_TESTING_H_
#define AUDIOSOCKET_BRIDGE_LIB_DSP_DSP_TESTING_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "lib/dsp/dtmf_detector.h"

namespace audiosocket::dsp::testing {

// Fast deterministic generator (splitmix64) for signals and parameters.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  double Uniform();  // [0, 1)
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  int Int(int lo, int hi);  // [lo, hi]
  double Gaussian();        // mean 0, variance 1

 private:
  uint64_t state_;
  bool has_spare_ = false;
  double spare_ = 0;
};

// Sine power (A^2 / 2, 16-bit units squared) of a level in dBm0.
double PowerForDbm0(double dbm0);

// Adds `amplitude_dbm0` sine of `freq_hz` starting at phase `phase` (radians)
// to x[start, start + length).
void AddSine(std::vector<double>* x, int rate, int64_t start, int64_t length, double freq_hz,
             double dbm0, double phase);
// Adds white Gaussian noise of total power `dbm0` to x[start, start + length).
void AddNoise(std::vector<double>* x, int64_t start, int64_t length, double dbm0, Rng* rng);

enum class Channel { kLinear, kUlaw, kAlaw };
const char* ChannelName(Channel c);

// Rounds and saturates to 16 bits, then passes through the channel (G.711
// encode and decode for kUlaw and kAlaw).
std::vector<int16_t> ToPcm(const std::vector<double>& x, Channel channel);

// One DTMF burst in a test signal.
struct Burst {
  char digit;
  int64_t start;   // samples
  int64_t length;  // samples, including any dropout inside
};

// Adds a burst of `digit` with per-tone levels, relative frequency offsets
// (0.015 = +1.5%) plus absolute offsets in Hz, and random start phases.
struct BurstSpec {
  char digit;
  int64_t start;
  int64_t length;
  double low_dbm0 = -4;
  double high_dbm0 = -4;
  double low_offset = 0, high_offset = 0;        // relative
  double low_offset_hz = 0, high_offset_hz = 0;  // absolute
};
void AddBurst(std::vector<double>* x, int rate, const BurstSpec& spec, Rng* rng);

// Runs a fresh detector over `pcm` in chunks of `chunk` samples and flushes.
std::vector<DtmfEvent> Detect(int rate, absl::Span<const int16_t> pcm, int chunk);

// How detected events match the bursts of a signal.
struct Score {
  int bursts = 0;
  int correct = 0;                   // bursts matched by exactly one event of the right digit
  int missed = 0;                    // bursts no event overlaps
  int wrong_digit = 0;               // events overlapping a burst with another digit
  int split = 0;                     // extra events of the right digit on one burst
  int false_events = 0;              // events overlapping no burst
  double max_begin_latency_ms = 0;   // BEGIN's detected_sample - burst start
  double max_start_error_ms = 0;     // |reported start - true start|
  double max_duration_error_ms = 0;  // |reported duration - true length|
  std::string Describe() const;
};
// Matches END events (which carry start and duration) to bursts by overlap;
// BEGIN events give the latency.
Score ScoreEvents(int rate, const std::vector<Burst>& bursts, const std::vector<DtmfEvent>& events);

// 16-bit mono WAV files (PCM). Other formats give an error naming the file.
absl::StatusOr<std::vector<int16_t>> ReadWav(const std::string& path, int* rate);

// Harmonic-rich synthetic music: chords and a melody of equal-tempered notes
// with 6-16 harmonics each, envelopes, vibrato on some notes; deterministic
// for a seed. Level about -18 dBm0.
std::vector<double> SynthMusic(int rate, double seconds, uint64_t seed);

}  // namespace audiosocket::dsp::testing

#endif  // AUDIOSOCKET_BRIDGE_LIB_DSP_DSP_TESTING_H_
