// G.711 μ-law and A-law companding, table-driven.
//
// Asterisk sends AudioSocket audio kind 0x10 as μ-law or A-law when a channel
// was dialled with c(ulaw)/c(alaw) or created by ARI with that format; the
// bridge converts it to and from 16-bit signed linear PCM for backends with
// these functions.
//
// Conventions follow ITU-T G.711 and its reference implementation (ITU-T
// G.191 STL): 16-bit input is quantised on the 14-bit (μ-law) or 13-bit
// (A-law) grid the standard defines, negative values symmetrically (x and
// -x-1 give the same magnitude), and decoded values are the segment midpoints
// scaled to 16 bits (μ-law ±32124 full scale, A-law ±32256). Codes are the
// transmitted octets (μ-law inverted, A-law with even bits inverted).
//
// Thread safety: every function is pure and uses only constant tables.
#ifndef AUDIOSOCKET_BRIDGE_LIB_DSP_G711_H_
#define AUDIOSOCKET_BRIDGE_LIB_DSP_G711_H_

#include <array>
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace audiosocket::dsp {

// How a listener's audio is encoded on the AudioSocket connection.
enum class AudioEncoding : uint8_t {
  kSlin16 = 0,  // signed linear 16-bit little-endian (AudioSocket's default)
  kUlaw = 1,    // G.711 μ-law, one octet per sample
  kAlaw = 2,    // G.711 A-law, one octet per sample
};

// "slin16", "ulaw" or "alaw".
absl::string_view AudioEncodingName(AudioEncoding encoding);

// Parses "slin"/"slin16"/"pcm", "ulaw"/"mulaw"/"pcmu", "alaw"/"pcma"
// (case-insensitive). Unknown names give InvalidArgument listing the choices.
absl::Status ParseAudioEncoding(absl::string_view name, AudioEncoding* encoding);

// Bytes per sample on the wire: 2 for kSlin16, 1 for G.711.
inline int BytesPerSample(AudioEncoding encoding) {
  return encoding == AudioEncoding::kSlin16 ? 2 : 1;
}

namespace g711_internal {
extern const std::array<int16_t, 256> kUlawDecode;
extern const std::array<int16_t, 256> kAlawDecode;
extern const std::array<uint8_t, 8192> kUlawEncode;  // indexed by 14-bit magnitude
extern const std::array<uint8_t, 4096> kAlawEncode;  // indexed by 13-bit magnitude
}  // namespace g711_internal

inline int16_t UlawToLinear(uint8_t code) { return g711_internal::kUlawDecode[code]; }
inline int16_t AlawToLinear(uint8_t code) { return g711_internal::kAlawDecode[code]; }

inline uint8_t LinearToUlaw(int16_t sample) {
  // One's complement for negatives keeps the quantiser symmetric.
  const int magnitude = sample < 0 ? ~sample : sample;
  const uint8_t code = g711_internal::kUlawEncode[magnitude >> 2];
  return sample < 0 ? static_cast<uint8_t>(code & 0x7F) : code;
}

inline uint8_t LinearToAlaw(int16_t sample) {
  const int magnitude = sample < 0 ? ~sample : sample;
  const uint8_t code = g711_internal::kAlawEncode[magnitude >> 3];
  return sample < 0 ? static_cast<uint8_t>(code & 0x7F) : code;
}

// Block conversions. `out` must be at least as long as `in`; exactly
// in.size() samples are written. No allocation.
void UlawToLinear(absl::Span<const uint8_t> in, absl::Span<int16_t> out);
void AlawToLinear(absl::Span<const uint8_t> in, absl::Span<int16_t> out);
void LinearToUlaw(absl::Span<const int16_t> in, absl::Span<uint8_t> out);
void LinearToAlaw(absl::Span<const int16_t> in, absl::Span<uint8_t> out);

// Decodes `in` (encoded as `encoding`) to linear PCM. For kSlin16 `in` holds
// little-endian 16-bit samples and must have an even size. Returns the number
// of samples written; `out` must hold in.size() / BytesPerSample(encoding).
size_t DecodeToLinear(AudioEncoding encoding, absl::Span<const uint8_t> in,
                      absl::Span<int16_t> out);
// Encodes linear PCM as `encoding`. Returns bytes written; `out` must hold
// in.size() * BytesPerSample(encoding).
size_t EncodeFromLinear(AudioEncoding encoding, absl::Span<const int16_t> in,
                        absl::Span<uint8_t> out);

}  // namespace audiosocket::dsp

#endif  // AUDIOSOCKET_BRIDGE_LIB_DSP_G711_H_
