#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PLAY_COMMAND_DECODER_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PLAY_COMMAND_DECODER_H_

// Reads a backend message that is one PlayAudio command straight from its
// protobuf wire bytes, without building the message. A PlayAudio arrives
// with every frame a backend sends, and protobuf's parse of the three nested
// messages, their strings and the arena's reset cost several times the work
// of everything else the call does with it.
//
// Only the shape protobuf itself writes is read here: the top-level message
// (HandleCallResponse or ClaimCallRequest, whose field 1 is the CallCommand)
// holds the command once and nothing else; the command holds its
// command_id and its PlayAudio, each at most once; the PlayAudio holds pcm,
// sample_rate_hz and response_id, each at most once, in any order. Strings
// are accepted only when ASCII. Anything else (another command, unknown
// fields, a field repeated, a varint longer than its value needs, text that
// protobuf would have to check as UTF-8, bytes that are no message at all)
// is left to protobuf's parse: the decoder answers nullopt and never decides
// that bytes are malformed. So whenever it answers, protobuf would have
// parsed the same fields from the same bytes.
//
// Thread-safe: a pure function.

#include <cstdint>
#include <optional>

#include "absl/strings/string_view.h"

namespace audiosocket {

struct PlayCommandFields {
  // Where a field's bytes are in the message, so the message may be copied
  // and the fields found again in the copy.
  struct Range {
    uint32_t offset = 0;
    uint32_t size = 0;
    absl::string_view In(absl::string_view message) const { return message.substr(offset, size); }
  };
  Range command_id;
  Range pcm;
  Range response_id;
  uint32_t sample_rate_hz = 0;
};

std::optional<PlayCommandFields> DecodePlayCommand(absl::string_view message);

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PLAY_COMMAND_DECODER_H_
