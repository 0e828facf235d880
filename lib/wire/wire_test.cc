// Unit tests of the codec: names and tables, every malformed case, every
// chunking of a stream, round trips, the encoder's dialect and peer rules.

#include "lib/wire/wire.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket::wire {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::vector<uint8_t> Frame(uint8_t kind, std::vector<uint8_t> payload) {
  std::vector<uint8_t> out;
  EncodeRaw(kind, payload, &out);
  return out;
}

std::vector<uint8_t> Concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

DecoderOptions Options(Dialect dialect, UnknownKindPolicy policy = UnknownKindPolicy::kReject) {
  DecoderOptions o;
  o.dialect = dialect;
  o.unknown_kinds = policy;
  return o;
}

// Re-encodes each decoded message as it comes (views die at the next call).
struct Outcome {
  std::vector<uint8_t> reencoded;
  std::vector<uint8_t> kinds;
  absl::Status status;
};

// How input reaches the decoder: Feed then Next, or DecodeFrom in place.
enum class Input { kFeed, kInPlace };

Outcome DecodeInChunks(const std::vector<uint8_t>& bytes, const DecoderOptions& options,
                       size_t chunk, Input input = Input::kFeed) {
  Outcome run;
  Decoder decoder(options);
  for (size_t i = 0; i < bytes.size() && run.status.ok(); i += chunk) {
    const auto piece = absl::MakeConstSpan(bytes.data() + i, std::min(chunk, bytes.size() - i));
    if (input == Input::kInPlace) {
      run.status = decoder.DecodeFrom(piece, [&](const Message& message) {
        run.kinds.push_back(KindOf(message));
        absl::Status s = Encode(message, options.dialect, Peer::kServer, &run.reencoded);
        EXPECT_TRUE(s.ok()) << s;
        return true;
      });
      continue;
    }
    decoder.Feed(piece);
    while (true) {
      absl::StatusOr<std::optional<Message>> next = decoder.Next();
      if (!next.ok()) {
        run.status = next.status();
        break;
      }
      if (!next->has_value()) break;
      run.kinds.push_back(KindOf(**next));
      absl::Status s = Encode(**next, options.dialect, Peer::kServer, &run.reencoded);
      EXPECT_TRUE(s.ok()) << s;
    }
  }
  return run;
}

// ---- Names and tables.

TEST(KindNameTest, NamesByDialect) {
  EXPECT_EQ(KindName(0x00, Dialect::kAsterisk), "hangup");
  EXPECT_EQ(KindName(0x01, Dialect::kExtended), "uuid");
  EXPECT_EQ(KindName(0x02, Dialect::kExtended), "dtmf");
  EXPECT_EQ(KindName(0x02, Dialect::kAsterisk), "unknown(0x02)");
  EXPECT_EQ(KindName(0x03, Dialect::kAsterisk), "dtmf_digit");
  EXPECT_EQ(KindName(0x03, Dialect::kExtended), "control");
  EXPECT_EQ(KindName(0x10, Dialect::kAsterisk), "audio");
  EXPECT_EQ(KindName(0x18, Dialect::kExtended), "audio");
  EXPECT_EQ(KindName(0x19, Dialect::kExtended), "unknown(0x19)");
  EXPECT_EQ(KindName(0xff, Dialect::kAsterisk), "error");
  EXPECT_EQ(KindName(0xfe, Dialect::kAsterisk), "unknown(0xfe)");
}

TEST(KindNameTest, KnownKindsAreExactlyTheProtocolsKinds) {
  for (int k = 0; k < 256; ++k) {
    const auto kind = static_cast<uint8_t>(k);
    const bool common = k <= 1 || k == 3 || (k >= 0x10 && k <= 0x18) || k == 0xff;
    EXPECT_EQ(IsKnownKind(kind, Dialect::kAsterisk), common) << k;
    EXPECT_EQ(IsKnownKind(kind, Dialect::kExtended), common || k == 2) << k;
  }
}

TEST(DialectTest, NamesRoundTrip) {
  for (Dialect d : {Dialect::kAsterisk, Dialect::kExtended}) {
    Dialect parsed = d == Dialect::kAsterisk ? Dialect::kExtended : Dialect::kAsterisk;
    ASSERT_TRUE(ParseDialect(DialectName(d), &parsed));
    EXPECT_EQ(parsed, d);
  }
  Dialect d = Dialect::kAsterisk;
  EXPECT_FALSE(ParseDialect("Asterisk", &d));
  EXPECT_FALSE(ParseDialect("", &d));
}

TEST(SampleRateTest, KindsAndRatesMapBothWays) {
  for (size_t i = 0; i < kAudioSampleRates.size(); ++i) {
    const auto kind = static_cast<uint8_t>(0x10 + i);
    EXPECT_EQ(SampleRateOfKind(kind), kAudioSampleRates[i]);
    EXPECT_EQ(AudioKindForRate(kAudioSampleRates[i]), kind);
  }
  EXPECT_EQ(SampleRateOfKind(0x0f), std::nullopt);
  EXPECT_EQ(SampleRateOfKind(0x19), std::nullopt);
  EXPECT_EQ(AudioKindForRate(22050), std::nullopt);
  EXPECT_EQ(AudioKindForRate(0), std::nullopt);
}

TEST(DtmfDigitTest, ExactlySixteenDigits) {
  std::string digits;
  for (int c = 0; c < 256; ++c) {
    if (IsDtmfDigit(static_cast<char>(c))) digits.push_back(static_cast<char>(c));
  }
  EXPECT_EQ(digits, "#*0123456789ABCD");
}

TEST(ControlNameTest, KnownAndUnknown) {
  EXPECT_EQ(ControlName(1), "hangup");
  EXPECT_EQ(ControlName(4), "answer");
  EXPECT_EQ(ControlName(6), "take_off_hook");
  EXPECT_EQ(ControlName(17), "unhold");
  EXPECT_EQ(ControlName(37), "stream_topology_source_changed");
  EXPECT_EQ(ControlName(0), "");
  EXPECT_EQ(ControlName(38), "");
  EXPECT_EQ(ControlNameOrNumber(16), "hold");
  EXPECT_EQ(ControlNameOrNumber(200), "unknown(200)");
  for (int code = 1; code <= 37; ++code) {
    EXPECT_FALSE(ControlName(static_cast<uint8_t>(code)).empty()) << code;
  }
}

TEST(ErrorFlagNamesTest, Combinations) {
  EXPECT_EQ(ErrorFlagNames(0), "");
  EXPECT_EQ(ErrorFlagNames(kErrorCallerHangup), "caller_hangup");
  EXPECT_EQ(ErrorFlagNames(kErrorFrameForwarding | kErrorMemory), "frame_forwarding|memory");
  EXPECT_EQ(ErrorFlagNames(0x81), "caller_hangup|0x80");
  EXPECT_EQ(Error{}.flags(), 0);
}

TEST(CallUuidTest, ParseAndPrintRoundTrip) {
  absl::StatusOr<CallUuid> uuid = CallUuid::Parse("40325EC2-5efd-4bd3-805f-53576e581d13");
  ASSERT_TRUE(uuid.ok()) << uuid.status();
  EXPECT_EQ(uuid->bytes[0], 0x40);
  EXPECT_EQ(uuid->bytes[15], 0x13);
  EXPECT_EQ(uuid->ToString(), "40325ec2-5efd-4bd3-805f-53576e581d13");
  EXPECT_EQ(CallUuid{}.ToString(), "00000000-0000-0000-0000-000000000000");
}

TEST(CallUuidTest, RejectsMalformedText) {
  for (const char* bad :
       {"", "40325ec2-5efd-4bd3-805f-53576e581d1", "40325ec2-5efd-4bd3-805f-53576e581d133",
        "40325ec2x5efd-4bd3-805f-53576e581d13", "40325ec2-5efd-4bd3-805f-53576e581dg3",
        "40325ec25efd4bd3805f53576e581d13"}) {
    absl::StatusOr<CallUuid> uuid = CallUuid::Parse(bad);
    EXPECT_EQ(uuid.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(uuid.status().message()), HasSubstr("8-4-4-4-12")) << bad;
  }
}

// ---- Malformed input: every case, with kind, offset and what was wrong.

struct MalformedCase {
  const char* name;
  DecoderOptions options;
  std::vector<uint8_t> bytes;
  absl::StatusCode code;
  const char* message_start;  // kind and offset
  const char* what;
};

std::vector<MalformedCase> MalformedCases() {
  const DecoderOptions ast = Options(Dialect::kAsterisk);
  const DecoderOptions ext = Options(Dialect::kExtended);
  DecoderOptions small = ast;
  small.max_payload = 4;
  DecoderOptions huge = ast;
  huge.max_payload = 1 << 20;  // clamped to 65535
  const auto bad = absl::StatusCode::kInvalidArgument;
  const std::vector<uint8_t> audio = Frame(0x10, {0, 0});
  return {
      {"hangup_payload", ast, Frame(0x00, {1}), bad, "hangup (0x00) at offset 0",
       "payload is 1 bytes, expected 0"},
      {"uuid_short", ast, Frame(0x01, std::vector<uint8_t>(15)), bad, "uuid (0x01) at offset 0",
       "payload is 15 bytes, expected 16"},
      {"uuid_long", ext, Frame(0x01, std::vector<uint8_t>(17)), bad, "uuid (0x01) at offset 0",
       "payload is 17 bytes, expected 16"},
      {"uuid_empty_after_audio", ast, Concat({audio, Frame(0x01, {})}), bad,
       "uuid (0x01) at offset 5", "payload is 0 bytes, expected 16"},
      {"audio_empty", ast, Frame(0x10, {}), bad, "audio (0x10) at offset 0",
       "audio payload is empty"},
      {"audio_odd", ast, Frame(0x12, {1, 2, 3}), bad, "audio (0x12) at offset 0",
       "audio payload is 3 bytes, an odd length"},
      {"audio_odd_header_only",
       ext,
       {0x18, 0x01, 0x41},
       bad,
       "audio (0x18) at offset 0",
       "321 bytes, an odd length"},
      {"dtmf_short", ext, Frame(0x02, {1, '5', 0, 0, 0}), bad, "dtmf (0x02) at offset 0",
       "payload is 5 bytes, expected 6"},
      {"dtmf_long", ext, Frame(0x02, {1, '5', 0, 0, 0, 0, 0}), bad, "dtmf (0x02) at offset 0",
       "payload is 7 bytes, expected 6"},
      {"dtmf_state", ext, Frame(0x02, {2, '5', 0, 0, 0, 0}), bad, "dtmf (0x02) at offset 0",
       "DTMF state is 2, expected 1 (start) or 0 (stop)"},
      {"dtmf_digit", ext, Concat({audio, Frame(0x02, {0, 'e', 9, 0, 0, 0})}), bad,
       "dtmf (0x02) at offset 5", "DTMF digit is byte 0x65, expected one of 0-9 * # A-D"},
      {"digit_bad", ast, Frame(0x03, {'X'}), bad, "dtmf_digit (0x03) at offset 0",
       "DTMF digit is byte 0x58"},
      {"digit_len", ast, Frame(0x03, {'1', '2'}), bad, "dtmf_digit (0x03) at offset 0",
       "payload is 2 bytes, expected 1"},
      {"control_len", ext, Frame(0x03, {}), bad, "control (0x03) at offset 0",
       "payload is 0 bytes, expected 1"},
      {"unknown_0x02_asterisk", ast, Frame(0x02, {1, '5', 0, 0, 0, 0}), bad,
       "unknown kind 0x02 at offset 0", "kind is not defined in the asterisk dialect"},
      {"unknown_0x42", ext, Concat({audio, audio, Frame(0x42, {})}), bad,
       "unknown kind 0x42 at offset 10", "kind is not defined in the extended dialect"},
      {"too_large", small, Frame(0x10, {0, 0, 0, 0, 0, 0}), absl::StatusCode::kResourceExhausted,
       "audio (0x10) at offset 0", "payload is 6 bytes, which exceeds the maximum of 4"},
      {"too_large_unknown_kind",
       small,
       {0x77, 0xff, 0xff},
       absl::StatusCode::kResourceExhausted,
       "unknown kind 0x77 at offset 0",
       "exceeds the maximum of 4"},
      {"max_payload_clamped", huge, Concat({audio, {0x01, 0xff, 0xff}}), bad,
       "uuid (0x01) at offset 5", "payload is 65535 bytes, expected 16"},
  };
}

void PrintTo(const MalformedCase& c, std::ostream* os) { *os << c.name; }

class MalformedTest : public ::testing::TestWithParam<MalformedCase> {};

TEST_P(MalformedTest, FailsWithKindOffsetAndReasonInAnyChunking) {
  const MalformedCase& c = GetParam();
  for (Input input : {Input::kFeed, Input::kInPlace}) {
    for (size_t chunk = 1; chunk <= c.bytes.size(); ++chunk) {
      Outcome run = DecodeInChunks(c.bytes, c.options, chunk, input);
      ASSERT_FALSE(run.status.ok()) << "chunk " << chunk;
      EXPECT_EQ(run.status.code(), c.code);
      EXPECT_THAT(std::string(run.status.message()), StartsWith(c.message_start));
      EXPECT_THAT(std::string(run.status.message()), HasSubstr(c.what));
    }
  }
}

TEST_P(MalformedTest, DecoderStaysFailed) {
  const MalformedCase& c = GetParam();
  Decoder decoder(c.options);
  decoder.Feed(c.bytes);
  absl::Status first;
  while (first.ok()) {
    absl::StatusOr<std::optional<Message>> next = decoder.Next();
    if (!next.ok()) first = next.status();
    ASSERT_TRUE(!next.ok() || next->has_value()) << "stopped without the error";
  }
  decoder.Feed(Frame(0x00, {}));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(decoder.Next().status(), first);
}

INSTANTIATE_TEST_SUITE_P(Cases, MalformedTest, ::testing::ValuesIn(MalformedCases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DecoderTest, AllDtmfStateAndDigitBytes) {
  for (int state = 0; state < 256; ++state) {
    for (int digit = 0; digit < 256; ++digit) {
      const std::vector<uint8_t> frame =
          Frame(0x02, {static_cast<uint8_t>(state), static_cast<uint8_t>(digit), 1, 0, 0, 0});
      absl::StatusOr<Message> m = DecodeOne(frame, Options(Dialect::kExtended));
      const bool valid = state <= 1 && IsDtmfDigit(static_cast<char>(digit));
      ASSERT_EQ(m.ok(), valid) << state << " " << digit;
      if (valid) {
        EXPECT_EQ(std::get<DtmfEvent>(*m), (DtmfEvent{state == 1, static_cast<char>(digit), 1}));
      }
    }
  }
}

// ---- A stream of every kind, in every chunking.

std::vector<uint8_t> EveryKindStream(Dialect dialect) {
  std::vector<uint8_t> pcm(320);
  for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = static_cast<uint8_t>(i * 7);
  std::vector<uint8_t> uuid(16);
  for (size_t i = 0; i < uuid.size(); ++i) uuid[i] = static_cast<uint8_t>(0xa0 + i);
  std::vector<uint8_t> out = Concat({Frame(0x01, uuid), Frame(0x10, pcm)});
  for (uint8_t kind = 0x11; kind <= 0x18; ++kind) {
    out = Concat({out, Frame(kind, {kind, 0, 0, kind})});
  }
  if (dialect == Dialect::kExtended) {
    out = Concat({out, Frame(0x02, {1, '#', 0, 0, 0, 0}), Frame(0x02, {0, '#', 0x10, 0x27, 0, 0}),
                  Frame(0x03, {4}), Frame(0x03, {250})});
  } else {
    out = Concat({out, Frame(0x03, {'*'}), Frame(0x03, {'D'})});
  }
  return Concat(
      {out, Frame(0xff, {}), Frame(0xff, {0x07, 0x42}), Frame(0x10, pcm), Frame(0x00, {})});
}

TEST(DecoderTest, EveryChunkingGivesTheSameMessagesAndRoundTrips) {
  for (Dialect dialect : {Dialect::kAsterisk, Dialect::kExtended}) {
    const std::vector<uint8_t> stream = EveryKindStream(dialect);
    const Outcome whole = DecodeInChunks(stream, Options(dialect), stream.size());
    ASSERT_TRUE(whole.status.ok()) << whole.status;
    EXPECT_EQ(whole.reencoded, stream);
    for (Input input : {Input::kFeed, Input::kInPlace}) {
      for (size_t chunk = 1; chunk <= stream.size(); ++chunk) {
        const Outcome run = DecodeInChunks(stream, Options(dialect), chunk, input);
        ASSERT_TRUE(run.status.ok()) << "chunk " << chunk << ": " << run.status;
        ASSERT_EQ(run.kinds, whole.kinds) << "chunk " << chunk;
        ASSERT_EQ(run.reencoded, stream) << "chunk " << chunk;
      }
    }
  }
}

TEST(DecoderTest, PrepareWriteAndCommitAreZeroCopyInput) {
  const std::vector<uint8_t> stream = EveryKindStream(Dialect::kExtended);
  Decoder decoder(Options(Dialect::kExtended));
  std::vector<uint8_t> reencoded;
  size_t pos = 0;
  while (pos < stream.size()) {
    absl::Span<uint8_t> room = decoder.PrepareWrite(7);
    ASSERT_GE(room.size(), 7u);
    const size_t n = std::min<size_t>(7, stream.size() - pos);
    std::copy(stream.begin() + pos, stream.begin() + pos + n, room.begin());
    decoder.Commit(n);
    pos += n;
    while (true) {
      absl::StatusOr<std::optional<Message>> next = decoder.Next();
      ASSERT_TRUE(next.ok()) << next.status();
      if (!next->has_value()) break;
      ASSERT_TRUE(Encode(**next, Dialect::kExtended, Peer::kServer, &reencoded).ok());
    }
  }
  EXPECT_EQ(reencoded, stream);
  EXPECT_EQ(decoder.consumed(), stream.size());
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(DecoderTest, DecodeFromWholeMessagesHoldsNoBufferAndViewsTheInput) {
  const std::vector<uint8_t> stream = Concat({Frame(0x10, {1, 2, 3, 4}), Frame(0x00, {})});
  Decoder decoder;
  std::vector<const uint8_t*> payloads;
  ASSERT_TRUE(decoder
                  .DecodeFrom(stream,
                              [&](const Message& message) {
                                if (const auto* audio = std::get_if<Audio>(&message)) {
                                  payloads.push_back(audio->payload.data());
                                }
                                return true;
                              })
                  .ok());
  EXPECT_THAT(payloads, ::testing::ElementsAre(stream.data() + kHeaderSize));
  EXPECT_EQ(decoder.capacity(), 0u);
  EXPECT_EQ(decoder.buffered(), 0u);
  EXPECT_EQ(decoder.consumed(), stream.size());
}

TEST(DecoderTest, DecodeFromKeepsOnlyTheSplitMessageAndReleasesALargeOne) {
  Decoder decoder;
  int messages = 0;
  auto count = [&](const Message&) {
    ++messages;
    return true;
  };
  const std::vector<uint8_t> small = Frame(0x10, std::vector<uint8_t>(320, 7));
  const std::vector<uint8_t> stream = Concat({small, small});
  ASSERT_TRUE(decoder.DecodeFrom(absl::MakeConstSpan(stream).first(400), count).ok());
  EXPECT_EQ(messages, 1);
  EXPECT_EQ(decoder.buffered(), 400 - small.size());
  EXPECT_LE(decoder.capacity(), small.size());
  ASSERT_TRUE(decoder.DecodeFrom(absl::MakeConstSpan(stream).subspan(400), count).ok());
  EXPECT_EQ(messages, 2);
  EXPECT_EQ(decoder.buffered(), 0u);

  // A message larger than kKeptCapacity, split: its buffer goes as soon as
  // it is decoded.
  const std::vector<uint8_t> large = Frame(0x10, std::vector<uint8_t>(20000, 1));
  ASSERT_TRUE(decoder.DecodeFrom(absl::MakeConstSpan(large).first(5), count).ok());
  ASSERT_TRUE(decoder.DecodeFrom(absl::MakeConstSpan(large).subspan(5, 15000), count).ok());
  EXPECT_GT(decoder.capacity(), Decoder::kKeptCapacity);
  ASSERT_TRUE(decoder.DecodeFrom(absl::MakeConstSpan(large).subspan(15005), count).ok());
  EXPECT_EQ(messages, 3);
  EXPECT_EQ(decoder.capacity(), 0u);
}

TEST(DecoderTest, DecodeFromStopsWhenAskedAndKeepsTheRestInOrder) {
  const std::vector<uint8_t> stream =
      Concat({Frame(0x10, {1, 1}), Frame(0x10, {2, 2}), Frame(0x10, {3, 3}), {0x10, 0x00}});
  Decoder decoder;
  std::vector<uint8_t> seen;
  auto record = [&](const Message& message) {
    seen.push_back(std::get<Audio>(message).payload[0]);
    return seen.size() != 1;  // stop after the first
  };
  ASSERT_TRUE(decoder.DecodeFrom(stream, record).ok());
  EXPECT_THAT(seen, ::testing::ElementsAre(1));
  EXPECT_EQ(decoder.buffered(), stream.size() - 5);
  // The rest, then the end of the split message, in order.
  ASSERT_TRUE(decoder.DecodeFrom(std::vector<uint8_t>{0x02, 4, 4}, record).ok());
  EXPECT_THAT(seen, ::testing::ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(decoder.buffered(), 0u);
}

TEST(DecoderTest, DecodeFromDeliversWhatFeedLeftFirst) {
  Decoder decoder;
  decoder.Feed(Concat({Frame(0x10, {1, 1}), Frame(0x10, {2, 2})}));
  std::vector<uint8_t> seen;
  ASSERT_TRUE(decoder
                  .DecodeFrom({},
                              [&](const Message& message) {
                                seen.push_back(std::get<Audio>(message).payload[0]);
                                return true;
                              })
                  .ok());
  EXPECT_THAT(seen, ::testing::ElementsAre(1, 2));
}

TEST(DecoderTest, CommitNeverPassesTheBuffer) {
  Decoder decoder;
  absl::Span<uint8_t> room = decoder.PrepareWrite(3);
  decoder.Commit(room.size() + 100);
  EXPECT_EQ(decoder.buffered(), room.size());
}

TEST(DecoderTest, AudioViewsPointIntoTheBufferWithoutCopying) {
  const std::vector<uint8_t> frame = Frame(0x12, {1, 2, 3, 4});
  Decoder decoder;
  absl::Span<uint8_t> room = decoder.PrepareWrite(frame.size());
  std::copy(frame.begin(), frame.end(), room.begin());
  decoder.Commit(frame.size());
  absl::StatusOr<std::optional<Message>> next = decoder.Next();
  ASSERT_TRUE(next.ok() && next->has_value());
  const Audio& audio = std::get<Audio>(**next);
  EXPECT_EQ(audio.sample_rate_hz, 16000);
  EXPECT_EQ(audio.payload.data(), room.data() + kHeaderSize);
  EXPECT_THAT(audio.payload, ::testing::ElementsAre(1, 2, 3, 4));
}

TEST(DecoderTest, CountsBufferedAndConsumed) {
  Decoder decoder;
  decoder.Feed(Concat({Frame(0x00, {}), {0x10, 0x00}}));
  EXPECT_EQ(decoder.buffered(), 5u);
  ASSERT_TRUE(decoder.Next().ok());
  EXPECT_EQ(decoder.consumed(), 3u);
  absl::StatusOr<std::optional<Message>> next = decoder.Next();
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
  EXPECT_EQ(decoder.buffered(), 2u);
  EXPECT_EQ(decoder.consumed(), 3u);
}

TEST(DecoderTest, SkipPolicyDropsUnknownKindsAndCountsTheirBytes) {
  const std::vector<uint8_t> stream =
      Concat({Frame(0x42, {1, 2}), Frame(0x02, {1, '1', 0, 0, 0, 0}), Frame(0x00, {})});
  Decoder decoder(Options(Dialect::kAsterisk, UnknownKindPolicy::kSkip));
  decoder.Feed(stream);
  absl::StatusOr<std::optional<Message>> next = decoder.Next();
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_TRUE(std::holds_alternative<Hangup>(**next));
  EXPECT_EQ(decoder.consumed(), stream.size());
}

TEST(DecoderTest, KeepPolicyReturnsUnknownWithItsPayload) {
  Decoder decoder(Options(Dialect::kExtended, UnknownKindPolicy::kKeep));
  decoder.Feed(Frame(0x42, {1, 2}));
  absl::StatusOr<std::optional<Message>> next = decoder.Next();
  ASSERT_TRUE(next.ok() && next->has_value());
  const Unknown& unknown = std::get<Unknown>(**next);
  EXPECT_EQ(unknown.kind, 0x42);
  EXPECT_THAT(unknown.payload, ::testing::ElementsAre(1, 2));
}

TEST(DecoderTest, G711AllowsOddAudio) {
  DecoderOptions options;
  options.audio_bytes_per_sample = 1;
  absl::StatusOr<Message> m = DecodeOne(Frame(0x10, {0xff, 0x7f, 0x00}), options);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(std::get<Audio>(*m).payload.size(), 3u);
}

TEST(DecoderTest, MaxPayloadIsInclusive) {
  DecoderOptions options;
  options.max_payload = 4;
  EXPECT_TRUE(DecodeOne(Frame(0x10, {0, 0, 0, 0}), options).ok());
}

TEST(DecodeOneTest, RejectsShortAndOverlongFrames) {
  EXPECT_THAT(std::string(DecodeOne(std::vector<uint8_t>{0x10, 0x00}, {}).status().message()),
              HasSubstr("shorter than the 3-byte header"));
  EXPECT_THAT(std::string(DecodeOne(Frame(0x10, {0, 0}), {}).status().message()),
              ::testing::Not(HasSubstr("header says")));
  const std::vector<uint8_t> overlong = Concat({Frame(0x10, {0, 0}), {0}});
  EXPECT_THAT(std::string(DecodeOne(overlong, {}).status().message()),
              HasSubstr("the header says 2 payload bytes but the frame has 3"));
  const std::vector<uint8_t> cut = {0x10, 0x00, 0x04, 0, 0};
  EXPECT_THAT(std::string(DecodeOne(cut, {}).status().message()),
              HasSubstr("the header says 4 payload bytes but the frame has 2"));
}

// ---- Encoding.

struct EncodeRule {
  const char* name;
  Message message;
  Dialect dialect;
  Peer peer;
  bool allowed;
  const char* why;  // substring of the refusal
};

std::vector<EncodeRule> EncodeRules() {
  static const uint8_t kPcm[4] = {1, 0, 2, 0};
  static const uint8_t kFlags[1] = {1};
  const Audio audio{8000, absl::MakeConstSpan(kPcm)};
  const Error error{absl::MakeConstSpan(kFlags)};
  const CallUuid uuid{};
  const DtmfEvent dtmf{true, '5', 0};
  const DtmfDigit digit{'5'};
  const Control answer{4};
  const Unknown unknown{0x42, {}};
  const Unknown unknown_02{0x02, {}};
  const Unknown unknown_03{0x03, {}};
  const auto A = Dialect::kAsterisk;
  const auto X = Dialect::kExtended;
  const auto to_ast = Peer::kAsterisk;
  const auto to_srv = Peer::kServer;
  const char* stock = "stock Asterisk hangs up on any kind but audio and hangup";
  return {
      {"ast_hangup_to_asterisk", Hangup{}, A, to_ast, true, ""},
      {"ast_audio_to_asterisk", audio, A, to_ast, true, ""},
      {"ast_uuid_to_asterisk", uuid, A, to_ast, false, stock},
      {"ast_digit_to_asterisk", digit, A, to_ast, false, "send DTMF as in-band tones"},
      {"ast_error_to_asterisk", error, A, to_ast, false, stock},
      {"ast_dtmf_to_asterisk", dtmf, A, to_ast, false, "in-band tones"},
      {"ast_control_to_asterisk", answer, A, to_ast, false, "only in the extended dialect"},
      {"ast_unknown_to_asterisk", unknown, A, to_ast, false, "Asterisk hangs up on kinds"},
      {"ast_hangup_to_server", Hangup{}, A, to_srv, true, ""},
      {"ast_uuid_to_server", uuid, A, to_srv, true, ""},
      {"ast_digit_to_server", digit, A, to_srv, true, ""},
      {"ast_audio_to_server", audio, A, to_srv, true, ""},
      {"ast_error_to_server", error, A, to_srv, true, ""},
      {"ast_dtmf_to_server", dtmf, A, to_srv, false, "0x02 is defined only in the extended"},
      {"ast_control_to_server", answer, A, to_srv, false, "only in the extended dialect"},
      {"ast_unknown_to_server", unknown, A, to_srv, true, ""},
      {"ast_unknown_02_to_server", unknown_02, A, to_srv, true, ""},
      {"ast_unknown_03_to_server", unknown_03, A, to_srv, false, "send the typed message"},
      {"ext_hangup_to_asterisk", Hangup{}, X, to_ast, true, ""},
      {"ext_uuid_to_asterisk", uuid, X, to_ast, true, ""},
      {"ext_dtmf_to_asterisk", dtmf, X, to_ast, true, ""},
      {"ext_control_to_asterisk", answer, X, to_ast, true, ""},
      {"ext_audio_to_asterisk", audio, X, to_ast, true, ""},
      {"ext_error_to_asterisk", error, X, to_ast, true, ""},
      {"ext_digit_to_asterisk", digit, X, to_ast, false, "0x03 is a control signal"},
      {"ext_digit_to_server", digit, X, to_srv, false, "send DTMF as dtmf (0x02)"},
      {"ext_dtmf_to_server", dtmf, X, to_srv, true, ""},
      {"ext_control_to_server", answer, X, to_srv, true, ""},
      {"ext_unknown_to_asterisk", unknown, X, to_ast, false, "Asterisk hangs up on kinds"},
      {"ext_unknown_to_server", unknown, X, to_srv, true, ""},
      {"ext_unknown_02_to_server", unknown_02, X, to_srv, false, "send the typed message"},
  };
}

void PrintTo(const EncodeRule& r, std::ostream* os) { *os << r.name; }

class EncodeRuleTest : public ::testing::TestWithParam<EncodeRule> {};

TEST_P(EncodeRuleTest, AllowsOrRefusesWithAClearReason) {
  const EncodeRule& r = GetParam();
  std::vector<uint8_t> out = {0xaa};
  absl::Status status = Encode(r.message, r.dialect, r.peer, &out);
  if (r.allowed) {
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(out.size(), 1 + EncodedSize(r.message));
    EXPECT_EQ(out[1], KindOf(r.message));
  } else {
    EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(status.message()),
                StartsWith(absl::StrCat("the ", DialectName(r.dialect), " dialect cannot send")));
    EXPECT_THAT(std::string(status.message()), HasSubstr(r.why));
    EXPECT_EQ(out, std::vector<uint8_t>{0xaa}) << "a refused Encode appended bytes";
  }
}

INSTANTIATE_TEST_SUITE_P(Rules, EncodeRuleTest, ::testing::ValuesIn(EncodeRules()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(EncodeTest, RejectsMalformedMessages) {
  static const uint8_t kOdd[3] = {0, 0, 0};
  static const uint8_t kTwo[2] = {0, 0};
  std::vector<uint8_t> big(kMaxPayload + 1);
  struct Case {
    Message message;
    const char* why;
  } cases[] = {
      {Audio{8000, {}}, "cannot encode empty audio"},
      {Audio{8000, absl::MakeConstSpan(kOdd)}, "need an even length"},
      {Audio{22050, absl::MakeConstSpan(kTwo)}, "cannot encode audio at 22050 Hz"},
      {Audio{8000, absl::MakeConstSpan(big)}, "more than the 65535"},
      {Error{absl::MakeConstSpan(big)}, "more than the 65535"},
      {Unknown{0x42, absl::MakeConstSpan(big)}, "more than the 65535"},
      {DtmfEvent{true, 'E', 0}, "cannot encode DTMF digit byte 0x45"},
      {DtmfDigit{'\0'}, "cannot encode DTMF digit byte 0x00"},
  };
  for (const Case& c : cases) {
    for (Dialect d : {Dialect::kAsterisk, Dialect::kExtended}) {
      std::vector<uint8_t> out;
      absl::Status status = Encode(c.message, d, Peer::kServer, &out);
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.why;
      EXPECT_THAT(std::string(status.message()), HasSubstr(c.why));
      EXPECT_TRUE(out.empty());
    }
  }
}

TEST(EncodeTest, WritesExactBytesAndAppends) {
  std::vector<uint8_t> out = {0x99};
  ASSERT_TRUE(
      Encode(DtmfEvent{false, 'D', 0x01020304}, Dialect::kExtended, Peer::kServer, &out).ok());
  ASSERT_TRUE(Encode(Control{37}, Dialect::kExtended, Peer::kAsterisk, &out).ok());
  EXPECT_EQ(out, (std::vector<uint8_t>{0x99, 0x02, 0x00, 0x06, 0x00, 'D', 0x04, 0x03, 0x02, 0x01,
                                       0x03, 0x00, 0x01, 37}));
}

TEST(EncodeTest, LargestAudioFrame) {
  std::vector<uint8_t> pcm(kMaxPayload - 1);
  std::vector<uint8_t> out;
  ASSERT_TRUE(Encode(Audio{192000, pcm}, Dialect::kAsterisk, Peer::kAsterisk, &out).ok());
  EXPECT_EQ(out[0], 0x18);
  EXPECT_EQ(out[1], 0xff);
  EXPECT_EQ(out[2], 0xfe);
  EXPECT_EQ(out.size(), kHeaderSize + pcm.size());
}

TEST(EncodeTest, RawWritesAnythingAndHeaderIsBigEndian) {
  std::vector<uint8_t> out;
  EncodeRawHeader(0x10, 0x0140, &out);
  EncodeRaw(0x10, std::vector<uint8_t>{1, 2, 3}, &out);
  EXPECT_EQ(out, (std::vector<uint8_t>{0x10, 0x01, 0x40, 0x10, 0x00, 0x03, 1, 2, 3}));
}

TEST(EncodeTest, KindOfEveryMessage) {
  EXPECT_EQ(KindOf(Hangup{}), 0x00);
  EXPECT_EQ(KindOf(CallUuid{}), 0x01);
  EXPECT_EQ(KindOf(DtmfEvent{}), 0x02);
  EXPECT_EQ(KindOf(DtmfDigit{}), 0x03);
  EXPECT_EQ(KindOf(Control{}), 0x03);
  EXPECT_EQ(KindOf(Audio{44100, {}}), 0x15);
  EXPECT_EQ(KindOf(Error{}), 0xff);
  EXPECT_EQ(KindOf(Unknown{0x42, {}}), 0x42);
}

}  // namespace
}  // namespace audiosocket::wire
