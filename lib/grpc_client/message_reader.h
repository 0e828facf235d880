#ifndef AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_MESSAGE_READER_H_
#define AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_MESSAGE_READER_H_

// gRPC's message framing inside an HTTP/2 stream's DATA: each message is a
// 1-byte compressed flag, a 4-byte big-endian length, then the message.
// DATA frames cut messages anywhere, so the reader reassembles them.
//
// Not thread-safe: one per stream, used on its connection's loop.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lib/grpc_client/message_inflater.h"

namespace audiosocket::grpc_client {

inline constexpr size_t kMessagePrefixBytes = 5;

// Appends `message`'s prefix (uncompressed) to `out`.
void AppendMessagePrefix(size_t message_bytes, std::string* out);

class MessageReader {
 public:
  explicit MessageReader(size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  // How messages flagged compressed were compressed (the stream's
  // grpc-encoding). Identity, the default, refuses them.
  void set_encoding(MessageEncoding encoding);

  // Feeds DATA bytes; calls `on_message` for each message completed, in
  // order, inflated if it was compressed. An error (a compressed message
  // with no encoding set, one that does not inflate, one over the size
  // limit before or after inflating) ends the stream; nothing more is read.
  absl::Status Feed(absl::string_view data,
                    absl::FunctionRef<void(absl::string_view message)> on_message);

  // True between messages: a stream that ends otherwise was cut short.
  bool at_message_boundary() const { return pending_.empty(); }

 private:
  // INTERNAL or RESOURCE_EXHAUSTED for a prefix this reader cannot take.
  absl::Status CheckPrefix(const char* prefix) const;
  absl::Status Deliver(bool compressed, absl::string_view message,
                       absl::FunctionRef<void(absl::string_view)> on_message);

  const size_t max_message_bytes_;
  std::string pending_;                        // an incomplete prefix or message
  std::unique_ptr<MessageInflater> inflater_;  // set for gzip or deflate
  std::string inflated_;                       // the last message inflated
};

}  // namespace audiosocket::grpc_client

#endif  // AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_MESSAGE_READER_H_
