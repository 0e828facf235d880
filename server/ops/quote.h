#ifndef AUDIOSOCKET_BRIDGE_SERVER_OPS_QUOTE_H_
#define AUDIOSOCKET_BRIDGE_SERVER_OPS_QUOTE_H_

// Quoting client input inside error messages. A status or result message
// that echoes what a client sent must stay small whatever the client sent:
// a gRPC status travels in HTTP/2 trailers, and a message past the peer's
// metadata limit turns a clear error (NOT_FOUND naming the id) into
// RESOURCE_EXHAUSTED. Logs and CallEnded details are bounded the same way.

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace audiosocket {

// Longest piece of client input quoted, in bytes of input.
inline constexpr size_t kMaxQuotedBytes = 64;

// `text` in double quotes, C-escaped (control and non-ASCII bytes as \xNN),
// cut to its first `max_bytes` bytes; a cut text ends in "..." and is
// followed by its full length: "abc..." (1048576 bytes).
std::string QuoteForError(absl::string_view text, size_t max_bytes = kMaxQuotedBytes);

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_OPS_QUOTE_H_
