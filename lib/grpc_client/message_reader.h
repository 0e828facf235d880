#ifndef AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_MESSAGE_READER_H_
#define AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_MESSAGE_READER_H_

// gRPC's message framing inside an HTTP/2 stream's DATA: each message is a
// 1-byte compressed flag, a 4-byte big-endian length, then the message.
// DATA frames cut messages anywhere, so the reader reassembles them.
//
// Not thread-safe: one per stream, used on its connection's loop.

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace audiosocket::grpc_client {

inline constexpr size_t kMessagePrefixBytes = 5;

// Appends `message`'s prefix (uncompressed) to `out`.
void AppendMessagePrefix(size_t message_bytes, std::string* out);

class MessageReader {
 public:
  explicit MessageReader(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  // Feeds DATA bytes; calls `on_message` for each message completed, in
  // order. An error (a compressed message, which this client never asks
  // for, or one over the size limit) ends the stream; nothing more is read.
  absl::Status Feed(absl::string_view data,
                    absl::FunctionRef<void(absl::string_view message)> on_message);

  // True between messages: a stream that ends otherwise was cut short.
  bool at_message_boundary() const { return pending_.empty(); }

 private:
  const size_t max_message_bytes_;
  std::string pending_;  // an incomplete prefix or message
};

}  // namespace audiosocket::grpc_client

#endif  // AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_MESSAGE_READER_H_
