#ifndef AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_CONNECTION_H_
#define AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_CONNECTION_H_

// One HTTP/2 connection (plaintext, prior knowledge) carrying gRPC client
// streams, driven by an event loop: nghttp2 does the framing, flow control
// and HPACK; this class owns the socket, the streams' gRPC semantics
// (message framing, deadlines, status) and when bytes go out.
//
// Why it exists: every stream's frames of one loop round leave in one
// write after the round (Dispatcher::RunAfterRound), on the thread that
// produced them. gRPC C++'s own client hands each message to its threads
// and writes it there: a thread hand-off and a system call per frame per
// call.
//
// Threads: confined to its loop; every method on that thread. Ownership:
// shared; the loop's watch is dropped when the connection closes, and the
// object stays alive until the end of that round. Handlers are held until
// their stream ends.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lib/event/dispatcher.h"
#include "lib/grpc_client/address.h"
#include "lib/grpc_client/http2_pipe.h"
#include "lib/grpc_client/stream_table.h"

struct nghttp2_session;

namespace audiosocket::grpc_client {

// The application's side of one client stream. Called on the loop, never
// while the connection is in the middle of nghttp2 work it cannot leave:
// handlers may call the connection's methods for their own stream.
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // Copies up to `size` bytes of the request body (framed messages, see
  // message_reader.h) to `out` and returns how many. Sets `*end` once the
  // body is complete. Returning 0 without `*end` pauses sending until
  // Connection::ResumeSending.
  virtual size_t ReadBody(uint8_t* out, size_t size, bool* end) = 0;
  // One response message, unframed.
  virtual void OnMessage(absl::string_view message) = 0;
  // The stream ended with `status` (the backend's grpc-status, or why it
  // failed here). Called once, last; never after Cancel.
  virtual void OnClose(const absl::Status& status) = 0;
};

class Connection final : public event::FdHandler, public std::enable_shared_from_this<Connection> {
 public:
  struct Options {
    std::string authority;  // :authority of every stream
    absl::Duration connect_timeout = absl::Seconds(5);
    size_t max_message_bytes = 4 << 20;
    // How far the backend may send ahead on a stream and on the connection.
    int32_t stream_window_bytes = 1 << 20;
    int32_t connection_window_bytes = 64 << 20;
  };
  using Metadata = std::vector<std::pair<std::string, std::string>>;

  // Starts connecting to `address`. Streams may be opened at once; they go
  // out once connected, and fail UNAVAILABLE if connecting fails.
  static std::shared_ptr<Connection> Start(event::Dispatcher* loop, const Address& address,
                                           Options options);
  // Takes `fd`, a connected stream socket (a socketpair's end), as a ready
  // connection to `peer`. Fails when the loop cannot watch it.
  static absl::StatusOr<std::shared_ptr<Connection>> Adopt(event::Dispatcher* loop, int fd,
                                                           absl::string_view peer, Options options);
  ~Connection() override;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Opens a stream calling `path` ("/package.Service/Method"). `timeout`
  // is sent as grpc-timeout and enforced here (DEADLINE_EXCEEDED). Errors
  // when the connection takes no new streams.
  absl::StatusOr<int32_t> OpenStream(absl::string_view path, const Metadata& metadata,
                                     absl::Duration timeout,
                                     std::shared_ptr<StreamHandler> handler);
  // The stream's handler has body to send again.
  void ResumeSending(int32_t stream_id);
  // Resets the stream (RST_STREAM CANCEL); its handler hears nothing more.
  void Cancel(int32_t stream_id);
  // Closes the connection; every stream's handler hears `status`.
  void Close(const absl::Status& status);
  // Takes no new streams, and closes once the open ones have ended.
  void CloseWhenIdle();

  // Connecting or connected, and the backend has not said it is going away.
  bool takes_new_streams() const { return state_ == State::kConnecting || state_ == State::kReady; }
  bool closed() const { return state_ == State::kClosed; }
  // It connected at some point (a closed one that never did was refused).
  bool ever_ready() const { return ever_ready_; }
  // Why it closed, once it did.
  const absl::Status& close_status() const { return close_status_; }
  size_t open_streams() const { return streams_.size(); }
  // Successful writes to the socket so far (how well frames are batched).
  uint64_t writes() const { return pipe_.writes(); }
  const std::string& peer() const { return peer_; }

  // FdHandler
  void OnReadable() override;
  void OnWritable() override;

 private:
  enum class State { kConnecting, kReady, kDraining, kClosed };
  struct Stream;
  struct Callbacks;

  Connection(event::Dispatcher* loop, const Address& address, Options options);
  void Connect(const Address& address);
  void OnConnected();
  // Asks for one Flush after the loop's round.
  void ScheduleFlush();
  // Takes what nghttp2 has to send and writes it, until the socket is full.
  void Flush();
  // The status a stream that ended without one of its own gets.
  absl::Status EndStatus(Stream& stream, uint32_t error_code);
  void FinishStream(int32_t stream_id, uint32_t error_code);
  void CloseIfDrained();

  event::Dispatcher* const loop_;
  const Options options_;
  const std::string peer_;
  State state_ = State::kConnecting;
  absl::Status close_status_;
  bool ever_ready_ = false;
  bool draining_requested_ = false;  // CloseWhenIdle while connecting
  nghttp2_session* session_ = nullptr;
  Http2Pipe pipe_;
  event::Dispatcher::TimerId connect_timer_ = 0;
  StreamTable<Stream> streams_;
};

}  // namespace audiosocket::grpc_client

#endif  // AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_CONNECTION_H_
