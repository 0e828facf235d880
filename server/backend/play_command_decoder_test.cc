#include "server/backend/play_command_decoder.h"

#include <cstdint>
#include <optional>
#include <string>

#include "audiosocket/bridge/v1/bridge.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket {
namespace {

namespace v1 = bridge::v1;

v1::CallCommand PlayCommand(std::string pcm, uint32_t rate, std::string response_id,
                            std::string command_id) {
  v1::CallCommand command;
  command.set_command_id(std::move(command_id));
  v1::PlayAudio* play = command.mutable_play();
  play->set_pcm(std::move(pcm));
  play->set_sample_rate_hz(rate);
  play->set_response_id(std::move(response_id));
  return command;
}

std::string InResponse(const v1::CallCommand& command) {
  v1::HandleCallResponse response;
  *response.mutable_command() = command;
  return response.SerializeAsString();
}

std::string InClaimRequest(const v1::CallCommand& command) {
  v1::ClaimCallRequest request;
  *request.mutable_command() = command;
  return request.SerializeAsString();
}

// The decoder's fields against protobuf's parse of the same bytes.
void ExpectSameAsProtobuf(const std::string& bytes) {
  std::optional<PlayCommandFields> fields = DecodePlayCommand(bytes);
  ASSERT_TRUE(fields.has_value());
  v1::HandleCallResponse parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  ASSERT_TRUE(parsed.command().has_play());
  EXPECT_EQ(fields->command_id.In(bytes), parsed.command().command_id());
  EXPECT_EQ(fields->pcm.In(bytes), parsed.command().play().pcm());
  EXPECT_EQ(fields->sample_rate_hz, parsed.command().play().sample_rate_hz());
  EXPECT_EQ(fields->response_id.In(bytes), parsed.command().play().response_id());
}

// A field's bytes as protobuf writes them: one-byte tag, length, bytes.
std::string Field(uint8_t tag, const std::string& bytes) {
  std::string out(1, static_cast<char>(tag));
  uint64_t size = bytes.size();
  do {
    out.push_back(static_cast<char>((size & 0x7f) | (size > 0x7f ? 0x80 : 0)));
    size >>= 7;
  } while (size != 0);
  return out + bytes;
}

TEST(PlayCommandDecoderTest, ReadsEveryPlayCommandProtobufWrites) {
  for (size_t pcm_bytes : {0, 2, 320, 16382, 70000}) {
    for (uint32_t rate : {0u, 8000u, 192000u, 4294967295u}) {
      for (const char* response_id : {"", "r", "a-response-id-longer-than-sso"}) {
        for (const char* command_id : {"", "c17"}) {
          std::string pcm(pcm_bytes, '\0');
          for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = static_cast<char>(i * 7);
          const v1::CallCommand command = PlayCommand(pcm, rate, response_id, command_id);
          SCOPED_TRACE(command.ShortDebugString().substr(0, 200));
          ExpectSameAsProtobuf(InResponse(command));
          // A ClaimCallRequest's command is field 1 too: the same bytes.
          EXPECT_EQ(InClaimRequest(command), InResponse(command));
        }
      }
    }
  }
}

TEST(PlayCommandDecoderTest, ReadsFieldsInAnyOrderAndEmptyOnesWrittenOut) {
  const std::string play = Field(0x1a, "r9") + std::string("\x10\x80\x7d", 3) +  // 16000
                           Field(0x0a, std::string("\x01\x02", 2));
  ExpectSameAsProtobuf(Field(0x0a, Field(0x2a, play) + Field(0x0a, "id")));
  // Empty strings and a zero rate written out, which protobuf never does
  // but reads.
  const std::string zeros = Field(0x0a, "") + std::string("\x10\x00", 2) + Field(0x1a, "");
  ExpectSameAsProtobuf(Field(0x0a, Field(0x0a, "") + Field(0x2a, zeros)));
  // An empty PlayAudio is a play of nothing.
  ExpectSameAsProtobuf(Field(0x0a, Field(0x2a, "")));
}

TEST(PlayCommandDecoderTest, LeavesEveryOtherMessageToProtobuf) {
  const v1::CallCommand play = PlayCommand("\x01\x02", 8000, "r", "c");
  v1::CallCommand mark;
  mark.mutable_mark()->set_name("m");
  v1::HandleCallResponse accept;
  accept.mutable_accept()->set_command_id("a");
  v1::ClaimCallRequest claim;
  claim.mutable_claim()->set_call_id("call");
  const std::string play_fields = Field(0x0a, "\x01\x02");
  struct Case {
    const char* what;
    std::string bytes;
  };
  const Case cases[] = {
      {"nothing", ""},
      {"an empty message", Field(0x0a, "")},
      {"a command with no play", Field(0x0a, Field(0x0a, "id"))},
      {"a mark", InResponse(mark)},
      {"an accept", accept.SerializeAsString()},
      {"a claim", claim.SerializeAsString()},
      {"the command twice (protobuf merges)", InResponse(play) + InResponse(play)},
      {"a field after the command", InResponse(play) + std::string("\x10\x01", 2)},
      {"play twice in the command", Field(0x0a, Field(0x2a, play_fields) + Field(0x2a, ""))},
      {"command_id twice", Field(0x0a, Field(0x0a, "a") + Field(0x0a, "b") + Field(0x2a, ""))},
      {"pcm twice (protobuf keeps the last)", Field(0x0a, Field(0x2a, play_fields + play_fields))},
      {"the rate twice", Field(0x0a, Field(0x2a, std::string("\x10\x01\x10\x02", 4)))},
      {"response_id twice", Field(0x0a, Field(0x2a, Field(0x1a, "a") + Field(0x1a, "b")))},
      {"an unknown field in the play", Field(0x0a, Field(0x2a, play_fields + Field(0x22, "x")))},
      {"an unknown field in the command", Field(0x0a, Field(0x2a, "") + Field(0x7a, "x"))},
      {"a rate as a length-delimited field", Field(0x0a, Field(0x2a, Field(0x12, "x")))},
      {"a rate longer than it needs", Field(0x0a, Field(0x2a, std::string("\x10\x81\x00", 3)))},
      {"a rate past 32 bits", Field(0x0a, Field(0x2a, std::string("\x10\x80\x80\x80\x80\x10", 6)))},
      {"a length past the end", std::string("\x0a\x05\x2a\x00", 4)},
      {"a length that never ends", std::string("\x0a\xff", 2)},
      {"a response id in UTF-8", Field(0x0a, Field(0x2a, Field(0x1a, "r\xc3\xa9")))},
      {"a response id that is not UTF-8", Field(0x0a, Field(0x2a, Field(0x1a, "\xff")))},
      {"a command id in UTF-8", Field(0x0a, Field(0x0a, "\xc3\xa9") + Field(0x2a, ""))},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(DecodePlayCommand(c.bytes), std::nullopt) << c.what;
  }
}

}  // namespace
}  // namespace audiosocket
