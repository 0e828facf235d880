#ifndef AUDIOSOCKET_BRIDGE_LIB_WIRE_WIRE_H_
#define AUDIOSOCKET_BRIDGE_LIB_WIRE_WIRE_H_

// The AudioSocket wire protocol: message kinds, the two dialects, a streaming
// decoder and an append-style encoder. See docs/PROTOCOL.md.
//
// Framing: 1 byte kind, 2 bytes payload length (big-endian), payload.
//
// Thread-safety: a Decoder belongs to one thread (one per connection);
// free functions are thread-safe.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace audiosocket::wire {

inline constexpr size_t kHeaderSize = 3;
inline constexpr size_t kMaxPayload = 65535;

// The kind byte. 0x03 means a DTMF digit in the asterisk dialect and a
// control signal in the extended one.
enum class Kind : uint8_t {
  kHangup = 0x00,
  kUuid = 0x01,
  kDtmfEvent = 0x02,       // extended dialect only
  kDigitOrControl = 0x03,  // asterisk: DTMF digit; extended: control signal
  kAudio8k = 0x10,
  kAudio12k = 0x11,
  kAudio16k = 0x12,
  kAudio24k = 0x13,
  kAudio32k = 0x14,
  kAudio44k = 0x15,
  kAudio48k = 0x16,
  kAudio96k = 0x17,
  kAudio192k = 0x18,
  kError = 0xff,
};

enum class Dialect : uint8_t {
  kAsterisk,  // stock Asterisk: 0x03 is a DTMF digit; accepts only audio and hangup
  kExtended,  // the extended protocol: 0x02 DTMF start/stop, 0x03 control
};
// "hangup", "uuid", "dtmf", "dtmf_digit" / "control" (by dialect), "audio",
// "error", or "unknown(0xNN)" for a kind the dialect does not define.
std::string KindName(uint8_t kind, Dialect dialect);
absl::string_view DialectName(Dialect dialect);  // "asterisk", "extended"
bool ParseDialect(absl::string_view text, Dialect* dialect);
// True when `dialect` gives `kind` a meaning (hangup, uuid, audio, error and
// 0x03 in both; 0x02 only in the extended dialect).
bool IsKnownKind(uint8_t kind, Dialect dialect);

// Audio kinds 0x10..0x18 and their sample rates in Hz.
inline constexpr std::array<int, 9> kAudioSampleRates = {8000,  12000, 16000, 24000, 32000,
                                                         44100, 48000, 96000, 192000};
std::optional<int> SampleRateOfKind(uint8_t kind);
std::optional<uint8_t> AudioKindForRate(int sample_rate_hz);

// True for the 16 DTMF digits: 0-9, *, #, A-D (upper case).
bool IsDtmfDigit(char c);

// AST_CONTROL_* values (Asterisk include/asterisk/frame.h). Unknown values
// are kept as raw numbers. Names are snake_case ("take_off_hook").
absl::string_view ControlName(uint8_t code);    // e.g. "answer"; "" when unknown
std::string ControlNameOrNumber(uint8_t code);  // the name, or "unknown(N)"

// Error flags Asterisk sets in the first byte of an 0xff payload.
inline constexpr uint8_t kErrorCallerHangup = 0x01;
inline constexpr uint8_t kErrorFrameForwarding = 0x02;
inline constexpr uint8_t kErrorMemory = 0x04;
// e.g. "caller_hangup|memory"; "" for 0.
std::string ErrorFlagNames(uint8_t flags);

// ---- Decoded messages. Views (absl::Span) point into the decoder's buffer
// and stay valid until the next call to any non-const Decoder method.

struct Hangup {
  bool operator==(const Hangup&) const = default;
};

struct CallUuid {
  std::array<uint8_t, 16> bytes{};
  std::string ToString() const;  // canonical 8-4-4-4-12 lower-case hex
  static absl::StatusOr<CallUuid> Parse(absl::string_view text);
  bool operator==(const CallUuid& other) const { return bytes == other.bytes; }
};

// Extended dialect 0x02.
struct DtmfEvent {
  bool start = false;        // wire state 1 = start, 0 = stop
  char digit = '0';          // one of IsDtmfDigit
  uint32_t duration_ms = 0;  // 0 on start
  bool operator==(const DtmfEvent&) const = default;
};

// Asterisk dialect 0x03: one digit, sent at the end of the digit.
struct DtmfDigit {
  char digit = '0';
  bool operator==(const DtmfDigit&) const = default;
};

// Extended dialect 0x03.
struct Control {
  uint8_t code = 0;  // AST_CONTROL_* value
  bool operator==(const Control&) const = default;
};

// 0x10..0x18. `payload` is little-endian PCM (or G.711 bytes when a listener
// says so; the codec does not interpret samples).
struct Audio {
  int sample_rate_hz = 8000;
  absl::Span<const uint8_t> payload;
};

// 0xff. Asterisk's payload is one byte of flags; the payload is optional.
struct Error {
  absl::Span<const uint8_t> payload;
  uint8_t flags() const { return payload.empty() ? 0 : payload[0]; }
};

// A kind the dialect does not define, when the policy keeps it.
struct Unknown {
  uint8_t kind = 0;
  absl::Span<const uint8_t> payload;
};

using Message =
    std::variant<Hangup, CallUuid, DtmfEvent, DtmfDigit, Control, Audio, Error, Unknown>;

// The kind byte `message` is written with.
uint8_t KindOf(const Message& message);

// ---- Decoding.

enum class UnknownKindPolicy : uint8_t {
  kReject,  // a kind the dialect does not define is a decoding error
  kSkip,    // ...is consumed and dropped
  kKeep,    // ...is returned as Unknown (policy belongs to the caller)
};

struct DecoderOptions {
  Dialect dialect = Dialect::kAsterisk;
  // Payloads longer than this are an error as soon as the header is read.
  size_t max_payload = kMaxPayload;
  UnknownKindPolicy unknown_kinds = UnknownKindPolicy::kReject;
  // 2 for signed linear (an odd audio length is an error); 1 for G.711.
  int audio_bytes_per_sample = 2;
};

// An incremental decoder: bytes go in in any chunking, typed messages come
// out. Allocation-free in steady state: the internal buffer grows to the most
// bytes held at once (the largest message, or the largest Feed) and is reused.
// DecodeFrom decodes in place from the caller's buffer instead, so that a
// decoder fed whole messages holds no buffer at all: a server with many
// connections then keeps one read buffer per thread, not one per connection.
//
// Checks that need only the header (unknown kind, payload over the maximum,
// wrong fixed length, odd or empty audio) fail as soon as the header is
// complete; checks of payload contents (DTMF state and digit) when the whole
// message is there. The outcome never depends on how the input was chunked.
//
// Errors name the kind, the stream offset of the message and what was wrong,
// e.g. "uuid (0x01) at offset 0: payload is 15 bytes, expected 16". After an
// error the decoder stays failed and returns the same error.
class Decoder {
 public:
  explicit Decoder(DecoderOptions options = {});

  // Copies `bytes` into the buffer.
  void Feed(absl::Span<const uint8_t> bytes);

  // Zero-copy input: a writable region of at least `min_size` bytes at the
  // end of the buffer (e.g. for read(2)), then Commit the bytes written.
  absl::Span<uint8_t> PrepareWrite(size_t min_size);
  void Commit(size_t written);

  // The next complete message, std::nullopt when more bytes are needed, or
  // the error. Views in the message are valid until the next non-const call.
  absl::StatusOr<std::optional<Message>> Next();

  // Decodes every whole message in what is held from earlier input followed
  // by `input`, calling `on_message` for each in order; its views are valid
  // only during that call. Only the bytes of a message split across calls
  // are copied (and kept until it completes); a buffer grown past
  // kKeptCapacity for one large split message is released as it completes.
  // Stops early, keeping the rest of `input`, when `on_message` returns
  // false. Returns the decoder's error (as Next does) or OK.
  absl::Status DecodeFrom(absl::Span<const uint8_t> input,
                          absl::FunctionRef<bool(const Message&)> on_message);
  static constexpr size_t kKeptCapacity = 8192;  // one 20 ms frame at 192 kHz

  // Bytes of buffer the decoder holds (its memory, not what it buffered).
  size_t capacity() const { return buffer_.capacity(); }

  // Bytes held that do not yet form a whole message.
  size_t buffered() const { return end_ - begin_; }
  // Total bytes consumed as whole messages since construction.
  uint64_t consumed() const { return consumed_; }
  const DecoderOptions& options() const { return options_; }

 private:
  // Decodes the next whole message at the front of `*bytes` (skipping
  // unknown kinds under kSkip) and removes it from `*bytes`; std::nullopt
  // when `*bytes` holds no whole message. Latches errors in error_.
  absl::StatusOr<std::optional<Message>> Take(absl::Span<const uint8_t>* bytes);

  DecoderOptions options_;
  std::vector<uint8_t> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  uint64_t consumed_ = 0;
  absl::Status error_;
};

// Decodes exactly one whole message from `frame` (header included); a frame
// shorter or longer than its header says is an error. Under kSkip an unknown
// kind is returned as Unknown (there is nothing to skip to). Views point into
// `frame`.
absl::StatusOr<Message> DecodeOne(absl::Span<const uint8_t> frame, const DecoderOptions& options);

// ---- Encoding.

// Who receives what we encode; decides which kinds may be sent.
enum class Peer : uint8_t {
  kAsterisk,  // we are the server. Stock Asterisk hangs up on anything but
              // audio and hangup, so the asterisk dialect refuses the rest.
  kServer,    // we play Asterisk's part (emulator): anything Asterisk may send.
};

// The bytes `message` encodes to (header included).
size_t EncodedSize(const Message& message);

// Appends `message` (header and payload) to `out`. Fails, appending nothing,
// when the dialect or peer does not allow the kind (e.g. "the asterisk
// dialect cannot send dtmf to Asterisk: stock Asterisk hangs up on it; use
// in-band tones"), or when the message is malformed (odd audio length, digit
// out of range, payload over 65535 bytes).
//
// What each dialect and peer accept (FAILED_PRECONDITION otherwise):
//   asterisk dialect, to Asterisk: Hangup, Audio.
//   asterisk dialect, to a server: Hangup, CallUuid, DtmfDigit, Audio, Error.
//   extended dialect, either peer: Hangup, CallUuid, DtmfEvent, Control,
//                                  Audio, Error.
//   Unknown: only to a server, and only for a kind the dialect does not define.
// Audio is checked as signed linear (even length); send odd-length G.711 with
// EncodeRaw. Appending allocates only when `out` lacks capacity.
absl::Status Encode(const Message& message, Dialect dialect, Peer peer, std::vector<uint8_t>* out);

// Appends raw header and payload without any check: for tools that must
// write malformed messages on purpose.
void EncodeRaw(uint8_t kind, absl::Span<const uint8_t> payload, std::vector<uint8_t>* out);
void EncodeRawHeader(uint8_t kind, uint16_t length, std::vector<uint8_t>* out);

}  // namespace audiosocket::wire

#endif  // AUDIOSOCKET_BRIDGE_LIB_WIRE_WIRE_H_
