#include "server/backend/play_command_decoder.h"

#include <limits>

namespace audiosocket {
namespace {

// Tags as protobuf writes them: (field number << 3) | wire type, one byte
// for these field numbers. Wire types: 0 varint, 2 length-delimited.
constexpr uint8_t kCommandTag = 1 << 3 | 2;     // HandleCallResponse/ClaimCallRequest.command
constexpr uint8_t kCommandIdTag = 1 << 3 | 2;   // CallCommand.command_id
constexpr uint8_t kPlayTag = 5 << 3 | 2;        // CallCommand.play
constexpr uint8_t kPcmTag = 1 << 3 | 2;         // PlayAudio.pcm
constexpr uint8_t kSampleRateTag = 2 << 3 | 0;  // PlayAudio.sample_rate_hz
constexpr uint8_t kResponseIdTag = 3 << 3 | 2;  // PlayAudio.response_id

using Range = PlayCommandFields::Range;

// Reads fields of one message, [begin, end) of the whole message's bytes.
class FieldReader {
 public:
  FieldReader(absl::string_view message, Range within)
      : message_(message), at_(within.offset), end_(within.offset + within.size) {}

  bool done() const { return at_ == end_; }

  // The next byte, as a one-byte tag.
  bool Tag(uint8_t* tag) {
    if (at_ == end_) return false;
    *tag = static_cast<uint8_t>(message_[at_++]);
    return true;
  }

  // A varint of at most five bytes, as short as its value allows, whose
  // value fits in 32 bits.
  bool Varint32(uint32_t* value) {
    uint64_t result = 0;
    for (int shift = 0; shift < 35 && at_ < end_; shift += 7) {
      const uint8_t byte = static_cast<uint8_t>(message_[at_++]);
      result |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) {
        // A last byte of zero after others is a longer encoding than needed.
        if (byte == 0 && shift > 0) return false;
        if (result > std::numeric_limits<uint32_t>::max()) return false;
        *value = static_cast<uint32_t>(result);
        return true;
      }
    }
    return false;
  }

  // A length-delimited field's bytes.
  bool Delimited(Range* range) {
    uint32_t size = 0;
    if (!Varint32(&size) || size > end_ - at_) return false;
    *range = Range{at_, size};
    at_ += size;
    return true;
  }

 private:
  absl::string_view message_;
  uint32_t at_;
  uint32_t end_;
};

// Text protobuf would not have to check as UTF-8.
bool Ascii(absl::string_view message, Range range) {
  for (char c : range.In(message)) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

bool DecodePlayAudio(absl::string_view message, Range play, PlayCommandFields* fields) {
  FieldReader reader(message, play);
  bool pcm = false, rate = false, response_id = false;
  while (!reader.done()) {
    uint8_t tag = 0;
    if (!reader.Tag(&tag)) return false;
    switch (tag) {
      case kPcmTag:
        if (pcm || !reader.Delimited(&fields->pcm)) return false;
        pcm = true;
        break;
      case kSampleRateTag:
        if (rate || !reader.Varint32(&fields->sample_rate_hz)) return false;
        rate = true;
        break;
      case kResponseIdTag:
        if (response_id || !reader.Delimited(&fields->response_id) ||
            !Ascii(message, fields->response_id)) {
          return false;
        }
        response_id = true;
        break;
      default:
        return false;
    }
  }
  return true;
}

bool DecodeCallCommand(absl::string_view message, Range command, PlayCommandFields* fields) {
  FieldReader reader(message, command);
  bool command_id = false, play = false;
  while (!reader.done()) {
    uint8_t tag = 0;
    if (!reader.Tag(&tag)) return false;
    switch (tag) {
      case kCommandIdTag:
        if (command_id || !reader.Delimited(&fields->command_id) ||
            !Ascii(message, fields->command_id)) {
          return false;
        }
        command_id = true;
        break;
      case kPlayTag: {
        Range range;
        if (play || !reader.Delimited(&range) || !DecodePlayAudio(message, range, fields)) {
          return false;
        }
        play = true;
        break;
      }
      default:
        return false;
    }
  }
  return play;
}

}  // namespace

std::optional<PlayCommandFields> DecodePlayCommand(absl::string_view message) {
  if (message.size() > std::numeric_limits<uint32_t>::max()) return std::nullopt;
  FieldReader reader(message, Range{0, static_cast<uint32_t>(message.size())});
  uint8_t tag = 0;
  Range command;
  if (!reader.Tag(&tag) || tag != kCommandTag || !reader.Delimited(&command) || !reader.done()) {
    return std::nullopt;
  }
  PlayCommandFields fields;
  if (!DecodeCallCommand(message, command, &fields)) return std::nullopt;
  return fields;
}

}  // namespace audiosocket
