#include "lib/dsp/dtmf_detector.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"

namespace audiosocket::dsp {
namespace {

constexpr double kFrequencies[8] = {697, 770, 852, 941, 1209, 1336, 1477, 1633};
constexpr char kDigits[] = "123A456B789C*0#D";
constexpr double kSubBlockSeconds = 0.004;

// Share of the window's energy the two frequency-corrected tones must hold.
constexpr float kMinToneShare = 0.75f;
// Every sub-block's tone magnitude must reach this share of the window mean:
// rejects windows the tone covers only partly (edges, short bursts, dropouts).
constexpr float kMinSteadiness = 0.55f;
// Accepted frequency offset: 2.5% + 1 Hz, halfway (relatively) between the
// must-accept 1.5% + 2 Hz and the must-reject 3.5% of ITU-T Q.24.
constexpr double kOffsetShare = 0.025;
constexpr double kOffsetHz = 1.0;
// Coverage above this counts as a fully covered window in edge estimates.
constexpr float kFullCoverage = 0.9f;
// dBm0 of a full-scale sine in 16-bit linear PCM.
constexpr double kFullScaleSineDbm0 = 3.14;

}  // namespace

char DtmfDigitForIndex(int index) { return index >= 0 && index < 16 ? kDigits[index] : '?'; }

absl::StatusOr<DtmfDetector> DtmfDetector::Create(int sample_rate_hz, Options options) {
  if (sample_rate_hz < 8000 || sample_rate_hz > 48000) {
    return absl::InvalidArgumentError(
        absl::StrCat("DTMF detector: sample rate ", sample_rate_hz,
                     " Hz is out of range 8000..48000 Hz; resample first"));
  }
  if (!(options.min_twist_db < options.max_twist_db)) {
    return absl::InvalidArgumentError(
        absl::StrCat("DTMF detector: min_twist_db ", options.min_twist_db,
                     " must be below max_twist_db ", options.max_twist_db));
  }
  return DtmfDetector(sample_rate_hz, options);
}

DtmfDetector::DtmfDetector(int rate, const Options& options)
    : rate_(rate),
      options_(options),
      block_(static_cast<int>(std::lround(rate * kSubBlockSeconds))) {
  for (int k = 0; k < kBins; ++k) {
    const double w = 2.0 * std::numbers::pi * kFrequencies[k] / rate;
    coef_[k] = static_cast<float>(2.0 * std::cos(w));
    cos_[k] = static_cast<float>(std::cos(w));
    sin_[k] = static_cast<float>(std::sin(w));
    carrier_[k] = std::complex<float>(static_cast<float>(std::cos(w * block_)),
                                      static_cast<float>(-std::sin(w * block_)));
    const double max_offset_hz = kOffsetShare * kFrequencies[k] + kOffsetHz;
    max_offset_rad_[k] = static_cast<float>(2.0 * std::numbers::pi * max_offset_hz * block_ / rate);
  }
  // Hann window over two sub-blocks: rising half for the window that starts
  // at this sub-block, falling half for the one that started a sub-block ago.
  // The halves add up to 1, so overlapping windows weigh every sample alike.
  rise_.resize(static_cast<size_t>(block_));
  fall_.resize(static_cast<size_t>(block_));
  for (int j = 0; j < block_; ++j) {
    const double r = std::sin(std::numbers::pi * (j + 0.5) / (2.0 * block_));
    rise_[j] = static_cast<float>(r * r);
    fall_[j] = static_cast<float>(1.0 - r * r);
  }
  const double min_amplitude =
      32767.0 * std::pow(10.0, (options.min_level_dbm0 - kFullScaleSineDbm0) / 20.0);
  min_tone_power_ = static_cast<float>(min_amplitude * min_amplitude / 2.0);
  min_twist_ = static_cast<float>(std::pow(10.0, options.min_twist_db / 10.0));
  max_twist_ = static_cast<float>(std::pow(10.0, options.max_twist_db / 10.0));
}

void DtmfDetector::Reset() { *this = DtmfDetector(rate_, options_); }

void DtmfDetector::Process(absl::Span<const int16_t> samples, std::vector<DtmfEvent>* out) {
  size_t i = 0;
  while (i < samples.size()) {
    const size_t n = std::min(samples.size() - i, static_cast<size_t>(block_ - fill_));
    // Local copies keep the filter state in registers; the fixed-size inner
    // loops over the eight bins vectorise.
    std::array<float, kBins> a1 = cur1_, a2 = cur2_, b1 = prev1_, b2 = prev2_;
    float ea = cur_energy_, eb = prev_energy_;
    const float* rise = rise_.data() + fill_;
    const float* fall = fall_.data() + fill_;
    for (size_t j = 0; j < n; ++j) {
      const float x = samples[i + j];
      const float xa = x * rise[j];
      const float xb = x * fall[j];
      ea += x * xa;
      eb += x * xb;
      for (int k = 0; k < kBins; ++k) {
        const float a0 = xa + coef_[k] * a1[k] - a2[k];
        a2[k] = a1[k];
        a1[k] = a0;
        const float b0 = xb + coef_[k] * b1[k] - b2[k];
        b2[k] = b1[k];
        b1[k] = b0;
      }
    }
    cur1_ = a1;
    cur2_ = a2;
    prev1_ = b1;
    prev2_ = b2;
    cur_energy_ = ea;
    prev_energy_ = eb;
    i += n;
    fill_ += static_cast<int>(n);
    samples_seen_ += static_cast<int64_t>(n);
    if (fill_ == block_) FinishSubBlock(out);
  }
}

void DtmfDetector::FinishSubBlock(std::vector<DtmfEvent>* out) {
  // The window that started a sub-block ago is complete.
  SubBlock& b = history_[blocks_ & (kHistory - 1)];
  for (int k = 0; k < kBins; ++k) {
    // Goertzel output: sum x[n] w[n] exp(jw(2L-1-n)); the constant phase
    // factor cancels in everything below.
    b.y[k] = std::complex<float>(prev1_[k] - cos_[k] * prev2_[k], sin_[k] * prev2_[k]);
  }
  b.energy = prev_energy_;
  prev1_ = cur1_;
  prev2_ = cur2_;
  prev_energy_ = cur_energy_;
  cur1_.fill(0);
  cur2_.fill(0);
  cur_energy_ = 0;
  fill_ = 0;
  ++blocks_;
  if (blocks_ < kWindow + 1) return;

  const int64_t last = blocks_ - 1;
  const int64_t first = blocks_ - kWindow;
  const Window w = Analyse();

  // Find the end of the sounding digit: the first window after its last hit
  // that the tone no longer covers fully.
  if (active_ >= 0 && end_open_ && last > last_hit_block_) {
    const float c = Coverage(last, last_hit_);
    if (c < kFullCoverage) {
      end_estimate_ = WindowStart(last) + std::lround(CoveredFraction(c) * 2 * block_);
      end_open_ = false;
    }
  }

  if (w.digit >= 0 && w.digit == active_) {
    misses_ = 0;
    NoteHit(last, w);
    candidate_ = -1;
    candidate_hits_ = 0;
    return;
  }
  if (active_ >= 0) ++misses_;
  if (w.digit != candidate_ && candidate_ >= 0) {
    // Remember a broken-off run: if the same digit resumes after a short
    // dropout, its tone started here.
    stash_digit_ = candidate_;
    stash_start_ = candidate_start_;
    stash_block_ = last;
  }
  if (w.digit < 0) {
    candidate_ = -1;
    candidate_hits_ = 0;
  } else if (w.digit == candidate_) {
    ++candidate_hits_;
  } else {
    candidate_ = w.digit;
    candidate_hits_ = 1;
    if (w.digit == stash_digit_ && last - stash_block_ <= kEndMisses - 2) {
      candidate_start_ = stash_start_;
    } else {
      candidate_start_ = EstimateStart(first, w);
    }
  }
  if (candidate_hits_ >= kBeginHits) {
    if (active_ >= 0) EmitEnd(out);
    active_ = candidate_;
    active_start_ = candidate_start_;
    misses_ = 0;
    NoteHit(last, w);
    candidate_ = -1;
    candidate_hits_ = 0;
    out->push_back(
        DtmfEvent{DtmfEvent::Kind::kBegin, kDigits[active_], active_start_, samples_seen_, 0, 0});
  } else if (active_ >= 0 && misses_ >= kEndMisses) {
    EmitEnd(out);
  }
}

void DtmfDetector::NoteHit(int64_t last, const Window& w) {
  last_hit_block_ = last;
  last_hit_ = w;
  const float c = Coverage(last, w);
  if (c < kFullCoverage) {
    // The tone already ends inside this window.
    end_estimate_ = WindowStart(last) + std::lround(CoveredFraction(c) * 2 * block_);
    end_open_ = false;
  } else {
    end_estimate_ = WindowStart(last) + 2 * block_;
    end_open_ = true;
  }
}

float DtmfDetector::CoveredFraction(float a) {
  // A tone covering the fraction c at one end of a Hann window holds
  // A(c) = c - sin(2 pi c) / (2 pi) of its weight; invert by bisection.
  a = std::clamp(a, 0.0f, 1.0f);
  float lo = 0, hi = 1;
  for (int i = 0; i < 20; ++i) {
    const float c = 0.5f * (lo + hi);
    const float v =
        c - std::sin(2.0f * std::numbers::pi_v<float> * c) / (2.0f * std::numbers::pi_v<float>);
    (v < a ? lo : hi) = c;
  }
  return 0.5f * (lo + hi);
}

int64_t DtmfDetector::EstimateStart(int64_t first, const Window& w) const {
  // The tone starts inside the latest window before the hit that it covers
  // only partly: walk back over fully covered windows (a window may have
  // failed on noise), then place the start by the covered share of the
  // partial one.
  int64_t b = first;
  while (b > 0 && b > blocks_ - kHistory + 1 && Coverage(b, w) >= kFullCoverage) --b;
  const float c = CoveredFraction(Coverage(b, w));
  return WindowStart(b) + std::lround((1.0f - c) * 2 * block_);
}

void DtmfDetector::EmitEnd(std::vector<DtmfEvent>* out) {
  const int64_t duration = std::max<int64_t>(0, end_estimate_ - active_start_);
  out->push_back(DtmfEvent{DtmfEvent::Kind::kEnd, kDigits[active_], active_start_, samples_seen_,
                           duration, static_cast<int>((duration * 1000 + rate_ / 2) / rate_)});
  active_ = -1;
  misses_ = 0;
  end_open_ = false;
}

void DtmfDetector::Flush(std::vector<DtmfEvent>* out) {
  if (active_ >= 0) EmitEnd(out);
  candidate_ = -1;
  candidate_hits_ = 0;
}

float DtmfDetector::Coverage(int64_t b, const Window& w) const {
  if (b < 0 || b <= blocks_ - kHistory) return 0.0f;
  const SubBlock& s = Block(b);
  const float c = 0.5f * (std::abs(s.y[w.low]) / w.ref_low + std::abs(s.y[w.high]) / w.ref_high);
  return std::clamp(c, 0.0f, 1.0f);
}

DtmfDetector::Window DtmfDetector::Analyse() const {
  Window result;
  const int64_t first = blocks_ - kWindow;
  std::array<const SubBlock*, kWindow> blocks;
  float total_energy = 0;
  for (int i = 0; i < kWindow; ++i) {
    blocks[i] = &Block(first + i);
    total_energy += blocks[i]->energy;
  }
  if (total_energy <= 0) return result;

  // Each group's tone is the bin with the most power at its nominal
  // frequency over the whole window (neighbours are >= 73 Hz away, outside
  // the window's main lobe).
  std::array<float, kBins> nominal;
  for (int k = 0; k < kBins; ++k) {
    std::complex<float> rot(1, 0), s(0, 0);
    for (int i = 0; i < kWindow; ++i) {
      s += blocks[i]->y[k] * rot;
      rot *= carrier_[k];
    }
    nominal[k] = std::norm(s);
  }
  int low = 0, high = 4;
  for (int k = 1; k < 4; ++k) {
    if (nominal[k] > nominal[low]) low = k;
  }
  for (int k = 5; k < 8; ++k) {
    if (nominal[k] > nominal[high]) high = k;
  }
  // For the two tones: the pair product P = sum y[i+1] conj(y[i]) has the
  // phase the tone advances per sub-block; de-rotating by it and summing
  // gives the frequency-corrected coherent amplitude S over the window.
  std::array<std::complex<float>, kBins> pair{};
  std::array<float, kBins> power{};
  for (int k : {low, high}) {
    std::complex<float> p(0, 0);
    for (int i = 0; i + 1 < kWindow; ++i) p += blocks[i + 1]->y[k] * std::conj(blocks[i]->y[k]);
    pair[k] = p;
    const float mag = std::abs(p);
    if (!(mag > 0)) return result;
    const std::complex<float> step = std::conj(p) / mag;
    std::complex<float> rot(1, 0), s(0, 0);
    for (int i = 0; i < kWindow; ++i) {
      s += blocks[i]->y[k] * rot;
      rot *= step;
    }
    power[k] = std::norm(s);
  }
  // A sine of amplitude A gives |y| = A L / 2 per Hann window, so
  // |S| = A n / 2 with n = kWindow * L, and its power A^2 / 2 = 2 |S|^2 / n^2.
  // The overlapping windows weigh the signal by n samples' worth in total.
  const float n = static_cast<float>(kWindow * block_);
  const float p_low = 2.0f * power[low] / (n * n);
  const float p_high = 2.0f * power[high] / (n * n);
  if (p_low < min_tone_power_ || p_high < min_tone_power_) return result;
  if (p_high < min_twist_ * p_low || p_high > max_twist_ * p_low) return result;
  if ((p_low + p_high) * n < kMinToneShare * total_energy) return result;
  for (int k : {low, high}) {
    const float offset = std::abs(std::arg(pair[k] * carrier_[k]));
    if (offset > max_offset_rad_[k]) return result;
  }
  std::array<float, 2> ref{};
  int g = 0;
  for (int k : {low, high}) {
    float sum = 0, min = 0;
    for (int i = 0; i < kWindow; ++i) {
      const float m = std::abs(blocks[i]->y[k]);
      sum += m;
      min = i == 0 ? m : std::min(min, m);
      if (i > 0 && i + 1 < kWindow) ref[g] += m;
    }
    if (min < kMinSteadiness * sum / kWindow) return result;
    ref[g] /= (kWindow - 2);
    ++g;
  }
  result.digit = low * 4 + (high - 4);
  result.low = low;
  result.high = high;
  result.ref_low = ref[0];
  result.ref_high = ref[1];
  return result;
}

}  // namespace audiosocket::dsp
