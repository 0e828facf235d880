// MessageReader: gRPC's 5-byte message prefix, across any cut of the DATA.

#include "lib/grpc_client/message_reader.h"

#include <zlib.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket::grpc_client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Framed(const std::string& message) {
  std::string out;
  AppendMessagePrefix(message.size(), &out);
  return out + message;
}

// `message` compressed as a gRPC peer does it: gzip's format, or zlib's
// for "deflate".
std::string Compress(MessageEncoding encoding, const std::string& message) {
  z_stream stream{};
  const int window_bits = encoding == MessageEncoding::kGzip ? 15 + 16 : 15;
  EXPECT_EQ(
      deflateInit2(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY),
      Z_OK);
  std::string out(deflateBound(&stream, message.size()), '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(message.data()));
  stream.avail_in = static_cast<uInt>(message.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// A message with the compressed flag set.
std::string FramedCompressed(const std::string& compressed) {
  std::string out;
  AppendMessagePrefix(compressed.size(), &out);
  out[0] = 1;
  return out + compressed;
}

TEST(MessageReaderTest, PrefixIsUncompressedFlagAndBigEndianLength) {
  std::string out;
  AppendMessagePrefix(0x01020304, &out);
  EXPECT_EQ(out, std::string("\x00\x01\x02\x03\x04", 5));
}

TEST(MessageReaderTest, EveryCutOfTheBytesGivesTheSameMessages) {
  const std::string data =
      Framed("hello") + Framed("") + Framed(std::string(300, 'x')) + Framed("last");
  for (size_t chunk = 1; chunk <= data.size(); ++chunk) {
    MessageReader reader(1 << 20);
    std::vector<std::string> messages;
    for (size_t at = 0; at < data.size(); at += chunk) {
      ASSERT_TRUE(reader
                      .Feed(absl::string_view(data).substr(at, chunk),
                            [&](absl::string_view m) { messages.emplace_back(m); })
                      .ok());
    }
    EXPECT_THAT(messages, ElementsAre("hello", "", std::string(300, 'x'), "last")) << chunk;
    EXPECT_TRUE(reader.at_message_boundary());
  }
}

TEST(MessageReaderTest, AStreamCutInsideAMessageIsNotAtABoundary) {
  MessageReader reader(1 << 20);
  const std::string data = Framed("hello");
  ASSERT_TRUE(reader.Feed(absl::string_view(data).substr(0, 7), [](absl::string_view) {}).ok());
  EXPECT_FALSE(reader.at_message_boundary());
}

TEST(MessageReaderTest, ACompressedMessageIsAnError) {
  MessageReader reader(1 << 20);
  const std::string data = std::string("\x01\x00\x00\x00\x01x", 6);
  absl::Status status = reader.Feed(data, [](absl::string_view) { FAIL(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), ::testing::HasSubstr("compressed"));
}

TEST(MessageReaderTest, CompressedMessagesAreInflatedAcrossAnyCutBesidePlainOnes) {
  const std::string big(20000, 'a');  // inflates past the first guess of its size
  for (MessageEncoding encoding : {MessageEncoding::kGzip, MessageEncoding::kDeflate}) {
    const std::string data = FramedCompressed(Compress(encoding, "hello")) + Framed("plain") +
                             FramedCompressed(Compress(encoding, big)) +
                             FramedCompressed(Compress(encoding, ""));
    for (size_t chunk = 1; chunk <= data.size(); chunk += chunk < 40 ? 1 : 37) {
      MessageReader reader(1 << 20);
      reader.set_encoding(encoding);
      std::vector<std::string> messages;
      for (size_t at = 0; at < data.size(); at += chunk) {
        absl::Status status = reader.Feed(absl::string_view(data).substr(at, chunk),
                                          [&](absl::string_view m) { messages.emplace_back(m); });
        ASSERT_TRUE(status.ok()) << status;
      }
      EXPECT_THAT(messages, ElementsAre("hello", "plain", big, "")) << chunk;
      EXPECT_TRUE(reader.at_message_boundary());
    }
  }
}

TEST(MessageReaderTest, ACompressedMessageMayNotInflatePastTheLimit) {
  // 1 MiB of zeros compresses to about a kilobyte: the limit is on what it
  // inflates to, checked while inflating.
  const std::string compressed = Compress(MessageEncoding::kGzip, std::string(1 << 20, '\0'));
  ASSERT_LT(compressed.size(), 4096u);
  MessageReader reader(64 << 10);
  reader.set_encoding(MessageEncoding::kGzip);
  absl::Status status =
      reader.Feed(FramedCompressed(compressed), [](absl::string_view) { FAIL(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(status.message(), HasSubstr("inflates to more than the limit of 65536"));
  // Exactly the limit is taken.
  MessageReader exact(64 << 10);
  exact.set_encoding(MessageEncoding::kGzip);
  size_t size = 0;
  ASSERT_TRUE(
      exact
          .Feed(FramedCompressed(Compress(MessageEncoding::kGzip, std::string(64 << 10, 'z'))),
                [&](absl::string_view m) { size = m.size(); })
          .ok());
  EXPECT_EQ(size, 64u << 10);
}

TEST(MessageReaderTest, CompressedBytesThatDoNotInflateWholeAreAnError) {
  const std::string good = Compress(MessageEncoding::kGzip, std::string(1000, 'q'));
  struct Case {
    const char* what;
    std::string compressed;
    const char* says;
  };
  const Case cases[] = {
      {"not gzip", "this is not gzip", "not valid gzip data"},
      {"cut short", good.substr(0, good.size() - 6), "not valid gzip data"},
      {"bytes after its end", good + "xx", "bytes after its end"},
      {"deflate's format under gzip", Compress(MessageEncoding::kDeflate, "hi"),
       "not valid gzip data"},
  };
  for (const Case& c : cases) {
    MessageReader reader(1 << 20);
    reader.set_encoding(MessageEncoding::kGzip);
    absl::Status status =
        reader.Feed(FramedCompressed(c.compressed), [](absl::string_view) { FAIL(); });
    EXPECT_EQ(status.code(), absl::StatusCode::kInternal) << c.what;
    EXPECT_THAT(status.message(), HasSubstr(c.says)) << c.what;
  }
}

TEST(MessageReaderTest, DamagedCompressedBytesNeverGiveAWrongMessageOrPassTheLimit) {
  // Each cut and each single flipped byte of a compressed message, under a
  // limit near its size: an error, or exactly the message (a flip zlib's
  // checks cannot see, in a stored block's padding, say), never more.
  std::string message;
  for (int i = 0; i < 3000; ++i) message.push_back(static_cast<char>("abcab"[i % 5] + i % 7));
  for (MessageEncoding encoding : {MessageEncoding::kGzip, MessageEncoding::kDeflate}) {
    const std::string good = Compress(encoding, message);
    std::vector<std::string> damaged;
    for (size_t cut = 0; cut < good.size(); ++cut) damaged.push_back(good.substr(0, cut));
    for (size_t at = 0; at < good.size(); ++at) {
      std::string flipped = good;
      flipped[at] = static_cast<char>(flipped[at] ^ (1 << (at % 8)));
      damaged.push_back(flipped);
    }
    for (size_t i = 0; i < damaged.size(); ++i) {
      MessageReader reader(message.size() + 8);
      reader.set_encoding(encoding);
      std::vector<std::string> messages;
      absl::Status status = reader.Feed(FramedCompressed(damaged[i]),
                                        [&](absl::string_view m) { messages.emplace_back(m); });
      if (status.ok()) {
        EXPECT_THAT(messages, ElementsAre(message)) << i;
      } else {
        EXPECT_TRUE(messages.empty()) << i;
        EXPECT_TRUE(status.code() == absl::StatusCode::kInternal ||
                    status.code() == absl::StatusCode::kResourceExhausted)
            << status;
      }
    }
  }
}

TEST(MessageReaderTest, AFlagOtherThanZeroOrOneIsAnError) {
  MessageReader reader(1 << 20);
  reader.set_encoding(MessageEncoding::kGzip);
  absl::Status status =
      reader.Feed(std::string("\x02\x00\x00\x00\x01x", 6), [](absl::string_view) { FAIL(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("flag is 2"));
}

TEST(MessageEncodingTest, GzipDeflateAndIdentityAreReadAndOthersAreNamedUnimplemented) {
  EXPECT_EQ(ParseMessageEncoding("").value(), MessageEncoding::kIdentity);
  EXPECT_EQ(ParseMessageEncoding("identity").value(), MessageEncoding::kIdentity);
  EXPECT_EQ(ParseMessageEncoding("gzip").value(), MessageEncoding::kGzip);
  EXPECT_EQ(ParseMessageEncoding(" GZIP ").value(), MessageEncoding::kGzip);
  EXPECT_EQ(ParseMessageEncoding("deflate").value(), MessageEncoding::kDeflate);
  absl::StatusOr<MessageEncoding> snappy = ParseMessageEncoding("snappy");
  EXPECT_EQ(snappy.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(snappy.status().message(), HasSubstr("\"snappy\" cannot be read here"));
  EXPECT_THAT(snappy.status().message(), HasSubstr("gzip or deflate"));
}

TEST(MessageReaderTest, AMessageOverTheLimitIsRefusedBeforeItIsBuffered) {
  MessageReader reader(100);
  std::string prefix;
  AppendMessagePrefix(101, &prefix);
  // Only the prefix arrived: the reader must not wait for 101 bytes.
  absl::Status status = reader.Feed(prefix.substr(0, 3), [](absl::string_view) { FAIL(); });
  ASSERT_TRUE(status.ok());
  status = reader.Feed(prefix.substr(3), [](absl::string_view) { FAIL(); });
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  MessageReader whole(100);
  EXPECT_EQ(whole.Feed(prefix + std::string(101, 'x'), [](absl::string_view) { FAIL(); }).code(),
            absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace audiosocket::grpc_client
