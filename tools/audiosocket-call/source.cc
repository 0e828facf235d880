#include "tools/audiosocket-call/source.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tools/audiosocket-call/wav.h"

namespace audiosocket::call {
namespace {

class SilenceSource final : public AudioSource {
 public:
  bool Fill(absl::Span<int16_t> out) override {
    std::fill(out.begin(), out.end(), 0);
    return true;
  }
};

class ToneSource final : public AudioSource {
 public:
  ToneSource(double hz, double dbfs, int rate)
      : step_(2 * std::numbers::pi * hz / rate), amplitude_(32767.0 * std::pow(10.0, dbfs / 20)) {}
  bool Fill(absl::Span<int16_t> out) override {
    for (int16_t& s : out) {
      s = static_cast<int16_t>(std::lround(amplitude_ * std::sin(phase_)));
      phase_ += step_;
      if (phase_ > 2 * std::numbers::pi) phase_ -= 2 * std::numbers::pi;
    }
    return true;
  }

 private:
  double step_;
  double amplitude_;
  double phase_ = 0;
};

class WavSource final : public AudioSource {
 public:
  WavSource(std::shared_ptr<const std::vector<int16_t>> samples, bool loop)
      : samples_(std::move(samples)), loop_(loop) {}
  bool Fill(absl::Span<int16_t> out) override {
    const std::vector<int16_t>& s = *samples_;
    size_t i = 0;
    while (i < out.size()) {
      if (pos_ >= s.size()) {
        if (!loop_ || s.empty()) break;
        pos_ = 0;
      }
      const size_t n = std::min(out.size() - i, s.size() - pos_);
      std::copy_n(s.begin() + static_cast<ptrdiff_t>(pos_), n,
                  out.begin() + static_cast<ptrdiff_t>(i));
      i += n;
      pos_ += n;
    }
    std::fill(out.begin() + static_cast<ptrdiff_t>(i), out.end(), 0);
    return i > 0;
  }

 private:
  std::shared_ptr<const std::vector<int16_t>> samples_;
  bool loop_;
  size_t pos_ = 0;
};

}  // namespace

absl::Status SourceSpec::Load() {
  if (type != Type::kWav) return absl::OkStatus();
  absl::StatusOr<WavAudio> wav = ReadWavFile(wav_path, rate_hz);
  if (!wav.ok()) return wav.status();
  if (wav->samples.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(wav_path, " holds no samples"));
  }
  wav_samples = std::make_shared<const std::vector<int16_t>>(std::move(wav->samples));
  return absl::OkStatus();
}

std::unique_ptr<AudioSource> SourceSpec::Make() const {
  switch (type) {
    case Type::kTone:
      return std::make_unique<ToneSource>(tone_hz, tone_dbfs, rate_hz);
    case Type::kWav:
      if (wav_samples != nullptr) return std::make_unique<WavSource>(wav_samples, loop);
      break;
    case Type::kSilence:
      break;
  }
  return std::make_unique<SilenceSource>();
}

absl::StatusOr<SourceSpec> ParseSourceSpec(absl::string_view text) {
  SourceSpec spec;
  if (text == "silence") return spec;
  if (absl::StartsWith(text, "wav:") && text.size() > 4) {
    spec.type = SourceSpec::Type::kWav;
    spec.wav_path = std::string(text.substr(4));
    return spec;
  }
  if (text == "tone" || absl::StartsWith(text, "tone:")) {
    spec.type = SourceSpec::Type::kTone;
    std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
    if (parts.size() > 3 ||
        (parts.size() >= 2 && (!absl::SimpleAtod(parts[1], &spec.tone_hz) || spec.tone_hz <= 0 ||
                               spec.tone_hz > 96000)) ||
        (parts.size() == 3 &&
         (!absl::SimpleAtod(parts[2], &spec.tone_dbfs) || spec.tone_dbfs > 0))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--source=", text, ": write tone:HZ or tone:HZ:DBFS, e.g. tone:440 or tone:1000:-6"));
    }
    return spec;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("--source=", text, " is not one of silence, tone:HZ[:DBFS], wav:FILE"));
}

}  // namespace audiosocket::call
