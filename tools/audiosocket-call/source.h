#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_SOURCE_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_SOURCE_H_

// Audio sources for emulated calls: silence, a sine tone, or a WAV file
// (looped or played once), and the spec parser for --source.
//
// Thread-safety: a source belongs to one call (event-loop thread). WAV
// samples are loaded once and shared read-only between calls.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace audiosocket::call {

class AudioSource {
 public:
  virtual ~AudioSource() = default;
  // Fills `out` with the next samples. Returns false when the source has
  // ended (a WAV played once); samples past the end are zero.
  virtual bool Fill(absl::Span<int16_t> out) = 0;
};

// What --source asked for; Make() builds one independent source per call.
struct SourceSpec {
  enum class Type { kSilence, kTone, kWav };
  Type type = Type::kSilence;
  double tone_hz = 440;
  double tone_dbfs = -12;  // peak level of the tone
  std::string wav_path;
  bool loop = false;
  int rate_hz = 8000;
  // Loaded by Load() for kWav, at rate_hz.
  std::shared_ptr<const std::vector<int16_t>> wav_samples;

  // Reads the WAV file (resampling it to rate_hz); no-op for other types.
  absl::Status Load();
  std::unique_ptr<AudioSource> Make() const;
};

// "silence", "tone:440", "tone:440:-6" (Hz, then dBFS), "wav:FILE".
absl::StatusOr<SourceSpec> ParseSourceSpec(absl::string_view text);

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_SOURCE_H_
