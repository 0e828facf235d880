#include "bench/echo_backend/framed_replies.h"

#include <algorithm>
#include <cstring>

#include "lib/grpc_client/message_reader.h"

namespace audiosocket::echo_backend {

void FramedReplies::Append(const google::protobuf::MessageLite& message) {
  grpc_client::AppendMessagePrefix(message.ByteSizeLong(), &bytes_);
  message.AppendToString(&bytes_);
}

size_t FramedReplies::Read(uint8_t* out, size_t size) {
  const size_t n = std::min(size, bytes_.size() - taken_);
  std::memcpy(out, bytes_.data() + taken_, n);
  taken_ += n;
  if (empty()) {
    bytes_.clear();
    taken_ = 0;
  }
  return n;
}

}  // namespace audiosocket::echo_backend
