// Runs every golden vector in tests/testdata/wire/ through the decoder (whole
// and one byte at a time) and, for the encode direction, through Encode.

#include "lib/wire/golden.h"

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/wire/describe.h"
#include "lib/wire/wire.h"

namespace audiosocket::wire::golden {
namespace {

std::vector<Vector> AllVectors() {
  absl::StatusOr<std::vector<Vector>> vectors = LoadVectorDir(VectorDir());
  return vectors.ok() ? *vectors : std::vector<Vector>();
}

TEST(GoldenFilesTest, ParseAndHaveUniqueNames) {
  absl::StatusOr<std::vector<Vector>> vectors = LoadVectorDir(VectorDir());
  ASSERT_TRUE(vectors.ok()) << vectors.status();
  EXPECT_GE(vectors->size(), 60u);
  std::vector<std::string> names;
  for (const Vector& v : *vectors) {
    EXPECT_THAT(names, ::testing::Not(::testing::Contains(v.name))) << v.where;
    names.push_back(v.name);
    EXPECT_FALSE(v.bytes.empty()) << v.where;
    EXPECT_TRUE(v.error_code.empty() || v.encode == EncodeCheck::kNone)
        << v.where << ": an error vector has nothing to encode";
  }
}

// What decoding `bytes` fed in chunks of `chunk` bytes gives.
struct Decoded {
  std::vector<std::string> messages;  // FieldsToText of each
  absl::Status status;
  size_t buffered = 0;
  uint64_t consumed = 0;
};

Decoded DecodeAll(const Vector& v, size_t chunk) {
  Decoded out;
  Decoder decoder(v.options);
  for (size_t i = 0; i < v.bytes.size() && out.status.ok(); i += chunk) {
    const size_t n = std::min(chunk, v.bytes.size() - i);
    decoder.Feed(absl::MakeConstSpan(v.bytes.data() + i, n));
    while (true) {
      absl::StatusOr<std::optional<Message>> next = decoder.Next();
      if (!next.ok()) {
        out.status = next.status();
        break;
      }
      if (!next->has_value()) break;
      out.messages.push_back(
          FieldsToText(DescribeMessage(**next, v.dialect, v.options.audio_bytes_per_sample)));
    }
  }
  out.buffered = decoder.buffered();
  out.consumed = decoder.consumed();
  return out;
}

class GoldenTest : public ::testing::TestWithParam<Vector> {};

TEST_P(GoldenTest, Decodes) {
  const Vector& v = GetParam();
  SCOPED_TRACE(v.where);
  std::vector<std::string> expected;
  for (const ExpectedMessage& m : v.messages) expected.push_back(m.ToText());
  for (size_t chunk : {v.bytes.size(), size_t{1}, size_t{2}, size_t{5}}) {
    SCOPED_TRACE(absl::StrCat("chunks of ", chunk, " bytes"));
    Decoded got = DecodeAll(v, chunk);
    EXPECT_THAT(got.messages, ::testing::ElementsAreArray(expected));
    if (v.error_code.empty()) {
      EXPECT_TRUE(got.status.ok()) << got.status;
      EXPECT_EQ(got.buffered, 0u);
      EXPECT_EQ(got.consumed, v.bytes.size());
    } else if (v.error_code == "truncated") {
      EXPECT_TRUE(got.status.ok()) << got.status;
      EXPECT_EQ(got.consumed, v.error_offset);
      EXPECT_EQ(got.buffered, v.bytes.size() - v.error_offset);
    } else {
      ASSERT_FALSE(got.status.ok());
      const std::string text(got.status.message());
      EXPECT_THAT(text, ::testing::HasSubstr(std::string(ErrorPhrase(v.error_code))));
      EXPECT_THAT(text, ::testing::HasSubstr(absl::StrCat(" at offset ", v.error_offset, ":")));
      // The error names the kind: its name and byte, or "unknown kind 0xNN".
      ASSERT_LT(v.error_offset, v.bytes.size());
      const uint8_t kind = v.bytes[v.error_offset];
      const std::string kind_text =
          IsKnownKind(kind, v.dialect)
              ? absl::StrCat(KindName(kind, v.dialect), " (0x", absl::Hex(kind, absl::kZeroPad2),
                             ")")
              : absl::StrCat("unknown kind 0x", absl::Hex(kind, absl::kZeroPad2));
      EXPECT_THAT(text, ::testing::StartsWith(kind_text));
      EXPECT_EQ(got.consumed, v.error_offset);
    }
  }
}

// The vectors with an `encode:` line.
std::vector<Vector> EncodeVectors() {
  std::vector<Vector> out;
  for (Vector& v : AllVectors()) {
    if (v.encode != EncodeCheck::kNone) out.push_back(std::move(v));
  }
  return out;
}

class GoldenEncodeTest : public ::testing::TestWithParam<Vector> {};

TEST_P(GoldenEncodeTest, EncodesFromTheSameTable) {
  const Vector& v = GetParam();
  SCOPED_TRACE(v.where);
  std::vector<uint8_t> out;
  size_t offset = 0;
  for (const ExpectedMessage& expected : v.messages) {
    ASSERT_LE(offset + kHeaderSize, v.bytes.size());
    const size_t length = (size_t{v.bytes[offset + 1]} << 8) | v.bytes[offset + 2];
    ASSERT_LE(offset + kHeaderSize + length, v.bytes.size());
    absl::Span<const uint8_t> frame(v.bytes.data() + offset, kHeaderSize + length);
    absl::StatusOr<Message> message = BuildMessage(expected, v.dialect, frame);
    ASSERT_TRUE(message.ok()) << message.status();
    EXPECT_EQ(EncodedSize(*message), frame.size());
    const size_t before = out.size();
    absl::Status status = Encode(*message, v.dialect, v.peer, &out);
    if (v.encode == EncodeCheck::kRefused) {
      EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
      EXPECT_EQ(out.size(), before) << "a refused Encode appended bytes";
      return;
    }
    ASSERT_TRUE(status.ok()) << status;
    // DecodeOne of the frame agrees with the table.
    absl::StatusOr<Message> one = DecodeOne(frame, v.options);
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_EQ(FieldsToText(DescribeMessage(*one, v.dialect, v.options.audio_bytes_per_sample)),
              expected.ToText());
    offset += frame.size();
  }
  EXPECT_EQ(out, v.bytes);
}

INSTANTIATE_TEST_SUITE_P(Vectors, GoldenTest, ::testing::ValuesIn(AllVectors()),
                         [](const ::testing::TestParamInfo<Vector>& info) {
                           return info.param.name;
                         });
INSTANTIATE_TEST_SUITE_P(Vectors, GoldenEncodeTest, ::testing::ValuesIn(EncodeVectors()),
                         [](const ::testing::TestParamInfo<Vector>& info) {
                           return info.param.name;
                         });

}  // namespace
}  // namespace audiosocket::wire::golden
