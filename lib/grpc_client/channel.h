#ifndef AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_CHANNEL_H_
#define AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_CHANNEL_H_

// One loop's way to a gRPC target: the target's addresses, one HTTP/2
// connection per address, and round-robin across them per stream, as
// gRPC's round_robin policy does. An address whose connection was refused
// is skipped for a backoff (100 ms doubling to 1 s) so streams go to the
// others; when every address is in backoff, OpenStream fails UNAVAILABLE
// and the caller retries (PushConnector does). Host names are resolved
// when the channel is made, again when a connection is refused, and every
// 30 s while streams are opened, each time off the loop.
//
// Threads: confined to its loop after Create; Shutdown on the loop too.
// Ownership: shared; the resolver thread holds it weakly, and the
// destructor waits for that thread.

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "lib/event/dispatcher.h"
#include "lib/grpc_client/address.h"
#include "lib/grpc_client/connection.h"

namespace audiosocket::grpc_client {

class Channel : public std::enable_shared_from_this<Channel> {
 public:
  struct Options {
    Connection::Options connection;  // authority: the target's, when empty
    absl::Duration first_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(1);
    absl::Duration resolve_interval = absl::Seconds(30);
  };
  struct OpenedStream {
    std::shared_ptr<Connection> connection;
    int32_t stream_id = 0;
  };

  // Parses `target` (address.h) and resolves it once, blocking: call it
  // before the loop serves calls. A name that does not resolve yet is not
  // an error (it is tried again); a malformed target is.
  static absl::StatusOr<std::shared_ptr<Channel>> Create(event::Dispatcher* loop,
                                                         absl::string_view target, Options options);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // Opens a stream on the next address's connection.
  absl::StatusOr<OpenedStream> OpenStream(absl::string_view path,
                                          const Connection::Metadata& metadata,
                                          absl::Duration timeout,
                                          std::shared_ptr<StreamHandler> handler);
  // Closes every connection; their streams hear `status`.
  void Shutdown(const absl::Status& status);

  event::Dispatcher* loop() const { return loop_; }
  size_t addresses() const { return backends_.size(); }

 private:
  struct Backend {
    Address address;
    std::shared_ptr<Connection> connection;
    event::MonoTime retry_after{};
    absl::Duration backoff = absl::ZeroDuration();
  };

  Channel(event::Dispatcher* loop, Target target, Options options);
  void UseAddresses(std::vector<Address> addresses);
  // Resolves the target's names again, off the loop, unless that is under
  // way or was done within `min_age`.
  void ResolveLater(absl::Duration min_age);
  // The backend's connection, made when it has none that takes streams;
  // null while it is in backoff.
  Connection* ConnectionFor(Backend& backend, event::MonoTime now);

  event::Dispatcher* const loop_;
  const Target target_;
  Options options_;
  std::vector<Backend> backends_;
  size_t next_ = 0;
  absl::Status last_error_;
  bool shut_down_ = false;
  bool resolving_ = false;
  event::MonoTime resolved_at_{};
  std::thread resolver_;
};

}  // namespace audiosocket::grpc_client

#endif  // AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_CHANNEL_H_
