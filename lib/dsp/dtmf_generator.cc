#include "lib/dsp/dtmf_generator.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace audiosocket::dsp {

bool DtmfFrequencies(char digit, double* low_hz, double* high_hz) {
  static constexpr char kKeys[4][5] = {"123A", "456B", "789C", "*0#D"};
  static constexpr double kLow[4] = {697, 770, 852, 941};
  static constexpr double kHigh[4] = {1209, 1336, 1477, 1633};
  if (digit >= 'a' && digit <= 'd') digit = static_cast<char>(digit - 'a' + 'A');
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c) {
      if (kKeys[r][c] == digit) {
        *low_hz = kLow[r];
        *high_hz = kHigh[c];
        return true;
      }
    }
  }
  return false;
}

double SineAmplitudeForDbm0(double dbm0) {
  return 32767.0 * std::pow(10.0, (dbm0 - kFullScaleSineDbm0) / 20.0);
}

absl::StatusOr<DtmfGenerator> DtmfGenerator::Create(int sample_rate_hz, Options options) {
  if (sample_rate_hz < 8000 || sample_rate_hz > 192000) {
    return absl::InvalidArgumentError(absl::StrCat("DTMF generator: sample rate ", sample_rate_hz,
                                                   " Hz is out of range 8000..192000 Hz"));
  }
  if (options.tone_ms < 40) {
    return absl::InvalidArgumentError(
        absl::StrCat("DTMF generator: tone duration ", options.tone_ms,
                     " ms is too short; receivers need at least 40 ms (set tone_ms >= 40)"));
  }
  if (options.gap_ms < 30) {
    return absl::InvalidArgumentError(
        absl::StrCat("DTMF generator: gap ", options.gap_ms,
                     " ms is too short; receivers need at least 30 ms between digits "
                     "(set gap_ms >= 30)"));
  }
  if (!(options.level_dbm0 >= -40.0 && options.level_dbm0 <= 3.0)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "DTMF generator: level %g dBm0 is out of range -40..+3 dBm0", options.level_dbm0));
  }
  if (!(options.twist_db >= -10.0 && options.twist_db <= 10.0) ||
      options.level_dbm0 + options.twist_db > 3.0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "DTMF generator: twist %g dB is out of range -10..+10 dB or puts the high tone above "
        "+3 dBm0",
        options.twist_db));
  }
  if (!(options.ramp_ms >= 0.0 && options.ramp_ms * 3.0 <= options.tone_ms)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "DTMF generator: ramp %g ms must be between 0 and a third of the tone", options.ramp_ms));
  }
  return DtmfGenerator(sample_rate_hz, options);
}

DtmfGenerator::DtmfGenerator(int rate, const Options& options)
    : rate_(rate),
      options_(options),
      tone_samples_(std::llround(static_cast<double>(options.tone_ms) * rate / 1000.0)),
      gap_samples_(std::llround(static_cast<double>(options.gap_ms) * rate / 1000.0)),
      ramp_samples_(std::llround(options.ramp_ms * rate / 1000.0)),
      low_amplitude_(SineAmplitudeForDbm0(options.level_dbm0)),
      high_amplitude_(SineAmplitudeForDbm0(options.level_dbm0 + options.twist_db)) {}

absl::Status DtmfGenerator::Queue(absl::string_view digits) {
  double lo, hi;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (!DtmfFrequencies(digits[i], &lo, &hi)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("DTMF generator: '%c' (position %d of \"%s\") is not a DTMF digit; "
                          "use 0-9, *, #, A-D",
                          digits[i], i, std::string(digits)));
    }
  }
  // Drop what already played so the string does not grow over a long call.
  if (next_ > 0 && next_ == pending_.size()) {
    pending_.clear();
    next_ = 0;
  }
  pending_.append(digits.data(), digits.size());
  return absl::OkStatus();
}

void DtmfGenerator::Clear() {
  pending_.clear();
  next_ = 0;
  position_ = 0;
  playing_ = false;
}

void DtmfGenerator::StartDigit(char digit) {
  double lo = 0, hi = 0;
  DtmfFrequencies(digit, &lo, &hi);
  low_step_ = lo / rate_;
  high_step_ = hi / rate_;
  low_phase_ = 0;
  high_phase_ = 0;
}

template <bool kMix>
size_t DtmfGenerator::Run(absl::Span<int16_t> out) {
  size_t i = 0;
  const int64_t digit_samples = tone_samples_ + gap_samples_;
  constexpr double kTwoPi = 2.0 * std::numbers::pi;
  while (i < out.size()) {
    if (!playing_) {
      if (next_ == pending_.size()) break;
      StartDigit(pending_[next_++]);
      playing_ = true;
      position_ = 0;
    }
    const size_t n = static_cast<size_t>(
        std::min<int64_t>(static_cast<int64_t>(out.size() - i), digit_samples - position_));
    for (size_t k = 0; k < n; ++k, ++position_) {
      double v = 0;
      if (position_ < tone_samples_) {
        // Raised-cosine gain over the first and last ramp_samples_ samples;
        // the half-sample offset keeps rise and fall symmetric.
        double gain = 1.0;
        const int64_t from_edge = std::min(position_, tone_samples_ - 1 - position_);
        if (from_edge < ramp_samples_) {
          gain = 0.5 - 0.5 * std::cos(std::numbers::pi * (from_edge + 0.5) / ramp_samples_);
        }
        v = gain * (low_amplitude_ * std::sin(kTwoPi * low_phase_) +
                    high_amplitude_ * std::sin(kTwoPi * high_phase_));
        low_phase_ += low_step_;
        high_phase_ += high_step_;
        low_phase_ -= std::floor(low_phase_);
        high_phase_ -= std::floor(high_phase_);
      }
      if constexpr (kMix) {
        v += out[i + k];
      }
      if (kMix || position_ < tone_samples_) {
        out[i + k] = static_cast<int16_t>(std::clamp(std::lround(v), -32768L, 32767L));
      } else {
        out[i + k] = 0;
      }
    }
    i += n;
    if (position_ == digit_samples) {
      playing_ = false;
      position_ = 0;
    }
  }
  const size_t produced = i;
  if constexpr (!kMix) {
    std::fill(out.begin() + static_cast<std::ptrdiff_t>(i), out.end(), 0);
  }
  return produced;
}

size_t DtmfGenerator::Generate(absl::Span<int16_t> out) { return Run<false>(out); }
size_t DtmfGenerator::Mix(absl::Span<int16_t> inout) { return Run<true>(inout); }

}  // namespace audiosocket::dsp
