// MessageReader: gRPC's 5-byte message prefix, across any cut of the DATA.

#include "lib/grpc_client/message_reader.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket::grpc_client {
namespace {

using ::testing::ElementsAre;

std::string Framed(const std::string& message) {
  std::string out;
  AppendMessagePrefix(message.size(), &out);
  return out + message;
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
