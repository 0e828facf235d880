#ifndef AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_HTTP2_PIPE_H_
#define AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_HTTP2_PIPE_H_

// The socket side of one nghttp2 session on an event loop, shared by the
// client's connections (connection.h) and the server's (lib/grpc_server):
// what arrives on the socket is fed to the session, and what the session
// has to send is written, as much as the socket takes, without blocking.
//
// Not thread-safe: one per connection, used on its loop.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

struct nghttp2_session;

namespace audiosocket::grpc_client {

class Http2Pipe {
 public:
  // `peer` names the other end in errors ("the backend at 10.0.0.5:9000").
  explicit Http2Pipe(std::string peer) : peer_(std::move(peer)) {}

  // Takes what `session` has to send and writes it to `fd` until the socket
  // is full. Returns whether bytes are left waiting for the socket to be
  // writable, or why the connection is broken. `stopped` is asked after
  // nghttp2 ran callbacks: true means the connection closed meanwhile and
  // nothing more may be done.
  absl::StatusOr<bool> Flush(nghttp2_session* session, int fd, absl::FunctionRef<bool()> stopped);
  // Reads what `fd` has (bounded per call, so one busy connection does not
  // starve the loop) into `session`. Not OK when the peer closed the
  // connection or broke HTTP/2; `stopped` as in Flush.
  absl::Status Read(nghttp2_session* session, int fd, absl::FunctionRef<bool()> stopped);

  // Successful writes to the socket so far (how well frames are batched).
  uint64_t writes() const { return writes_; }
  const std::string& peer() const { return peer_; }

 private:
  const std::string peer_;
  uint64_t writes_ = 0;
  // A member, not thread_local: static TLS is carved from every thread's
  // stack, and the metrics server's threads have small ones.
  std::unique_ptr<uint8_t[]> read_buffer_;  // made on first read
  std::string out_;                         // taken from nghttp2, not yet written
  size_t out_offset_ = 0;                   // written from the front of out_
};

}  // namespace audiosocket::grpc_client

#endif  // AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_HTTP2_PIPE_H_
