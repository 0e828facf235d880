#ifndef AUDIOSOCKET_BRIDGE_LIB_WIRE_DESCRIBE_H_
#define AUDIOSOCKET_BRIDGE_LIB_WIRE_DESCRIBE_H_

// A decoded message as named fields, for tools, logs and tests: the same
// field names as the golden vectors (tests/testdata/wire/README.md) and
// audiosocket-dump's JSON lines. Allocates; not for the audio path.

#include <string>
#include <vector>

#include "absl/types/span.h"
#include "lib/wire/wire.h"

namespace audiosocket::wire {

struct Field {
  std::string key;
  std::string value;
  bool number = false;  // printed without quotes in JSON
};

// type, kind, length, then the kind's fields (uuid; state, digit,
// duration_ms; digit; code, control; rate, samples; payload, flags).
std::vector<Field> DescribeMessage(const Message& message, Dialect dialect,
                                   int audio_bytes_per_sample = 2);

// {"key":"value","n":1} on one line, in field order.
std::string FieldsToJson(absl::Span<const Field> fields);

// key=value key=value (the golden vectors' `message:` form).
std::string FieldsToText(absl::Span<const Field> fields);

}  // namespace audiosocket::wire

#endif  // AUDIOSOCKET_BRIDGE_LIB_WIRE_DESCRIBE_H_
