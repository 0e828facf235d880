#include "lib/dsp/g711.h"

#include <array>
#include <cassert>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace audiosocket::dsp {
namespace {

// Decoded magnitude of a μ-law code with the sign bit set (positive),
// following G.711 table 2a: segment e, step q: ((2q + 33) << e) - 33 in
// 14-bit units, scaled by 4 to 16 bits.
constexpr int UlawMagnitude(int exponent, int mantissa) {
  return (((2 * mantissa + 33) << exponent) - 33) * 4;
}

// A-law (G.711 table 1a): segment 0 is 2q + 1, segment s > 0 is
// (2q + 33) << (s - 1), in 13-bit units, scaled by 8.
constexpr int AlawMagnitude(int segment, int mantissa) {
  return (segment == 0 ? 2 * mantissa + 1 : (2 * mantissa + 33) << (segment - 1)) * 8;
}

constexpr std::array<int16_t, 256> MakeUlawDecode() {
  std::array<int16_t, 256> t{};
  for (int code = 0; code < 256; ++code) {
    const int u = ~code & 0xFF;
    const int magnitude = UlawMagnitude((u >> 4) & 7, u & 0xF);
    t[code] = static_cast<int16_t>((u & 0x80) ? -magnitude : magnitude);
  }
  return t;
}

constexpr std::array<int16_t, 256> MakeAlawDecode() {
  std::array<int16_t, 256> t{};
  for (int code = 0; code < 256; ++code) {
    const int a = code ^ 0x55;
    const int magnitude = AlawMagnitude((a >> 4) & 7, a & 0xF);
    t[code] = static_cast<int16_t>((a & 0x80) ? magnitude : -magnitude);
  }
  return t;
}

// μ-law encoder for a 14-bit magnitude m (0..8191): bias by 33, the segment
// is the position of the highest set bit above bit 5, the step the next four
// bits. Result is the positive code (sign bit set), inverted for transmission.
constexpr std::array<uint8_t, 8192> MakeUlawEncode() {
  std::array<uint8_t, 8192> t{};
  for (int m = 0; m < 8192; ++m) {
    int biased = m + 33;
    if (biased > 0x1FFF) biased = 0x1FFF;  // clip to the top of segment 7
    int exponent = 0;
    while (exponent < 7 && (biased >> (exponent + 6)) != 0) ++exponent;
    const int mantissa = (biased >> (exponent + 1)) & 0xF;
    t[m] = static_cast<uint8_t>(~((exponent << 4) | mantissa) & 0xFF);
  }
  return t;
}

// A-law encoder for a 13-bit magnitude m (0..4095): segment 0 covers 0..31
// with step 2, segment s > 0 covers [32 << (s-1), 64 << (s-1)).
constexpr std::array<uint8_t, 4096> MakeAlawEncode() {
  std::array<uint8_t, 4096> t{};
  for (int m = 0; m < 4096; ++m) {
    int segment = 0;
    while (segment < 7 && (m >> (segment + 5)) != 0) ++segment;
    const int mantissa = segment == 0 ? (m >> 1) & 0xF : (m >> segment) & 0xF;
    t[m] = static_cast<uint8_t>(((segment << 4) | mantissa | 0x80) ^ 0x55);
  }
  return t;
}

}  // namespace

// Computed at compile time (constant initialisation, no start-up cost).
namespace g711_internal {
extern const std::array<int16_t, 256> kUlawDecode = MakeUlawDecode();
extern const std::array<int16_t, 256> kAlawDecode = MakeAlawDecode();
extern const std::array<uint8_t, 8192> kUlawEncode = MakeUlawEncode();
extern const std::array<uint8_t, 4096> kAlawEncode = MakeAlawEncode();
}  // namespace g711_internal

absl::string_view AudioEncodingName(AudioEncoding encoding) {
  switch (encoding) {
    case AudioEncoding::kSlin16:
      return "slin16";
    case AudioEncoding::kUlaw:
      return "ulaw";
    case AudioEncoding::kAlaw:
      return "alaw";
  }
  return "unknown";
}

absl::Status ParseAudioEncoding(absl::string_view name, AudioEncoding* encoding) {
  const std::string n = absl::AsciiStrToLower(name);
  if (n == "slin" || n == "slin16" || n == "pcm") {
    *encoding = AudioEncoding::kSlin16;
  } else if (n == "ulaw" || n == "mulaw" || n == "pcmu") {
    *encoding = AudioEncoding::kUlaw;
  } else if (n == "alaw" || n == "pcma") {
    *encoding = AudioEncoding::kAlaw;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown audio encoding \"", name, "\"; use slin16, ulaw or alaw"));
  }
  return absl::OkStatus();
}

void UlawToLinear(absl::Span<const uint8_t> in, absl::Span<int16_t> out) {
  assert(out.size() >= in.size());
  for (size_t i = 0; i < in.size(); ++i) out[i] = UlawToLinear(in[i]);
}

void AlawToLinear(absl::Span<const uint8_t> in, absl::Span<int16_t> out) {
  assert(out.size() >= in.size());
  for (size_t i = 0; i < in.size(); ++i) out[i] = AlawToLinear(in[i]);
}

void LinearToUlaw(absl::Span<const int16_t> in, absl::Span<uint8_t> out) {
  assert(out.size() >= in.size());
  for (size_t i = 0; i < in.size(); ++i) out[i] = LinearToUlaw(in[i]);
}

void LinearToAlaw(absl::Span<const int16_t> in, absl::Span<uint8_t> out) {
  assert(out.size() >= in.size());
  for (size_t i = 0; i < in.size(); ++i) out[i] = LinearToAlaw(in[i]);
}

size_t DecodeToLinear(AudioEncoding encoding, absl::Span<const uint8_t> in,
                      absl::Span<int16_t> out) {
  switch (encoding) {
    case AudioEncoding::kUlaw:
      UlawToLinear(in, out);
      return in.size();
    case AudioEncoding::kAlaw:
      AlawToLinear(in, out);
      return in.size();
    case AudioEncoding::kSlin16:
      break;
  }
  const size_t n = in.size() / 2;
  assert(out.size() >= n);
  for (size_t i = 0; i < n; ++i) {
    out[i] = static_cast<int16_t>(static_cast<uint16_t>(in[2 * i]) |
                                  static_cast<uint16_t>(in[2 * i + 1]) << 8);
  }
  return n;
}

size_t EncodeFromLinear(AudioEncoding encoding, absl::Span<const int16_t> in,
                        absl::Span<uint8_t> out) {
  switch (encoding) {
    case AudioEncoding::kUlaw:
      LinearToUlaw(in, out);
      return in.size();
    case AudioEncoding::kAlaw:
      LinearToAlaw(in, out);
      return in.size();
    case AudioEncoding::kSlin16:
      break;
  }
  assert(out.size() >= 2 * in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    const auto v = static_cast<uint16_t>(in[i]);
    out[2 * i] = static_cast<uint8_t>(v & 0xFF);
    out[2 * i + 1] = static_cast<uint8_t>(v >> 8);
  }
  return 2 * in.size();
}

}  // namespace audiosocket::dsp
