// Fuzz target: the play command decoder against protobuf's parse. See
// play_command_decoder_fuzz.h.

#include "tests/fuzz/play_command_decoder_fuzz.h"

#include <cstdio>
#include <cstdlib>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "audiosocket/bridge/v1/bridge.pb.h"
#include "server/backend/play_command_decoder.h"

namespace audiosocket::fuzz {
namespace {

namespace v1 = bridge::v1;

std::string CompareFields(absl::string_view bytes, const PlayCommandFields& fields,
                          const v1::CallCommand& command, absl::string_view as) {
  if (!command.has_play()) return absl::StrCat("protobuf's ", as, " holds no PlayAudio");
  const v1::PlayAudio& play = command.play();
  if (fields.command_id.In(bytes) != command.command_id()) return absl::StrCat(as, ": command_id");
  if (fields.pcm.In(bytes) != play.pcm()) return absl::StrCat(as, ": pcm");
  if (fields.sample_rate_hz != play.sample_rate_hz()) return absl::StrCat(as, ": sample_rate_hz");
  if (fields.response_id.In(bytes) != play.response_id()) return absl::StrCat(as, ": response_id");
  return "";
}

bool Ascii(absl::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

bool Within(absl::string_view bytes, PlayCommandFields::Range range) {
  return range.offset <= bytes.size() && range.size <= bytes.size() - range.offset;
}

}  // namespace

std::string CheckPlayCommandDecoder(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  const std::optional<PlayCommandFields> fields = DecodePlayCommand(bytes);
  v1::HandleCallResponse response;
  const bool parsed = response.ParseFromArray(data, static_cast<int>(size));
  if (fields.has_value()) {
    if (!Within(bytes, fields->command_id) || !Within(bytes, fields->pcm) ||
        !Within(bytes, fields->response_id)) {
      return "a field's range runs past the message";
    }
    if (!parsed) return "the decoder read bytes protobuf refuses as a HandleCallResponse";
    if (!response.has_command()) return "the decoder read a HandleCallResponse with no command";
    if (std::string diff = CompareFields(bytes, *fields, response.command(), "HandleCallResponse");
        !diff.empty()) {
      return diff;
    }
    v1::ClaimCallRequest request;
    if (!request.ParseFromArray(data, static_cast<int>(size)) || !request.has_command()) {
      return "the decoder read bytes protobuf refuses as a ClaimCallRequest command";
    }
    if (std::string diff = CompareFields(bytes, *fields, request.command(), "ClaimCallRequest");
        !diff.empty()) {
      return diff;
    }
  }
  // The converse, on protobuf's own writing of what it parsed.
  if (parsed && response.has_command() && response.command().has_play() &&
      Ascii(response.command().command_id()) && Ascii(response.command().play().response_id())) {
    // Built field by field: a copy would keep unknown fields protobuf
    // parsed, and write them again.
    const v1::PlayAudio& play = response.command().play();
    v1::HandleCallResponse canonical;
    canonical.mutable_command()->set_command_id(response.command().command_id());
    canonical.mutable_command()->mutable_play()->set_pcm(play.pcm());
    canonical.mutable_command()->mutable_play()->set_sample_rate_hz(play.sample_rate_hz());
    canonical.mutable_command()->mutable_play()->set_response_id(play.response_id());
    const std::string written = canonical.SerializeAsString();
    const std::optional<PlayCommandFields> read = DecodePlayCommand(written);
    if (!read.has_value()) return "the decoder left a play command protobuf wrote to protobuf";
    if (std::string diff = CompareFields(written, *read, canonical.command(), "rewritten message");
        !diff.empty()) {
      return diff;
    }
  }
  return "";
}

}  // namespace audiosocket::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string violation = audiosocket::fuzz::CheckPlayCommandDecoder(data, size);
  if (!violation.empty()) {
    std::fprintf(stderr, "play command decoder property violated: %s\n", violation.c_str());
    std::abort();
  }
  return 0;
}
