#include "tests/asterisk/recording.h"

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "lib/dsp/dtmf_detector.h"

namespace audiosocket::testing {

std::vector<int16_t> Sine(double frequency_hz, int ms, int sample_rate_hz, int amplitude) {
  const size_t count = static_cast<size_t>(ms) * static_cast<size_t>(sample_rate_hz) / 1000;
  std::vector<int16_t> samples(count);
  for (size_t i = 0; i < count; ++i) {
    samples[i] = static_cast<int16_t>(std::lround(
        amplitude * std::sin(2 * M_PI * frequency_hz * static_cast<double>(i) / sample_rate_hz)));
  }
  return samples;
}

double ToneShare(absl::Span<const int16_t> block, double frequency_hz, int sample_rate_hz) {
  if (block.empty()) return 0;
  const double coefficient = 2 * std::cos(2 * M_PI * frequency_hz / sample_rate_hz);
  double s1 = 0, s2 = 0, energy = 0;
  for (int16_t sample : block) {
    const double s0 = sample + coefficient * s1 - s2;
    s2 = s1;
    s1 = s0;
    energy += static_cast<double>(sample) * sample;
  }
  // Below about -60 dBFS a block is silence, whatever its spectrum.
  if (energy / static_cast<double>(block.size()) < 1000.0) return 0;
  const double power = s1 * s1 + s2 * s2 - coefficient * s1 * s2;
  // A pure tone's Goertzel power over N samples is energy * N / 2.
  return std::min(1.0, power / (energy * static_cast<double>(block.size()) / 2));
}

ToneRun FindTone(absl::Span<const int16_t> samples, int sample_rate_hz, double frequency_hz,
                 double min_share) {
  const size_t block = static_cast<size_t>(sample_rate_hz / 50);
  ToneRun run;
  std::vector<bool> present;
  for (size_t start = 0; start + block <= samples.size(); start += block) {
    present.push_back(ToneShare(samples.subspan(start, block), frequency_hz, sample_rate_hz) >=
                      min_share);
  }
  for (size_t i = 0; i < present.size(); ++i) {
    if (!present[i]) continue;
    if (run.first_block < 0) run.first_block = static_cast<int>(i);
    run.last_block = static_cast<int>(i);
    ++run.blocks_with_tone;
  }
  if (run.first_block >= 0) {
    run.gap_blocks = run.last_block - run.first_block + 1 - run.blocks_with_tone;
  }
  return run;
}

std::string DetectDigits(absl::Span<const int16_t> samples, int sample_rate_hz) {
  auto detector = dsp::DtmfDetector::Create(sample_rate_hz);
  if (!detector.ok()) return "?";
  std::vector<dsp::DtmfEvent> events;
  detector->Process(samples, &events);
  detector->Flush(&events);
  std::string digits;
  for (const dsp::DtmfEvent& event : events) {
    if (event.kind == dsp::DtmfEvent::Kind::kEnd) digits.push_back(event.digit);
  }
  return digits;
}

absl::StatusOr<audio::WavAudio> ReadFinishedWav(const std::string& path, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last_problem = "not found";
  while (absl::Now() < deadline) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string image = bytes.str();
    if (image.size() >= 44) {
      uint32_t riff_size = 0;
      std::memcpy(&riff_size, image.data() + 4, 4);
      // Asterisk writes the sizes into the header when it closes the file.
      if (riff_size + 8 == image.size()) return audio::ParseWav(image, path);
      last_problem = absl::StrCat("header says ", riff_size + 8, " bytes, file has ", image.size());
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("recording ", path, " not finished within ",
                                                  absl::FormatDuration(timeout), ": ",
                                                  last_problem));
}

}  // namespace audiosocket::testing
