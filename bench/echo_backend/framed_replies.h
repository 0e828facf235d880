#ifndef AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_FRAMED_REPLIES_H_
#define AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_FRAMED_REPLIES_H_

// The replies of one stream of echo-backend's loop transport, framed as gRPC
// messages and waiting for the stream's ReadBody, which takes them in
// whatever sizes the HTTP/2 session asks for.
//
// Not thread-safe: one per stream, on its loop.

#include <cstddef>
#include <cstdint>
#include <string>

#include "google/protobuf/message_lite.h"

namespace audiosocket::echo_backend {

class FramedReplies {
 public:
  void Append(const google::protobuf::MessageLite& message);
  // Copies up to `size` bytes to `out` and returns how many.
  size_t Read(uint8_t* out, size_t size);
  bool empty() const { return taken_ == bytes_.size(); }

 private:
  std::string bytes_;  // keeps its capacity between replies
  size_t taken_ = 0;   // of bytes_
};

}  // namespace audiosocket::echo_backend

#endif  // AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_FRAMED_REPLIES_H_
