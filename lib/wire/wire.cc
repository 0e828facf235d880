#include "lib/wire/wire.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace audiosocket::wire {
namespace {

constexpr uint8_t kKindHangup = 0x00;
constexpr uint8_t kKindUuid = 0x01;
constexpr uint8_t kKindDtmfEvent = 0x02;
constexpr uint8_t kKindDigitOrControl = 0x03;
constexpr uint8_t kKindAudioFirst = 0x10;
constexpr uint8_t kKindAudioLast = 0x18;
constexpr uint8_t kKindError = 0xff;

bool IsAudioKind(uint8_t kind) { return kind >= kKindAudioFirst && kind <= kKindAudioLast; }

// "uuid (0x01)", or "unknown kind 0x42" for a kind the dialect leaves undefined.
std::string Describe(uint8_t kind, Dialect dialect) {
  if (!IsKnownKind(kind, dialect)) return absl::StrFormat("unknown kind 0x%02x", kind);
  return absl::StrFormat("%s (0x%02x)", KindName(kind, dialect), kind);
}

absl::Status Malformed(uint8_t kind, Dialect dialect, uint64_t offset, absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat(Describe(kind, dialect), " at offset ", offset, ": ", what));
}

constexpr std::array<absl::string_view, 38> kControlNames = {
    "",  // 0 is not an AST_CONTROL_* value
    "hangup",
    "ring",
    "ringing",
    "answer",
    "busy",
    "take_off_hook",
    "off_hook",
    "congestion",
    "flash",
    "wink",
    "option",
    "radio_key",
    "radio_unkey",
    "progress",
    "proceeding",
    "hold",
    "unhold",
    "video_update",
    "t38",
    "source_update",
    "transfer",
    "connected_line",
    "redirecting",
    "t38_parameters",
    "call_completion",
    "source_change",
    "read_action",
    "advice_of_charge",
    "end_of_queue",
    "incomplete",
    "malicious_call_id",
    "update_rtp_peer",
    "private_cause_code",
    "masquerade_notify",
    "stream_topology_request_change",
    "stream_topology_changed",
    "stream_topology_source_changed",
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Validates the header alone: the payload limit, the kind (per the unknown-kind
// policy), fixed lengths, and audio lengths.
absl::Status CheckHeader(uint8_t kind, size_t length, const DecoderOptions& options,
                         uint64_t offset) {
  const Dialect dialect = options.dialect;
  const size_t max_payload = std::min(options.max_payload, kMaxPayload);
  if (length > max_payload) {
    return absl::ResourceExhaustedError(
        absl::StrCat(Describe(kind, dialect), " at offset ", offset, ": payload is ", length,
                     " bytes, which exceeds the maximum of ", max_payload));
  }
  if (!IsKnownKind(kind, dialect)) {
    if (options.unknown_kinds == UnknownKindPolicy::kReject) {
      return Malformed(kind, dialect, offset,
                       absl::StrCat("kind is not defined in the ", DialectName(dialect),
                                    " dialect (the unknown-kind policy is reject)"));
    }
    return absl::OkStatus();
  }
  auto expect = [&](size_t want) -> absl::Status {
    if (length == want) return absl::OkStatus();
    return Malformed(kind, dialect, offset,
                     absl::StrCat("payload is ", length, " bytes, expected ", want));
  };
  switch (kind) {
    case kKindHangup:
      return expect(0);
    case kKindUuid:
      return expect(16);
    case kKindDtmfEvent:
      return expect(6);
    case kKindDigitOrControl:
      return expect(1);
    case kKindError:
      return absl::OkStatus();
    default:
      break;
  }
  // Audio.
  if (length == 0) return Malformed(kind, dialect, offset, "audio payload is empty");
  const size_t bytes_per_sample = options.audio_bytes_per_sample == 1 ? 1 : 2;
  if (length % bytes_per_sample != 0) {
    return Malformed(
        kind, dialect, offset,
        absl::StrCat("audio payload is ", length, " bytes, an odd length for 16-bit samples"));
  }
  return absl::OkStatus();
}

// Builds the message from a payload whose header passed CheckHeader.
absl::StatusOr<Message> ParsePayload(uint8_t kind, absl::Span<const uint8_t> payload,
                                     const DecoderOptions& options, uint64_t offset) {
  const Dialect dialect = options.dialect;
  if (!IsKnownKind(kind, dialect)) return Message(Unknown{kind, payload});
  switch (kind) {
    case kKindHangup:
      return Message(Hangup{});
    case kKindUuid: {
      CallUuid uuid;
      std::copy(payload.begin(), payload.end(), uuid.bytes.begin());
      return Message(uuid);
    }
    case kKindDtmfEvent: {
      const uint8_t state = payload[0];
      const char digit = static_cast<char>(payload[1]);
      if (state > 1) {
        return Malformed(
            kind, dialect, offset,
            absl::StrFormat("DTMF state is %u, expected 1 (start) or 0 (stop)", state));
      }
      if (!IsDtmfDigit(digit)) {
        return Malformed(
            kind, dialect, offset,
            absl::StrFormat("DTMF digit is byte 0x%02x, expected one of 0-9 * # A-D", payload[1]));
      }
      DtmfEvent event;
      event.start = state == 1;
      event.digit = digit;
      event.duration_ms =
          static_cast<uint32_t>(payload[2]) | (static_cast<uint32_t>(payload[3]) << 8) |
          (static_cast<uint32_t>(payload[4]) << 16) | (static_cast<uint32_t>(payload[5]) << 24);
      return Message(event);
    }
    case kKindDigitOrControl:
      if (dialect == Dialect::kExtended) return Message(Control{payload[0]});
      if (!IsDtmfDigit(static_cast<char>(payload[0]))) {
        return Malformed(
            kind, dialect, offset,
            absl::StrFormat("DTMF digit is byte 0x%02x, expected one of 0-9 * # A-D", payload[0]));
      }
      return Message(DtmfDigit{static_cast<char>(payload[0])});
    case kKindError:
      return Message(Error{payload});
    default:
      return Message(Audio{*SampleRateOfKind(kind), payload});
  }
}

// The payload a message carries; `scratch` holds fixed-size payloads.
absl::Span<const uint8_t> PayloadOf(const Message& message, std::array<uint8_t, 16>& scratch) {
  struct Visitor {
    std::array<uint8_t, 16>& scratch;
    absl::Span<const uint8_t> operator()(const Hangup&) const { return {}; }
    absl::Span<const uint8_t> operator()(const CallUuid& m) const {
      scratch = m.bytes;
      return absl::MakeConstSpan(scratch.data(), 16);
    }
    absl::Span<const uint8_t> operator()(const DtmfEvent& m) const {
      scratch[0] = m.start ? 1 : 0;
      scratch[1] = static_cast<uint8_t>(m.digit);
      for (int i = 0; i < 4; ++i) scratch[2 + i] = static_cast<uint8_t>(m.duration_ms >> (8 * i));
      return absl::MakeConstSpan(scratch.data(), 6);
    }
    absl::Span<const uint8_t> operator()(const DtmfDigit& m) const {
      scratch[0] = static_cast<uint8_t>(m.digit);
      return absl::MakeConstSpan(scratch.data(), 1);
    }
    absl::Span<const uint8_t> operator()(const Control& m) const {
      scratch[0] = m.code;
      return absl::MakeConstSpan(scratch.data(), 1);
    }
    absl::Span<const uint8_t> operator()(const Audio& m) const { return m.payload; }
    absl::Span<const uint8_t> operator()(const Error& m) const { return m.payload; }
    absl::Span<const uint8_t> operator()(const Unknown& m) const { return m.payload; }
  };
  return std::visit(Visitor{scratch}, message);
}

absl::Status Refuse(absl::string_view what, uint8_t kind, Dialect dialect, absl::string_view why) {
  return absl::FailedPreconditionError(absl::StrCat("the ", DialectName(dialect),
                                                    " dialect cannot send ", what, " (0x",
                                                    absl::Hex(kind, absl::kZeroPad2), ")", why));
}

// Dialect and peer rules (see Encode in wire.h).
absl::Status CheckAllowed(const Message& message, Dialect dialect, Peer peer) {
  const uint8_t kind = KindOf(message);
  if (std::holds_alternative<Hangup>(message) || std::holds_alternative<Audio>(message)) {
    return absl::OkStatus();
  }
  if (const auto* unknown = std::get_if<Unknown>(&message)) {
    if (IsKnownKind(kind, dialect)) {
      return Refuse(absl::StrCat("an Unknown message of kind ", KindName(kind, dialect)), kind,
                    dialect, ": the kind is defined; send the typed message instead");
    }
    if (peer == Peer::kAsterisk) {
      return Refuse("an unknown kind", unknown->kind, dialect,
                    " to Asterisk: Asterisk hangs up on kinds it does not know");
    }
    return absl::OkStatus();
  }
  if (dialect == Dialect::kAsterisk) {
    if (std::holds_alternative<DtmfEvent>(message)) {
      return Refuse("dtmf", kind, dialect,
                    ": 0x02 is defined only in the extended dialect; stock Asterisk sends a DTMF "
                    "digit as 0x03 and takes DTMF toward the caller only as in-band tones");
    }
    if (std::holds_alternative<Control>(message)) {
      return Refuse("control", kind, dialect,
                    ": control signals exist only in the extended dialect, where 0x03 is control");
    }
    if (peer == Peer::kAsterisk) {
      absl::string_view name = std::holds_alternative<CallUuid>(message)    ? "uuid"
                               : std::holds_alternative<DtmfDigit>(message) ? "dtmf_digit"
                                                                            : "error";
      absl::string_view hint = std::holds_alternative<DtmfDigit>(message)
                                   ? "; send DTMF as in-band tones inside the audio"
                                   : "";
      return Refuse(name, kind, dialect,
                    absl::StrCat(" to Asterisk: stock Asterisk hangs up on any kind but audio "
                                 "and hangup",
                                 hint));
    }
    return absl::OkStatus();
  }
  if (std::holds_alternative<DtmfDigit>(message)) {
    return Refuse("dtmf_digit", kind, dialect,
                  ": in the extended dialect 0x03 is a control signal; send DTMF as dtmf (0x02)");
  }
  return absl::OkStatus();
}

absl::Status CheckWellFormed(const Message& message, size_t payload_size) {
  const uint8_t kind = KindOf(message);
  if (payload_size > kMaxPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot encode kind 0x", absl::Hex(kind, absl::kZeroPad2), ": payload is ",
                     payload_size, " bytes, more than the 65535 a header can carry"));
  }
  if (const auto* audio = std::get_if<Audio>(&message)) {
    if (!AudioKindForRate(audio->sample_rate_hz)) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot encode audio at ", audio->sample_rate_hz,
                       " Hz: AudioSocket has kinds for 8000, 12000, 16000, 24000, 32000, 44100, "
                       "48000, 96000 and 192000 Hz"));
    }
    if (payload_size == 0) {
      return absl::InvalidArgumentError(
          "cannot encode empty audio: Asterisk hangs up on a zero-length payload");
    }
    if (payload_size % 2 != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot encode audio of ", payload_size,
          " bytes: 16-bit samples need an even length (use EncodeRaw for odd-length G.711)"));
    }
  }
  auto check_digit = [](char digit) -> absl::Status {
    if (IsDtmfDigit(digit)) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot encode DTMF digit byte 0x%02x: expected one of 0-9 * # A-D",
                        static_cast<uint8_t>(digit)));
  };
  if (const auto* event = std::get_if<DtmfEvent>(&message)) return check_digit(event->digit);
  if (const auto* digit = std::get_if<DtmfDigit>(&message)) return check_digit(digit->digit);
  return absl::OkStatus();
}

}  // namespace

bool IsKnownKind(uint8_t kind, Dialect dialect) {
  switch (kind) {
    case kKindHangup:
    case kKindUuid:
    case kKindDigitOrControl:
    case kKindError:
      return true;
    case kKindDtmfEvent:
      return dialect == Dialect::kExtended;
    default:
      return IsAudioKind(kind);
  }
}

std::string KindName(uint8_t kind, Dialect dialect) {
  if (!IsKnownKind(kind, dialect)) return absl::StrFormat("unknown(0x%02x)", kind);
  switch (kind) {
    case kKindHangup:
      return "hangup";
    case kKindUuid:
      return "uuid";
    case kKindDtmfEvent:
      return "dtmf";
    case kKindDigitOrControl:
      return dialect == Dialect::kAsterisk ? "dtmf_digit" : "control";
    case kKindError:
      return "error";
    default:
      return "audio";
  }
}

absl::string_view DialectName(Dialect dialect) {
  return dialect == Dialect::kAsterisk ? "asterisk" : "extended";
}

bool ParseDialect(absl::string_view text, Dialect* dialect) {
  if (text == "asterisk") {
    *dialect = Dialect::kAsterisk;
    return true;
  }
  if (text == "extended") {
    *dialect = Dialect::kExtended;
    return true;
  }
  return false;
}

std::optional<int> SampleRateOfKind(uint8_t kind) {
  if (!IsAudioKind(kind)) return std::nullopt;
  return kAudioSampleRates[kind - kKindAudioFirst];
}

std::optional<uint8_t> AudioKindForRate(int sample_rate_hz) {
  for (size_t i = 0; i < kAudioSampleRates.size(); ++i) {
    if (kAudioSampleRates[i] == sample_rate_hz) return static_cast<uint8_t>(kKindAudioFirst + i);
  }
  return std::nullopt;
}

bool IsDtmfDigit(char c) {
  return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D');
}

absl::string_view ControlName(uint8_t code) {
  return code < kControlNames.size() ? kControlNames[code] : absl::string_view();
}

std::string ControlNameOrNumber(uint8_t code) {
  absl::string_view name = ControlName(code);
  if (name.empty()) return absl::StrCat("unknown(", code, ")");
  return std::string(name);
}

std::string ErrorFlagNames(uint8_t flags) {
  std::string out;
  auto add = [&](absl::string_view name) { absl::StrAppend(&out, out.empty() ? "" : "|", name); };
  if (flags & kErrorCallerHangup) add("caller_hangup");
  if (flags & kErrorFrameForwarding) add("frame_forwarding");
  if (flags & kErrorMemory) add("memory");
  const uint8_t rest = flags & ~(kErrorCallerHangup | kErrorFrameForwarding | kErrorMemory);
  if (rest != 0) add(absl::StrFormat("0x%02x", rest));
  return out;
}

std::string CallUuid::ToString() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[bytes[i] >> 4]);
    out.push_back(kHex[bytes[i] & 0x0f]);
  }
  return out;
}

absl::StatusOr<CallUuid> CallUuid::Parse(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid call UUID \"", text, "\": ", why,
        " (expected 8-4-4-4-12 hex digits, e.g. 40325ec2-5efd-4bd3-805f-53576e581d13)"));
  };
  if (text.size() != 36) return bad(absl::StrCat("it is ", text.size(), " characters, not 36"));
  CallUuid uuid;
  size_t out = 0;
  for (size_t i = 0; i < text.size();) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (text[i] != '-') return bad(absl::StrCat("expected '-' at position ", i));
      ++i;
      continue;
    }
    const int hi = HexValue(text[i]);
    const int lo = HexValue(text[i + 1]);
    if (hi < 0 || lo < 0) return bad(absl::StrCat("not a hex digit at position ", i));
    uuid.bytes[out++] = static_cast<uint8_t>(hi * 16 + lo);
    i += 2;
  }
  return uuid;
}

uint8_t KindOf(const Message& message) {
  struct Visitor {
    uint8_t operator()(const Hangup&) const { return kKindHangup; }
    uint8_t operator()(const CallUuid&) const { return kKindUuid; }
    uint8_t operator()(const DtmfEvent&) const { return kKindDtmfEvent; }
    uint8_t operator()(const DtmfDigit&) const { return kKindDigitOrControl; }
    uint8_t operator()(const Control&) const { return kKindDigitOrControl; }
    uint8_t operator()(const Audio& m) const {
      return AudioKindForRate(m.sample_rate_hz).value_or(kKindAudioFirst);
    }
    uint8_t operator()(const Error&) const { return kKindError; }
    uint8_t operator()(const Unknown& m) const { return m.kind; }
  };
  return std::visit(Visitor{}, message);
}

// ---- Decoder.

Decoder::Decoder(DecoderOptions options) : options_(options) {}

absl::Span<uint8_t> Decoder::PrepareWrite(size_t min_size) {
  if (begin_ == end_) begin_ = end_ = 0;
  if (buffer_.size() - end_ < min_size) {
    if (begin_ > 0) {
      // Move the partial message to the front; it is at most one message.
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (buffer_.size() - end_ < min_size) {
      buffer_.resize(std::max(end_ + min_size, buffer_.size() * 2));
    }
  }
  return absl::MakeSpan(buffer_.data() + end_, buffer_.size() - end_);
}

void Decoder::Commit(size_t written) { end_ += std::min(written, buffer_.size() - end_); }

void Decoder::Feed(absl::Span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  absl::Span<uint8_t> room = PrepareWrite(bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  Commit(bytes.size());
}

absl::StatusOr<std::optional<Message>> Decoder::Take(absl::Span<const uint8_t>* bytes) {
  while (error_.ok()) {
    if (bytes->size() < kHeaderSize) return std::optional<Message>();
    const uint8_t* header = bytes->data();
    const uint8_t kind = header[0];
    const size_t length = (static_cast<size_t>(header[1]) << 8) | header[2];
    if (absl::Status status = CheckHeader(kind, length, options_, consumed_); !status.ok()) {
      error_ = std::move(status);
      break;
    }
    if (bytes->size() < kHeaderSize + length) return std::optional<Message>();
    absl::Span<const uint8_t> payload(header + kHeaderSize, length);
    if (!IsKnownKind(kind, options_.dialect) &&
        options_.unknown_kinds == UnknownKindPolicy::kSkip) {
      bytes->remove_prefix(kHeaderSize + length);
      consumed_ += kHeaderSize + length;
      continue;
    }
    absl::StatusOr<Message> message = ParsePayload(kind, payload, options_, consumed_);
    if (!message.ok()) {
      error_ = message.status();
      break;
    }
    bytes->remove_prefix(kHeaderSize + length);
    consumed_ += kHeaderSize + length;
    return std::optional<Message>(*std::move(message));
  }
  return error_;
}

absl::StatusOr<std::optional<Message>> Decoder::Next() {
  absl::Span<const uint8_t> held(buffer_.data() + begin_, end_ - begin_);
  absl::StatusOr<std::optional<Message>> next = Take(&held);
  begin_ = end_ - held.size();
  return next;
}

absl::Status Decoder::DecodeFrom(absl::Span<const uint8_t> input,
                                 absl::FunctionRef<bool(const Message&)> on_message) {
  // A message begun in earlier input: complete it with as few of `input`'s
  // bytes as it needs (the header first, then the payload it announces).
  while (buffered() > 0) {
    const size_t held = buffered();
    size_t whole = kHeaderSize;
    if (held >= kHeaderSize) {
      const uint8_t* header = buffer_.data() + begin_;
      whole += (static_cast<size_t>(header[1]) << 8) | header[2];
    }
    const size_t take = whole > held ? std::min(whole - held, input.size()) : 0;
    Feed(input.first(take));
    input.remove_prefix(take);
    absl::StatusOr<std::optional<Message>> next = Next();
    if (!next.ok()) return next.status();
    if (!next->has_value()) {
      // Either input ran out (the rest comes later) or the header is
      // complete now and the payload is still to take.
      if (input.empty()) return absl::OkStatus();
      continue;
    }
    if (!on_message(**next)) {
      Feed(input);
      return absl::OkStatus();
    }
  }
  if (!error_.ok()) return error_;
  if (buffered() == 0 && buffer_.capacity() > kKeptCapacity) {
    buffer_ = std::vector<uint8_t>();
    begin_ = end_ = 0;
  }
  // The rest in place, without a copy.
  while (true) {
    absl::StatusOr<std::optional<Message>> next = Take(&input);
    if (!next.ok()) return next.status();
    if (!next->has_value() || !on_message(**next)) break;
  }
  Feed(input);  // the start of a message the next input completes
  return absl::OkStatus();
}

absl::StatusOr<Message> DecodeOne(absl::Span<const uint8_t> frame, const DecoderOptions& options) {
  if (frame.size() < kHeaderSize) {
    return absl::InvalidArgumentError(absl::StrCat("frame at offset 0: ", frame.size(),
                                                   " bytes, shorter than the 3-byte header"));
  }
  const uint8_t kind = frame[0];
  const size_t length = (static_cast<size_t>(frame[1]) << 8) | frame[2];
  if (absl::Status status = CheckHeader(kind, length, options, 0); !status.ok()) return status;
  if (frame.size() != kHeaderSize + length) {
    return Malformed(kind, options.dialect, 0,
                     absl::StrCat("the header says ", length, " payload bytes but the frame has ",
                                  frame.size() - kHeaderSize));
  }
  return ParsePayload(kind, frame.subspan(kHeaderSize), options, 0);
}

// ---- Encoding.

size_t EncodedSize(const Message& message) {
  std::array<uint8_t, 16> scratch;
  return kHeaderSize + PayloadOf(message, scratch).size();
}

absl::Status Encode(const Message& message, Dialect dialect, Peer peer, std::vector<uint8_t>* out) {
  std::array<uint8_t, 16> scratch;
  absl::Span<const uint8_t> payload = PayloadOf(message, scratch);
  if (absl::Status status = CheckWellFormed(message, payload.size()); !status.ok()) return status;
  if (absl::Status status = CheckAllowed(message, dialect, peer); !status.ok()) return status;
  EncodeRaw(KindOf(message), payload, out);
  return absl::OkStatus();
}

void EncodeRawHeader(uint8_t kind, uint16_t length, std::vector<uint8_t>* out) {
  const uint8_t header[kHeaderSize] = {kind, static_cast<uint8_t>(length >> 8),
                                       static_cast<uint8_t>(length & 0xff)};
  out->insert(out->end(), header, header + kHeaderSize);
}

void EncodeRaw(uint8_t kind, absl::Span<const uint8_t> payload, std::vector<uint8_t>* out) {
  // A payload over 65535 bytes cannot be framed; the header carries the low
  // 16 bits and the bytes follow, exactly as asked ("without any check").
  EncodeRawHeader(kind, static_cast<uint16_t>(payload.size()), out);
  out->insert(out->end(), payload.begin(), payload.end());
}

}  // namespace audiosocket::wire
