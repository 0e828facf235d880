#ifndef AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_MESSAGE_INFLATER_H_
#define AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_MESSAGE_INFLATER_H_

// Messages a peer compressed (gRPC's grpc-encoding): gzip and deflate, the
// two every gRPC implementation that compresses offers, inflated by zlib
// (Debian's zlib1g). A client that turns compression on (grpc-java's
// withCompression("gzip"), grpc-go's UseCompressor, grpcio's
// compression=Gzip) sends every message so; gRPC servers read them, and so
// must a server standing in for one.
//
// Not thread-safe: one per stream, used on its connection's loop.

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace audiosocket::grpc_client {

enum class MessageEncoding { kIdentity, kGzip, kDeflate };

// What this side reads, for a grpc-accept-encoding header.
inline constexpr char kAcceptedMessageEncodings[] = "identity,deflate,gzip";

// The encoding a grpc-encoding header names (absent or empty: identity).
// UNIMPLEMENTED, naming what is read, for any other.
absl::StatusOr<MessageEncoding> ParseMessageEncoding(absl::string_view header);

class MessageInflater {
 public:
  // `encoding` is kGzip or kDeflate. zlib's state (some 40 KiB) is made
  // with the first message and kept for the next.
  explicit MessageInflater(MessageEncoding encoding);
  ~MessageInflater();
  MessageInflater(const MessageInflater&) = delete;
  MessageInflater& operator=(const MessageInflater&) = delete;

  // Replaces `*out` with `compressed` inflated. RESOURCE_EXHAUSTED once it
  // would pass `max_bytes` (checked as it inflates: a small message cannot
  // make the reader hold more than the limit); INTERNAL when `compressed`
  // is not one whole stream of the encoding.
  absl::Status Inflate(absl::string_view compressed, size_t max_bytes, std::string* out);

 private:
  struct Zlib;
  const MessageEncoding encoding_;
  std::unique_ptr<Zlib> zlib_;
};

}  // namespace audiosocket::grpc_client

#endif  // AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_MESSAGE_INFLATER_H_
