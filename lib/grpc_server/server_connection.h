#ifndef AUDIOSOCKET_BRIDGE_LIB_GRPC_SERVER_SERVER_CONNECTION_H_
#define AUDIOSOCKET_BRIDGE_LIB_GRPC_SERVER_SERVER_CONNECTION_H_

// One accepted HTTP/2 connection (plaintext, prior knowledge) carrying gRPC
// server streams, driven by an event loop: nghttp2 does the framing, flow
// control and HPACK; this class owns the socket, hands each request to the
// handler its router picks, and decides when bytes go out: every stream's
// frames of one loop round leave in one write after the round.
//
// Why it exists: gRPC C++ 1.51's server runs every stream's reads, writes
// and completions on gRPC's own threads, so each frame of a call crossed
// from the call's loop to a gRPC thread and back. Pull mode's ClaimCall
// streams run here instead, on the loop of the calls they carry.
//
// Threads: confined to its loop; every method on that thread. Ownership:
// shared; the loop's watch is dropped when the connection closes, and the
// object stays alive until the end of that round. Handlers are held until
// their stream ends.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lib/event/dispatcher.h"
#include "lib/grpc_client/http2_pipe.h"
#include "lib/grpc_client/stream_table.h"

struct nghttp2_session;

namespace audiosocket::grpc_server {

// What a request said before its body.
struct RequestHead {
  std::string path;  // "/package.Service/Method"
  // Every header but the pseudo-headers, "te", "content-type" and
  // "grpc-timeout", in order, names in lower case.
  std::vector<std::pair<std::string, std::string>> metadata;
  // From grpc-timeout; the connection also enforces it.
  std::optional<absl::Duration> timeout;
  // The first value of `name` in metadata, if any.
  std::optional<absl::string_view> Find(absl::string_view name) const;
};

// The application's side of one server stream. Called on the loop, never
// while the connection is in the middle of nghttp2 work it cannot leave:
// handlers may call the connection's methods for their own stream.
class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  // Request body bytes (framed messages, see grpc_client/message_reader.h)
  // as they arrive.
  virtual void OnRequestData(absl::string_view data) = 0;
  // The client half-closed: no more request data.
  virtual void OnRequestEnd() = 0;
  // Copies up to `size` bytes of the response body (framed messages) to
  // `out` and returns how many. Once the body is complete, sets `*end` and
  // `*status`, which the trailers carry. Returning 0 without `*end` pauses
  // sending until ServerConnection::ResumeSending.
  virtual size_t ReadBody(uint8_t* out, size_t size, bool* end, absl::Status* status) = 0;
  // The stream ended: OK once its status went out, else why it ended
  // without (the client reset it, its deadline passed, the connection
  // closed). Called once, last; never after Reset.
  virtual void OnClose(const absl::Status& status) = 0;
};

class ServerConnection final : public event::FdHandler,
                               public std::enable_shared_from_this<ServerConnection> {
 public:
  // Picks the handler for a new stream, or the status to refuse it with
  // (sent at once, as a trailers-only response). Called on the loop.
  using Router = std::function<absl::StatusOr<std::shared_ptr<StreamHandler>>(
      ServerConnection* connection, int32_t stream_id, const RequestHead& head)>;

  struct Options {
    std::string peer;  // for logs and errors: "10.0.0.7:41000"
    size_t max_message_bytes = 4 << 20;
    // How far the client may send ahead on a stream and on the connection.
    int32_t stream_window_bytes = 1 << 20;
    int32_t connection_window_bytes = 64 << 20;
    // Told once, on the loop, after the connection closed.
    std::function<void(ServerConnection*)> on_closed;
  };

  // Takes `fd`, an accepted socket, and starts serving it.
  static absl::StatusOr<std::shared_ptr<ServerConnection>> Start(event::Dispatcher* loop, int fd,
                                                                 Router router, Options options);
  ~ServerConnection() override;
  ServerConnection(const ServerConnection&) = delete;
  ServerConnection& operator=(const ServerConnection&) = delete;

  event::Dispatcher* loop() const { return loop_; }
  // The stream's handler has body (or its end) to send again.
  void ResumeSending(int32_t stream_id);
  // Resets the stream (RST_STREAM CANCEL); its handler hears nothing more.
  void Reset(int32_t stream_id);
  // Sends GOAWAY: no new streams; closes once the open ones have ended.
  void GoAway();
  // Closes the connection; every stream's handler hears `status`.
  void Close(const absl::Status& status);
  // Sends GOAWAY and what else is pending, as far as the socket takes it
  // now, then closes with `status`: the client learns the server is going
  // rather than finding the connection reset.
  void Shutdown(const absl::Status& status);

  bool closed() const { return closed_; }
  size_t open_streams() const { return streams_.size(); }
  // Successful writes to the socket so far (how well frames are batched).
  uint64_t writes() const { return pipe_.writes(); }
  const std::string& peer() const { return options_.peer; }

  // FdHandler
  void OnReadable() override;
  void OnWritable() override;

 private:
  struct Stream;
  struct Callbacks;

  ServerConnection(event::Dispatcher* loop, Router router, Options options);
  void Route(int32_t stream_id, Stream& stream);
  // Asks for one Flush after the loop's round.
  void ScheduleFlush();
  // Takes what nghttp2 has to send and writes it, until the socket is full.
  void Flush();
  void FinishStream(int32_t stream_id, uint32_t error_code);
  // Closes when nghttp2 has nothing more to read or write (after GOAWAY).
  void CloseIfDone();

  event::Dispatcher* const loop_;
  const Router router_;
  const Options options_;
  bool closed_ = false;
  bool going_away_ = false;
  nghttp2_session* session_ = nullptr;
  grpc_client::Http2Pipe pipe_;
  grpc_client::StreamTable<Stream> streams_;
};

}  // namespace audiosocket::grpc_server

#endif  // AUDIOSOCKET_BRIDGE_LIB_GRPC_SERVER_SERVER_CONNECTION_H_
