#ifndef AUDIOSOCKET_BRIDGE_LIB_WIRE_GOLDEN_H_
#define AUDIOSOCKET_BRIDGE_LIB_WIRE_GOLDEN_H_

// Test support: reads the golden vectors (tests/testdata/wire/*.txt; the
// format is that folder's README.md) and turns their expected messages back
// into wire::Message values for the encode direction.

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "lib/wire/wire.h"

namespace audiosocket::wire::golden {

// One `message:` line: field=value pairs in order.
struct ExpectedMessage {
  std::vector<std::pair<std::string, std::string>> fields;
  // The value of `key`, or "" when absent.
  std::string Get(absl::string_view key) const;
  std::string ToText() const;  // key=value key=value
};

enum class EncodeCheck { kNone, kSame, kRefused };

struct Vector {
  std::string name;
  std::string where;  // "file:line" of the `vector:` line
  Dialect dialect = Dialect::kAsterisk;
  Peer peer = Peer::kServer;
  DecoderOptions options;  // dialect, policy, max_payload, bytes per sample
  std::vector<uint8_t> bytes;
  std::vector<ExpectedMessage> messages;
  std::string error_code;  // "" when decoding succeeds
  uint64_t error_offset = 0;
  EncodeCheck encode = EncodeCheck::kNone;
};

// For gtest: the name and place of a vector instead of its bytes.
void PrintTo(const Vector& vector, std::ostream* os);

// Parses a vector file's text; `file` names it in errors.
absl::StatusOr<std::vector<Vector>> ParseVectors(absl::string_view text, absl::string_view file);

// Every *.txt file in `dir`, in name order.
absl::StatusOr<std::vector<Vector>> LoadVectorDir(const std::string& dir);

// The directory of the vectors in a Bazel test's runfiles.
std::string VectorDir();

// Builds the message an `message:` line describes. `frame` is that message's
// bytes in the vector (header included): audio payloads are taken from it.
absl::StatusOr<Message> BuildMessage(const ExpectedMessage& expected, Dialect dialect,
                                     absl::Span<const uint8_t> frame);

// A phrase the codec's error message contains for an error code of the
// vector format (e.g. "bad_length" -> "bytes, expected"); "" if unknown.
absl::string_view ErrorPhrase(absl::string_view code);

}  // namespace audiosocket::wire::golden

#endif  // AUDIOSOCKET_BRIDGE_LIB_WIRE_GOLDEN_H_
