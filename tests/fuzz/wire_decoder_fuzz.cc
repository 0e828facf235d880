#include "tests/fuzz/wire_decoder_fuzz.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "lib/wire/wire.h"

namespace audiosocket::fuzz {
namespace {

using wire::Decoder;
using wire::DecoderOptions;
using wire::Message;

enum class Chunking { kWhole, kBytewise, kRandom };

struct Outcome {
  std::vector<uint8_t> reencoded;        // every message
  std::vector<uint8_t> reencoded_known;  // every message but Unknown
  absl::Status status;
  uint64_t consumed = 0;
  size_t buffered = 0;
  size_t messages = 0;
  std::string violation;
};

// A small deterministic generator for chunk sizes.
struct XorShift {
  uint32_t state;
  uint32_t Next() {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    return state;
  }
};

// Re-encodes a decoded message exactly as it was on the wire.
bool Reencode(const Message& m, const DecoderOptions& options, std::vector<uint8_t>* out,
              std::string* violation) {
  absl::Status status = wire::Encode(m, options.dialect, wire::Peer::kServer, out);
  if (status.ok()) return true;
  // G.711 audio may have an odd length, which Encode (16-bit) refuses.
  if (const auto* audio = std::get_if<wire::Audio>(&m);
      audio != nullptr && options.audio_bytes_per_sample == 1 && audio->payload.size() % 2 == 1) {
    wire::EncodeRaw(wire::KindOf(m), audio->payload, out);
    return true;
  }
  *violation = absl::StrCat("a decoded message does not encode: ", status.ToString());
  return false;
}

void CheckMessage(const Message& m, absl::Span<const uint8_t> frame, const DecoderOptions& options,
                  Outcome* out) {
  std::vector<uint8_t> bytes;
  if (!Reencode(m, options, &bytes, &out->violation)) return;
  if (wire::EncodedSize(m) != bytes.size()) out->violation = "EncodedSize differs from Encode";
  if (absl::MakeConstSpan(bytes) != frame) {
    out->violation = absl::StrCat("re-encoded ", wire::KindName(wire::KindOf(m), options.dialect),
                                  " differs from its input frame");
    return;
  }
  absl::StatusOr<Message> one = wire::DecodeOne(frame, options);
  std::vector<uint8_t> again;
  if (!one.ok() || !Reencode(*one, options, &again, &out->violation) || again != bytes) {
    out->violation = "DecodeOne disagrees with the streaming decoder";
    return;
  }
  // Stock Asterisk takes only audio and hangup.
  std::vector<uint8_t> scratch;
  const bool allowed =
      wire::Encode(m, wire::Dialect::kAsterisk, wire::Peer::kAsterisk, &scratch).ok();
  const bool audio_or_hangup =
      std::holds_alternative<wire::Audio>(m) || std::holds_alternative<wire::Hangup>(m);
  if (options.dialect == wire::Dialect::kAsterisk && allowed && !audio_or_hangup) {
    out->violation = "the asterisk dialect let a non-audio, non-hangup kind go to Asterisk";
    return;
  }
  out->reencoded.insert(out->reencoded.end(), bytes.begin(), bytes.end());
  if (!std::holds_alternative<wire::Unknown>(m)) {
    out->reencoded_known.insert(out->reencoded_known.end(), bytes.begin(), bytes.end());
  }
}

Outcome Run(absl::Span<const uint8_t> stream, const DecoderOptions& options, Chunking chunking,
            uint32_t seed) {
  Outcome out;
  Decoder decoder(options);
  XorShift rng{seed | 1};
  size_t pos = 0;
  // How each chunk goes in: Feed then Next, PrepareWrite/Commit then Next,
  // or DecodeFrom in place; the random chunking mixes all three.
  enum class Input { kFeed, kPrepare, kInPlace } input = Input::kFeed;
  // Checks a message the decoder returned; false stops decoding.
  auto take = [&](const Message& message, uint64_t before) {
    ++out.messages;
    const size_t size = wire::EncodedSize(message);
    if (decoder.consumed() < before + size || decoder.consumed() > stream.size()) {
      out.violation = "consumed() does not account for the message";
      return false;
    }
    CheckMessage(message, stream.subspan(decoder.consumed() - size, size), options, &out);
    return out.violation.empty();
  };
  // The error names the offset of the failing message: everything before
  // it (skipped kinds included) was consumed, nothing after.
  auto fail = [&](absl::Status status) {
    out.status = std::move(status);
    if (!absl::StrContains(out.status.message(),
                           absl::StrCat(" at offset ", decoder.consumed(), ":"))) {
      out.violation = absl::StrCat("error offset is not consumed() = ", decoder.consumed(), ": ",
                                   out.status.ToString());
    }
  };
  while (pos < stream.size() && out.status.ok() && out.violation.empty()) {
    size_t n = stream.size() - pos;
    if (chunking == Chunking::kBytewise) n = 1;
    if (chunking == Chunking::kRandom) n = std::min<size_t>(n, 1 + rng.Next() % 700);
    const absl::Span<const uint8_t> chunk = stream.subspan(pos, n);
    pos += n;
    if (input == Input::kInPlace) {
      // consumed() before each message: after the previous one, or where
      // this call started.
      uint64_t before = decoder.consumed();
      absl::Status status = decoder.DecodeFrom(chunk, [&](const Message& message) {
        const bool go_on = take(message, before);
        before = decoder.consumed();
        return go_on;
      });
      if (!status.ok()) fail(std::move(status));
    } else {
      if (input == Input::kPrepare) {
        absl::Span<uint8_t> room = decoder.PrepareWrite(n);
        std::copy(chunk.begin(), chunk.end(), room.begin());
        decoder.Commit(n);
      } else {
        decoder.Feed(chunk);
      }
      while (out.violation.empty()) {
        const uint64_t before = decoder.consumed();
        absl::StatusOr<std::optional<Message>> next = decoder.Next();
        if (!next.ok()) {
          fail(next.status());
          break;
        }
        if (!next->has_value() || !take(**next, before)) break;
      }
    }
    if (chunking == Chunking::kRandom) input = static_cast<Input>(rng.Next() % 3);
  }
  out.consumed = decoder.consumed();
  out.buffered = decoder.buffered();
  if (out.status.ok() && out.violation.empty() && out.consumed + out.buffered != stream.size()) {
    out.violation = "consumed + buffered != bytes fed";
  }
  if (!out.status.ok() && !absl::StrContains(out.status.message(), " at offset ")) {
    out.violation = absl::StrCat("an error without an offset: ", out.status.ToString());
  }
  if (!out.status.ok() && !decoder.Next().ok() && decoder.Next().status() != out.status) {
    out.violation = "a failed decoder changed its error";
  }
  return out;
}

std::string Compare(const Outcome& a, const Outcome& b, absl::string_view what) {
  if (!a.violation.empty()) return a.violation;
  if (!b.violation.empty()) return b.violation;
  if (a.status != b.status) {
    return absl::StrCat(what, ": errors differ: ", a.status.ToString(), " vs ",
                        b.status.ToString());
  }
  if (a.reencoded != b.reencoded || a.messages != b.messages) {
    return absl::StrCat(what, ": messages differ");
  }
  if (a.consumed != b.consumed) return absl::StrCat(what, ": consumed differs");
  if (a.status.ok() && a.buffered != b.buffered) return absl::StrCat(what, ": buffered differs");
  return "";
}

}  // namespace

std::string CheckWireRoundTrip(const uint8_t* data, size_t size) {
  if (size == 0) return "";
  const uint8_t config = data[0];
  absl::Span<const uint8_t> stream(data + 1, size - 1);
  DecoderOptions options;
  options.dialect = (config & 1) ? wire::Dialect::kExtended : wire::Dialect::kAsterisk;
  const int policy = (config >> 1) & 3;
  options.unknown_kinds = policy == 1   ? wire::UnknownKindPolicy::kSkip
                          : policy == 0 ? wire::UnknownKindPolicy::kReject
                                        : wire::UnknownKindPolicy::kKeep;
  options.audio_bytes_per_sample = (config & 8) ? 1 : 2;
  static constexpr size_t kMaxPayloads[4] = {wire::kMaxPayload, 320, 16, 0};
  options.max_payload = kMaxPayloads[(config >> 4) & 3];
  const uint32_t seed = static_cast<uint32_t>(config >> 6) * 2654435761u + size;

  const Outcome whole = Run(stream, options, Chunking::kWhole, seed);
  const Outcome bytewise = Run(stream, options, Chunking::kBytewise, seed);
  const Outcome random = Run(stream, options, Chunking::kRandom, seed);
  if (std::string diff = Compare(whole, bytewise, "whole vs one byte at a time"); !diff.empty()) {
    return diff;
  }
  if (std::string diff = Compare(whole, random, "whole vs random chunks"); !diff.empty()) {
    return diff;
  }
  if (options.unknown_kinds != wire::UnknownKindPolicy::kSkip) {
    if (!std::equal(whole.reencoded.begin(), whole.reencoded.end(), stream.begin(),
                    stream.begin() + std::min<size_t>(whole.consumed, stream.size())) ||
        whole.reencoded.size() != whole.consumed) {
      return "re-encoded bytes differ from the consumed input";
    }
    return "";
  }
  // Skip drops exactly what keep returns as Unknown.
  DecoderOptions keep = options;
  keep.unknown_kinds = wire::UnknownKindPolicy::kKeep;
  const Outcome kept = Run(stream, keep, Chunking::kWhole, seed);
  if (!kept.violation.empty()) return kept.violation;
  if (kept.reencoded_known != whole.reencoded || kept.status != whole.status ||
      kept.consumed != whole.consumed) {
    return "skip and keep policies disagree on the known messages";
  }
  return "";
}

}  // namespace audiosocket::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string violation = audiosocket::fuzz::CheckWireRoundTrip(data, size);
  if (!violation.empty()) {
    std::fprintf(stderr, "wire round-trip property violated: %s\n", violation.c_str());
    std::abort();
  }
  return 0;
}
