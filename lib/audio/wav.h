#ifndef AUDIOSOCKET_BRIDGE_LIB_AUDIO_WAV_H_
#define AUDIOSOCKET_BRIDGE_LIB_AUDIO_WAV_H_

// RIFF/WAVE files of 16-bit PCM mono: a reader that resamples to the asked
// rate with libspeexdsp, and a streaming writer for recordings.
//
// Thread-safety: WavWriter has one owner; the free functions are thread-safe.

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace audiosocket::audio {

struct WavAudio {
  int sample_rate_hz = 0;
  std::vector<int16_t> samples;
};

// Parses a whole WAV file image. Accepts format 1 (PCM) or WAVE_FORMAT_
// EXTENSIBLE with a PCM subformat, 16 bits, 1 channel; anything else is
// refused with a message naming what the file holds.
absl::StatusOr<WavAudio> ParseWav(absl::string_view bytes, absl::string_view name);

// Reads `path` and returns its samples at `rate_hz`, resampling with
// libspeexdsp (quality 5) when the file's rate differs.
absl::StatusOr<WavAudio> ReadWavFile(const std::string& path, int rate_hz);

// Resamples mono 16-bit audio with libspeexdsp.
absl::StatusOr<std::vector<int16_t>> Resample(absl::Span<const int16_t> in, int from_hz, int to_hz);

// The bytes of a complete WAV file (header + samples).
std::string EncodeWav(int sample_rate_hz, absl::Span<const int16_t> samples);

// Writes a WAV file as audio arrives; the header's sizes are fixed up on
// Close (and by the destructor), so a file is valid even if the writer stops
// early.
class WavWriter {
 public:
  WavWriter() = default;
  ~WavWriter();
  WavWriter(const WavWriter&) = delete;
  WavWriter& operator=(const WavWriter&) = delete;

  absl::Status Open(const std::string& path, int sample_rate_hz);
  bool is_open() const { return file_ != nullptr; }
  int sample_rate_hz() const { return rate_; }
  // Little-endian PCM bytes as received (an odd trailing byte is dropped).
  absl::Status Append(absl::Span<const uint8_t> pcm_le);
  absl::Status Close();
  uint64_t data_bytes() const { return data_bytes_; }

 private:
  std::FILE* file_ = nullptr;
  std::string path_;
  int rate_ = 0;
  uint64_t data_bytes_ = 0;
};

}  // namespace audiosocket::audio

#endif  // AUDIOSOCKET_BRIDGE_LIB_AUDIO_WAV_H_
