// Streaming DTMF detector for 16-bit PCM at 8 kHz or 16 kHz (any rate from
// 8000 to 48000 Hz works the same way; 8 and 16 kHz are the tested ones).
//
// Feed audio in chunks of any size (AudioSocket's 20 ms frames, or anything
// else); results do not depend on where chunks split. For every digit the
// detector reports a kBegin event once the digit is recognised (about 30-35
// ms after the tone starts) and a kEnd event with the tone's duration (40 ms
// after the tone stops, the time it waits to bridge dropouts).
//
// Method (docs/DSP.md has the details and the measured results): Goertzel
// filters at the eight DTMF frequencies over 4 ms sub-blocks; every 4 ms the
// last five sub-blocks (a 20 ms window) are combined coherently. The phase
// advance between sub-blocks measures each tone's frequency offset, which
// gives the ±1.5% accept / ±3.5% reject decision independent of level; the
// frequency-corrected tone energy must hold most of the window's energy
// (talk-off) and be steady across the sub-blocks (duration, edges).
//
// Thread safety: not thread-safe; one object per call and direction, used from
// one thread at a time. Process() never allocates when `out` has capacity.
#ifndef AUDIOSOCKET_BRIDGE_LIB_DSP_DTMF_DETECTOR_H_
#define AUDIOSOCKET_BRIDGE_LIB_DSP_DTMF_DETECTOR_H_

#include <array>
#include <complex>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace audiosocket::dsp {

struct DtmfEvent {
  enum class Kind : uint8_t { kBegin, kEnd };
  Kind kind;
  char digit;  // '0'-'9', '*', '#', 'A'-'D'
  // Estimated first sample of the tone, counted from the first sample ever
  // passed to Process() (or since Reset()).
  int64_t start_sample;
  // Sample position at which the detector knew: the event belongs right after
  // this sample (the end of the chunk holding it, at the latest).
  int64_t detected_sample;
  // kEnd only: estimated tone length (0 for kBegin).
  int64_t duration_samples;
  int duration_ms;
};

class DtmfDetector {
 public:
  struct Options {
    // Minimum level of each tone, dBm0. The level criterion is "-36 dBm0
    // detected, -55 dBm0 not".
    double min_level_dbm0 = -45.0;
    // Accepted twist (high tone minus low tone), dB.
    double min_twist_db = -10.0;
    double max_twist_db = 6.0;
  };

  // sample_rate_hz in 8000..48000. InvalidArgument otherwise.
  static absl::StatusOr<DtmfDetector> Create(int sample_rate_hz, Options options);
  static absl::StatusOr<DtmfDetector> Create(int sample_rate_hz) {
    return Create(sample_rate_hz, Options());
  }

  // Consumes `samples` and appends events to `out` in time order (it does not
  // clear `out`). Keep one vector per call and clear() it after handling the
  // events: its capacity is reused, so no allocation happens per frame.
  void Process(absl::Span<const int16_t> samples, std::vector<DtmfEvent>* out);

  // Ends the stream: a digit still sounding gets its kEnd now.
  void Flush(std::vector<DtmfEvent>* out);

  // Forgets everything; sample positions count from 0 again.
  void Reset();

  int sample_rate_hz() const { return rate_; }
  // Samples consumed so far.
  int64_t samples_processed() const { return samples_seen_; }

 private:
  static constexpr int kBins = 8;
  static constexpr int kWindow = 5;    // sub-blocks per analysis window
  static constexpr int kHistory = 16;  // sub-blocks kept (power of two)
  static constexpr int kBeginHits = 4;
  static constexpr int kEndMisses = 10;

  struct SubBlock {
    std::array<std::complex<float>, kBins> y;
    float energy;
  };
  // Result of one window: digit index 0..15 or -1.
  struct Window {
    int digit = -1;
    int low = 0, high = 0;            // bins
    float ref_low = 0, ref_high = 0;  // mean sub-block magnitude, interior
  };

  DtmfDetector(int rate, const Options& options);
  void FinishSubBlock(std::vector<DtmfEvent>* out);
  Window Analyse() const;
  // Fraction (0..1) of sub-block `b` the tone of window `w` covers.
  float Coverage(int64_t b, const Window& w) const;
  const SubBlock& Block(int64_t b) const { return history_[b & (kHistory - 1)]; }
  // Window b covers samples [(b - 1) L, (b + 1) L).
  int64_t WindowStart(int64_t b) const { return (b - 1) * block_; }
  void NoteHit(int64_t last, const Window& w);
  static float CoveredFraction(float weight_share);
  void EmitEnd(std::vector<DtmfEvent>* out);
  int64_t EstimateStart(int64_t first, const Window& w) const;

  int rate_;
  Options options_;
  int block_;                                       // samples per sub-block (4 ms)
  std::array<float, kBins> coef_;                   // 2 cos(w)
  std::array<float, kBins> cos_, sin_;              // cos(w), sin(w)
  std::array<std::complex<float>, kBins> carrier_;  // exp(-j w block), unit
  std::array<float, kBins> max_offset_rad_;         // per sub-block phase tolerance
  float min_tone_power_;
  float min_twist_, max_twist_;  // as power ratios

  // Goertzel state of the two overlapping Hann windows in progress: `cur`
  // started at this sub-block, `prev` one sub-block earlier.
  std::vector<float> rise_, fall_;  // window halves, block_ each
  std::array<float, kBins> cur1_{}, cur2_{}, prev1_{}, prev2_{};
  float cur_energy_ = 0, prev_energy_ = 0;
  int fill_ = 0;
  int64_t samples_seen_ = 0;
  int64_t blocks_ = 0;  // completed sub-blocks
  std::array<SubBlock, kHistory> history_{};

  // State machine.
  int candidate_ = -1;
  int candidate_hits_ = 0;
  int64_t candidate_start_ = 0;  // estimated tone start of the candidate run
  int active_ = -1;              // digit sounding (reported kBegin)
  int64_t active_start_ = 0;
  int misses_ = 0;
  int64_t last_hit_block_ = -1;  // last sub-block of the last hit window
  Window last_hit_;
  int64_t end_estimate_ = 0;
  bool end_open_ = false;  // end_estimate_ still provisional
  int stash_digit_ = -1;   // last broken-off candidate run
  int64_t stash_start_ = 0;
  int64_t stash_block_ = 0;
};

// The digit for an index 0..15 in keypad order "123A456B789C*0#D".
char DtmfDigitForIndex(int index);

}  // namespace audiosocket::dsp

#endif  // AUDIOSOCKET_BRIDGE_LIB_DSP_DTMF_DETECTOR_H_
