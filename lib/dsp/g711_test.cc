#include "lib/dsp/g711.h"

#include <cstdlib>
#include <vector>

#include "gtest/gtest.h"

namespace audiosocket::dsp {
namespace {

// G.711 decoded values computed independently of the library: μ-law segment
// e, step q -> ((2q + 33) * 2^e - 33) * 4; A-law segment 0 -> (2q + 1) * 8,
// segment s > 0 -> (2q + 33) * 2^(s-1) * 8.
int ReferenceUlaw(int code) {
  const int u = 0xFF - code;  // octets are transmitted inverted
  const int e = (u >> 4) & 7, q = u & 15;
  const int m = ((2 * q + 33) * (1 << e) - 33) * 4;
  return (u & 0x80) ? -m : m;
}

int ReferenceAlaw(int code) {
  const int a = code ^ 0x55;  // even bits inverted
  const int s = (a >> 4) & 7, q = a & 15;
  const int m = (s == 0 ? 2 * q + 1 : (2 * q + 33) * (1 << (s - 1))) * 8;
  return (a & 0x80) ? m : -m;
}

TEST(G711, KnownTablePoints) {
  EXPECT_EQ(UlawToLinear(0x00), -32124);
  EXPECT_EQ(UlawToLinear(0x80), 32124);
  EXPECT_EQ(UlawToLinear(0xFF), 0);
  EXPECT_EQ(UlawToLinear(0x7F), 0);
  EXPECT_EQ(AlawToLinear(0x55), -8);
  EXPECT_EQ(AlawToLinear(0xD5), 8);
  EXPECT_EQ(AlawToLinear(0x2A), -32256);
  EXPECT_EQ(AlawToLinear(0xAA), 32256);
  EXPECT_EQ(LinearToUlaw(0), 0xFF);
  EXPECT_EQ(LinearToUlaw(32767), 0x80);
  EXPECT_EQ(LinearToUlaw(-32768), 0x00);
  EXPECT_EQ(LinearToAlaw(0), 0xD5);
  EXPECT_EQ(LinearToAlaw(-1), 0x55);
  EXPECT_EQ(LinearToAlaw(32767), 0xAA);
  EXPECT_EQ(LinearToAlaw(-32768), 0x2A);
}

TEST(G711, AllDecodedValuesMatchReference) {
  for (int c = 0; c < 256; ++c) {
    EXPECT_EQ(UlawToLinear(static_cast<uint8_t>(c)), ReferenceUlaw(c)) << "ulaw " << c;
    EXPECT_EQ(AlawToLinear(static_cast<uint8_t>(c)), ReferenceAlaw(c)) << "alaw " << c;
  }
}

// Encoding follows the standard's decision intervals: every input decodes to
// the midpoint of the interval holding it, so the error is at most half that
// segment's step (plus one step of the 14-bit μ-law or 13-bit A-law input
// grid), and the decoded value never decreases as the input grows.
TEST(G711, EncodeStaysInsideDecisionIntervalAndIsMonotonic) {
  int prev_u = -40000, prev_a = -40000;
  for (int x = -32768; x <= 32767; ++x) {
    const auto s = static_cast<int16_t>(x);
    const uint8_t u = LinearToUlaw(s);
    const uint8_t a = LinearToAlaw(s);
    const int du = UlawToLinear(u);
    const int da = AlawToLinear(a);
    ASSERT_GE(du, prev_u) << x;
    ASSERT_GE(da, prev_a) << x;
    prev_u = du;
    prev_a = da;
    const int ue = ((0xFF - u) >> 4) & 7;
    const int as = ((a ^ 0x55) >> 4) & 7;
    const int u_half = 4 << ue;
    const int a_half = as == 0 ? 8 : 8 << (as - 1);
    // Inputs beyond the top level clip to it.
    if (std::abs(x) <= 32124) {
      ASSERT_LE(std::abs(x - du), u_half + 4) << x;
    }
    if (std::abs(x) <= 32256) {
      ASSERT_LE(std::abs(x - da), a_half + 8) << x;
    }
  }
}

TEST(G711, DecodeThenEncodeRoundTrips) {
  for (int c = 0; c < 256; ++c) {
    const auto code = static_cast<uint8_t>(c);
    // μ-law has two zeros (0x7F is "negative zero"); both decode to 0.
    EXPECT_EQ(LinearToUlaw(UlawToLinear(code)), c == 0x7F ? 0xFF : c) << c;
    EXPECT_EQ(LinearToAlaw(AlawToLinear(code)), c) << c;
  }
}

TEST(G711, BlockConversionsAndEncodings) {
  const std::vector<int16_t> pcm = {0, 1000, -1000, 32767, -32768};
  std::vector<uint8_t> bytes(pcm.size() * 2);
  std::vector<int16_t> back(pcm.size());
  for (AudioEncoding e : {AudioEncoding::kSlin16, AudioEncoding::kUlaw, AudioEncoding::kAlaw}) {
    const size_t n = EncodeFromLinear(e, pcm, absl::MakeSpan(bytes));
    EXPECT_EQ(n, pcm.size() * BytesPerSample(e));
    EXPECT_EQ(DecodeToLinear(e, absl::MakeConstSpan(bytes).subspan(0, n), absl::MakeSpan(back)),
              pcm.size());
    for (size_t i = 0; i < pcm.size(); ++i) {
      EXPECT_NEAR(back[i], pcm[i], e == AudioEncoding::kSlin16 ? 0 : 1100) << AudioEncodingName(e);
    }
  }
  EXPECT_EQ(bytes.size(), 10u);
}

TEST(G711, ParsesEncodingNames) {
  AudioEncoding e;
  ASSERT_TRUE(ParseAudioEncoding("ULAW", &e).ok());
  EXPECT_EQ(e, AudioEncoding::kUlaw);
  ASSERT_TRUE(ParseAudioEncoding("pcma", &e).ok());
  EXPECT_EQ(e, AudioEncoding::kAlaw);
  ASSERT_TRUE(ParseAudioEncoding("slin16", &e).ok());
  EXPECT_EQ(e, AudioEncoding::kSlin16);
  const absl::Status bad = ParseAudioEncoding("gsm", &e);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("slin16, ulaw or alaw"), absl::string_view::npos);
}

}  // namespace
}  // namespace audiosocket::dsp
