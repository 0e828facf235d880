#ifndef AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_GRPC_STATUS_H_
#define AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_GRPC_STATUS_H_

// The parts of gRPC-over-HTTP/2 (the "PROTOCOL-HTTP2" document in gRPC's
// repository) that are plain text: the grpc-timeout header, the status a
// stream's trailers carry, and what an HTTP status means when a response is
// not gRPC at all (a proxy's error page).

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace audiosocket::grpc_client {

// "grpc-timeout" for `timeout`: at most 8 digits and a unit, rounded up.
std::string GrpcTimeoutHeader(absl::Duration timeout);

// The timeout a "grpc-timeout" header says, or nothing when malformed.
std::optional<absl::Duration> ParseGrpcTimeout(absl::string_view text);
// The status trailers "grpc-status" and "grpc-message" (percent-encoded)
// carry. A missing or malformed grpc-status is UNKNOWN.
absl::Status StatusFromTrailers(std::optional<absl::string_view> grpc_status,
                                absl::string_view grpc_message);

// The gRPC code for a response whose HTTP status is not 200.
absl::StatusCode StatusCodeForHttpStatus(int http_status);

// grpc-message's percent-encoding: bytes outside printable ASCII, and '%'.
std::string PercentEncode(absl::string_view text);
// Decodes grpc-message's percent-encoding; malformed escapes stay as sent.
std::string PercentDecode(absl::string_view text);

}  // namespace audiosocket::grpc_client

#endif  // AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_GRPC_STATUS_H_
