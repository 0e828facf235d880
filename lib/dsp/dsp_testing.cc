#include "lib/dsp/dsp_testing.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numbers>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/dsp/dtmf_generator.h"
#include "lib/dsp/g711.h"

namespace audiosocket::dsp::testing {

uint64_t Rng::Next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double Rng::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

int Rng::Int(int lo, int hi) {
  return lo + static_cast<int>(Next() % static_cast<uint64_t>(hi - lo + 1));
}

double Rng::Gaussian() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  double u, v, s;
  do {
    u = 2 * Uniform() - 1;
    v = 2 * Uniform() - 1;
    s = u * u + v * v;
  } while (s >= 1 || s == 0);
  const double f = std::sqrt(-2 * std::log(s) / s);
  spare_ = v * f;
  has_spare_ = true;
  return u * f;
}

double PowerForDbm0(double dbm0) {
  const double a = SineAmplitudeForDbm0(dbm0);
  return a * a / 2;
}

void AddSine(std::vector<double>* x, int rate, int64_t start, int64_t length, double freq_hz,
             double dbm0, double phase) {
  const double a = SineAmplitudeForDbm0(dbm0);
  // Rotating phasor in double precision: exact enough for minutes of audio
  // when renormalised.
  const double w = 2 * std::numbers::pi * freq_hz / rate;
  double c = std::cos(phase), s = std::sin(phase);
  const double cw = std::cos(w), sw = std::sin(w);
  const int64_t end = std::min<int64_t>(start + length, static_cast<int64_t>(x->size()));
  for (int64_t n = std::max<int64_t>(start, 0); n < end; ++n) {
    (*x)[n] += a * s;
    const double c2 = c * cw - s * sw;
    s = s * cw + c * sw;
    c = c2;
    if (((n - start) & 1023) == 1023) {
      const double r = 1.0 / std::hypot(c, s);
      c *= r;
      s *= r;
    }
  }
}

void AddNoise(std::vector<double>* x, int64_t start, int64_t length, double dbm0, Rng* rng) {
  const double sigma = std::sqrt(PowerForDbm0(dbm0));
  const int64_t end = std::min<int64_t>(start + length, static_cast<int64_t>(x->size()));
  for (int64_t n = std::max<int64_t>(start, 0); n < end; ++n) (*x)[n] += sigma * rng->Gaussian();
}

const char* ChannelName(Channel c) {
  switch (c) {
    case Channel::kLinear:
      return "linear";
    case Channel::kUlaw:
      return "ulaw";
    case Channel::kAlaw:
      return "alaw";
  }
  return "?";
}

std::vector<int16_t> ToPcm(const std::vector<double>& x, Channel channel) {
  std::vector<int16_t> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const int16_t v = static_cast<int16_t>(std::clamp(std::lround(x[i]), -32768L, 32767L));
    switch (channel) {
      case Channel::kLinear:
        out[i] = v;
        break;
      case Channel::kUlaw:
        out[i] = UlawToLinear(LinearToUlaw(v));
        break;
      case Channel::kAlaw:
        out[i] = AlawToLinear(LinearToAlaw(v));
        break;
    }
  }
  return out;
}

void AddBurst(std::vector<double>* x, int rate, const BurstSpec& spec, Rng* rng) {
  double lo = 0, hi = 0;
  DtmfFrequencies(spec.digit, &lo, &hi);
  AddSine(x, rate, spec.start, spec.length, lo * (1 + spec.low_offset) + spec.low_offset_hz,
          spec.low_dbm0, rng->Uniform(0, 2 * std::numbers::pi));
  AddSine(x, rate, spec.start, spec.length, hi * (1 + spec.high_offset) + spec.high_offset_hz,
          spec.high_dbm0, rng->Uniform(0, 2 * std::numbers::pi));
}

std::vector<DtmfEvent> Detect(int rate, absl::Span<const int16_t> pcm, int chunk) {
  auto detector = DtmfDetector::Create(rate);
  std::vector<DtmfEvent> events;
  if (!detector.ok()) return events;
  for (size_t i = 0; i < pcm.size(); i += static_cast<size_t>(chunk)) {
    detector->Process(pcm.subspan(i, std::min(static_cast<size_t>(chunk), pcm.size() - i)),
                      &events);
  }
  detector->Flush(&events);
  return events;
}

std::string Score::Describe() const {
  return absl::StrFormat(
      "%d bursts: %d correct, %d missed, %d wrong digit, %d split, %d false; max BEGIN latency "
      "%.1f ms, max start error %.1f ms, max duration error %.1f ms",
      bursts, correct, missed, wrong_digit, split, false_events, max_begin_latency_ms,
      max_start_error_ms, max_duration_error_ms);
}

Score ScoreEvents(int rate, const std::vector<Burst>& bursts,
                  const std::vector<DtmfEvent>& events) {
  Score score;
  score.bursts = static_cast<int>(bursts.size());
  const double ms = 1000.0 / rate;
  std::vector<int> right(bursts.size(), 0), other(bursts.size(), 0);
  std::vector<const DtmfEvent*> begins;
  for (const DtmfEvent& e : events) {
    if (e.kind == DtmfEvent::Kind::kBegin) begins.push_back(&e);
  }
  for (const DtmfEvent& e : events) {
    if (e.kind != DtmfEvent::Kind::kEnd) continue;
    const int64_t e0 = e.start_sample,
                  e1 = e.start_sample + std::max<int64_t>(e.duration_samples, 1);
    bool matched = false;
    for (size_t i = 0; i < bursts.size(); ++i) {
      const Burst& b = bursts[i];
      if (e1 <= b.start || e0 >= b.start + b.length) continue;
      matched = true;
      if (e.digit != b.digit) {
        ++other[i];
        continue;
      }
      if (++right[i] == 1) {
        score.max_start_error_ms =
            std::max(score.max_start_error_ms, std::abs(static_cast<double>(e0 - b.start)) * ms);
        score.max_duration_error_ms =
            std::max(score.max_duration_error_ms,
                     std::abs(static_cast<double>(e.duration_samples - b.length)) * ms);
        for (const DtmfEvent* begin : begins) {
          if (begin->start_sample == e.start_sample && begin->digit == e.digit) {
            score.max_begin_latency_ms =
                std::max(score.max_begin_latency_ms,
                         static_cast<double>(begin->detected_sample - b.start) * ms);
            break;
          }
        }
      }
    }
    if (!matched) ++score.false_events;
  }
  for (size_t i = 0; i < bursts.size(); ++i) {
    if (right[i] == 1 && other[i] == 0) ++score.correct;
    if (right[i] == 0 && other[i] == 0) ++score.missed;
    score.wrong_digit += other[i];
    if (right[i] > 1) score.split += right[i] - 1;
  }
  return score;
}

namespace {
uint32_t Le32(const unsigned char* p) {
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
uint16_t Le16(const unsigned char* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
}  // namespace

absl::StatusOr<std::vector<int16_t>> ReadWav(const std::string& path, int* rate) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string data((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  if (data.size() < 12 || std::memcmp(p, "RIFF", 4) != 0 || std::memcmp(p + 8, "WAVE", 4) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a RIFF/WAVE file"));
  }
  size_t pos = 12;
  int channels = 0, bits = 0, format = 0;
  while (pos + 8 <= data.size()) {
    const uint32_t size = Le32(p + pos + 4);
    const size_t body = pos + 8;
    if (std::memcmp(p + pos, "fmt ", 4) == 0 && body + 16 <= data.size()) {
      format = Le16(p + body);
      channels = Le16(p + body + 2);
      *rate = static_cast<int>(Le32(p + body + 4));
      bits = Le16(p + body + 14);
    } else if (std::memcmp(p + pos, "data", 4) == 0) {
      if (format != 1 || bits != 16 || channels != 1) {
        return absl::InvalidArgumentError(
            absl::StrFormat("%s: format %d, %d bits, %d channels; only 16-bit mono PCM is read",
                            path, format, bits, channels));
      }
      const size_t n = std::min<size_t>(size, data.size() - body) / 2;
      std::vector<int16_t> out(n);
      for (size_t i = 0; i < n; ++i) out[i] = static_cast<int16_t>(Le16(p + body + 2 * i));
      return out;
    }
    pos = body + size + (size & 1);
  }
  return absl::InvalidArgumentError(absl::StrCat(path, ": no data chunk"));
}

namespace {
// Table sine with linear interpolation (error < 1e-6), fast enough for
// half an hour of many-voiced music.
double FastSin(double phase) {
  constexpr int kSize = 4096;
  static const std::vector<double> table = [] {
    std::vector<double> t(kSize + 1);
    for (int i = 0; i <= kSize; ++i) t[i] = std::sin(2 * std::numbers::pi * i / kSize);
    return t;
  }();
  double pos = phase / (2 * std::numbers::pi);
  pos -= std::floor(pos);
  pos *= kSize;
  const int i = static_cast<int>(pos);
  const double frac = pos - i;
  return table[i] + frac * (table[i + 1] - table[i]);
}
}  // namespace

std::vector<double> SynthMusic(int rate, double seconds, uint64_t seed) {
  Rng rng(seed);
  const auto total = static_cast<int64_t>(seconds * rate);
  std::vector<double> x(static_cast<size_t>(total), 0.0);
  const double nyquist_limit = std::min(3400.0, 0.45 * rate);
  // Voices: a bass/chord layer and a melody layer, each a sequence of notes.
  for (int voice = 0; voice < 4; ++voice) {
    int64_t t = static_cast<int64_t>(rng.Uniform(0, 0.3) * rate);
    const bool melody = voice == 3;
    while (t < total) {
      const double dur_s = melody ? rng.Uniform(0.08, 0.6) : rng.Uniform(0.25, 1.2);
      const auto len = static_cast<int64_t>(dur_s * rate);
      const int midi = melody ? rng.Int(60, 88) : rng.Int(36, 72);
      const double f0 = 440.0 * std::pow(2.0, (midi - 69) / 12.0);
      const int harmonics = rng.Int(6, 16);
      const double tilt = rng.Uniform(0.5, 1.5);  // amplitude of harmonic h ~ 1/h^tilt
      const double level = rng.Uniform(-30, -20);
      const double vibrato_hz = rng.Uniform() < 0.4 ? rng.Uniform(4, 7) : 0.0;
      const double vibrato_depth = rng.Uniform(0.002, 0.008);
      const double attack = rng.Uniform(0.005, 0.05) * rate;
      const double release = rng.Uniform(0.02, 0.15) * rate;
      const double amp = SineAmplitudeForDbm0(level);
      std::vector<double> phases(static_cast<size_t>(harmonics));
      std::vector<double> gains(static_cast<size_t>(harmonics));
      for (int h = 0; h < harmonics; ++h) {
        phases[h] = rng.Uniform(0, 2 * std::numbers::pi);
        gains[h] = amp / std::pow(h + 1, tilt) * rng.Uniform(0.5, 1.0);
      }
      double phase = 0;
      const int64_t end = std::min(total, t + len + static_cast<int64_t>(release));
      for (int64_t n = t; n < end; ++n) {
        const double k = static_cast<double>(n - t);
        double env = std::min(1.0, k / attack) * std::exp(-k / (rate * 1.5));
        if (n >= t + len) env *= std::max(0.0, 1.0 - static_cast<double>(n - t - len) / release);
        const double f =
            f0 * (1 + (vibrato_hz > 0
                           ? vibrato_depth * FastSin(2 * std::numbers::pi * vibrato_hz * k / rate)
                           : 0.0));
        phase += 2 * std::numbers::pi * f / rate;
        if (phase > 2 * std::numbers::pi) phase -= 2 * std::numbers::pi;
        double v = 0;
        for (int h = 0; h < harmonics; ++h) {
          if (f0 * (h + 1) > nyquist_limit) break;
          v += gains[h] * FastSin((h + 1) * phase + phases[h]);
        }
        x[n] += env * v;
      }
      t += melody ? len : static_cast<int64_t>(len * rng.Uniform(0.5, 1.0));
    }
  }
  return x;
}

}  // namespace audiosocket::dsp::testing
