#include "lib/grpc_client/http2_pipe.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace audiosocket::grpc_client {
namespace {

// nghttp2's frames are taken into out_ until this much waits to be written:
// past it the socket is full, and holding back keeps flow control (and the
// streams' own queues, which drop stale audio) in charge of what waits.
constexpr size_t kMaxPendingOut = 64 << 10;
// Reads per readiness report: one connection with a flood of input must
// not starve the loop's other descriptors (epoll reports it again).
constexpr int kMaxReadsPerEvent = 16;
constexpr size_t kReadChunk = 64 << 10;

}  // namespace

absl::StatusOr<bool> Http2Pipe::Flush(nghttp2_session* session, int fd,
                                      absl::FunctionRef<bool()> stopped) {
  while (true) {
    while (out_.size() - out_offset_ < kMaxPendingOut) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session, &data);
      if (n < 0) return absl::InternalError(absl::StrCat("HTTP/2 error: ", nghttp2_strerror(n)));
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (stopped()) return false;  // a handler closed the connection
    if (out_offset_ == out_.size()) return false;
    const ssize_t written =
        ::send(fd, out_.data() + out_offset_, out_.size() - out_offset_, MSG_NOSIGNAL);
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      return absl::UnavailableError(
          absl::StrCat("writing to ", peer_, " failed: ", std::strerror(errno)));
    }
    ++writes_;
    out_offset_ += static_cast<size_t>(written);
    if (out_offset_ == out_.size()) {
      out_.clear();
      out_offset_ = 0;
    }
  }
}

absl::Status Http2Pipe::Read(nghttp2_session* session, int fd, absl::FunctionRef<bool()> stopped) {
  if (read_buffer_ == nullptr) read_buffer_ = std::make_unique<uint8_t[]>(kReadChunk);
  uint8_t* const buffer = read_buffer_.get();
  for (int i = 0; i < kMaxReadsPerEvent; ++i) {
    const ssize_t n = ::recv(fd, buffer, kReadChunk, 0);
    if (n == 0) return absl::UnavailableError(absl::StrCat(peer_, " closed the connection"));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return absl::UnavailableError(
          absl::StrCat("reading from ", peer_, " failed: ", std::strerror(errno)));
    }
    const ssize_t used = nghttp2_session_mem_recv(session, buffer, static_cast<size_t>(n));
    if (used < 0) {
      return absl::InternalError(
          absl::StrCat(peer_, " broke HTTP/2: ", nghttp2_strerror(static_cast<int>(used))));
    }
    if (stopped()) return absl::OkStatus();
    if (static_cast<size_t>(n) < kReadChunk) break;
  }
  return absl::OkStatus();
}

}  // namespace audiosocket::grpc_client
