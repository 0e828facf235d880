#ifndef AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_HTTP2_PIPE_H_
#define AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_HTTP2_PIPE_H_

// The socket side of one nghttp2 session on an event loop, shared by the
// client's connections (connection.h) and the server's (lib/grpc_server):
// it owns the socket and its watch on the loop, feeds what arrives to the
// session, and writes what the session has to send, as much as the socket
// takes, watching for writability only while bytes wait.
//
// Not thread-safe: one per connection, used on its loop.

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "lib/event/dispatcher.h"

namespace audiosocket::grpc_client {

// A header for nghttp2's submit calls, which copy it: `name` and `value`
// need only outlive the call.
nghttp2_nv Header(absl::string_view name, absl::string_view value);

// Sends a session's first SETTINGS (the stream window, and no server push
// for a client) and opens its connection window.
void SubmitLocalSettings(nghttp2_session* session, bool client, int32_t stream_window_bytes,
                         int32_t connection_window_bytes);

class Http2Pipe {
 public:
  // `peer` names the other end in errors ("the backend at 10.0.0.5:9000").
  Http2Pipe(event::Dispatcher* loop, std::string peer);
  ~Http2Pipe();  // closes the socket, if still open
  Http2Pipe(const Http2Pipe&) = delete;
  Http2Pipe& operator=(const Http2Pipe&) = delete;

  // Takes `fd` and watches it for `handler`, for writability too when
  // `writable` (a connect in progress reports there). On error `fd` is
  // closed.
  absl::Status Open(int fd, event::FdHandler* handler, bool writable);
  // Stops watching and closes the socket; nothing when none is open.
  void CloseSocket();
  int fd() const { return fd_; }

  // Takes what `session` has to send and writes it until the socket is
  // full, or, once a timer is due, after the first write; while bytes
  // wait, the handler hears OnWritable. Not OK when the connection is
  // broken. `stopped` is asked after nghttp2 ran callbacks:
  // true means the connection closed meanwhile and nothing more may be done.
  absl::Status Flush(nghttp2_session* session, absl::FunctionRef<bool()> stopped);
  // Reads what the socket has, up to kMaxReadBytes and only until a timer
  // is due, into `session` (epoll reports the rest again next round). Not OK when the peer closed
  // the connection or broke HTTP/2; `stopped` as in Flush.
  absl::Status Read(nghttp2_session* session, absl::FunctionRef<bool()> stopped);
  // One connection's flood of input must not starve the loop's other
  // calls. 256 KiB is hundreds of times what a loop's calls stream in
  // 20 ms; a round that took a whole 1 MiB stream window of tiny commands
  // (some 20,000) spent long enough parsing them for every call on the
  // loop to miss a tick.
  static constexpr size_t kMaxReadBytes = 256 << 10;
  // One recv: about 45 calls' audio frames. Between two, a read stops for
  // a timer that came due (Dispatcher::TimerDue): parsing a full
  // kMaxReadBytes of a connection that carries every call's frames takes
  // milliseconds, and each call's next tick would leave that much late.
  static constexpr size_t kReadChunkBytes = 16 << 10;
  // The same for writing: a backend that stopped reading and then takes
  // megabytes at once (every call's queued audio) would hold the loop for
  // tens of milliseconds. A flush writes at least one batch of
  // kFlushBatchBytes (about 180 frames), then stops once a timer is due.
  static constexpr size_t kFlushBatchBytes = 64 << 10;

  // Runs `flush` once after the loop's current round, however often asked
  // within it, so every stream's frames of a round leave in one write; only
  // if `owner` (the connection holding this pipe) still lives then.
  // (Callers on the per-frame path ask flush_scheduled() first, so that a
  // round's later requests make no closure.)
  void ScheduleFlush(std::weak_ptr<void> owner, std::function<void()> flush);
  bool flush_scheduled() const { return flush_scheduled_; }

  // Bytes wait for the socket to take them.
  bool write_blocked() const { return watching_writable_; }
  // Successful writes to the socket so far (how well frames are batched).
  uint64_t writes() const { return writes_; }
  const std::string& peer() const { return peer_; }

 private:
  event::Dispatcher* const loop_;
  const std::string peer_;
  event::FdHandler* handler_ = nullptr;
  int fd_ = -1;
  bool watching_writable_ = false;
  bool flush_scheduled_ = false;
  uint64_t writes_ = 0;
  // A member, not thread_local: static TLS is carved from every thread's
  // stack, and the metrics server's threads have small ones.
  std::unique_ptr<uint8_t[]> read_buffer_;  // made on first read
  std::string out_;                         // taken from nghttp2, not yet written
  size_t out_offset_ = 0;                   // written from the front of out_
};

}  // namespace audiosocket::grpc_client

#endif  // AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_HTTP2_PIPE_H_
