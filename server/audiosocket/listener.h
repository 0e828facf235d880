#ifndef AUDIOSOCKET_BRIDGE_SERVER_AUDIOSOCKET_LISTENER_H_
#define AUDIOSOCKET_BRIDGE_SERVER_AUDIOSOCKET_LISTENER_H_

// Accepts AudioSocket connections on one address and hands each, set up
// (non-blocking, no Nagle, a bounded send buffer) and checked against the
// listener's allow-list, to whoever runs calls.
//
// Threads: Bind() on the controlling thread before the loop runs; every
// other method on the loop that watches the socket.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "lib/event/dispatcher.h"
#include "lib/net/net.h"
#include "server/config/config.h"

namespace audiosocket {

// How long accepting pauses when the process is out of descriptors or
// kernel memory: the connection stays in the backlog and the socket stays
// readable, so retrying at once would spin the loop.
inline constexpr std::chrono::milliseconds kAcceptPause{100};

class Listener final : public event::FdHandler {
 public:
  // Takes an accepted connection's descriptor (ownership passes) and the
  // peer's address.
  using AcceptFn = std::function<void(int fd, const ListenerConfig* listener, std::string peer)>;

  // `accepted` and `rejected_allowlist` count every connection accepted and
  // every one refused by the allow-list; they outlive the listener.
  Listener(event::Dispatcher* loop, ListenerConfig config, AcceptFn on_accept,
           std::atomic<uint64_t>* accepted, std::atomic<uint64_t>* rejected_allowlist);
  ~Listener() override;

  // Binds and listens; errors name the address.
  absl::Status Bind();
  absl::Status StartAccepting() { return loop_->Watch(fd_, this, false); }
  // Stops accepting and closes the socket.
  void Close();
  // Times accepting paused for lack of descriptors or memory.
  uint64_t accept_pauses() const { return accept_pauses_; }

  void OnReadable() override;
  void OnWritable() override {}

  // The address actually bound ("host:port"), after Bind().
  const std::string& bound() const { return bound_; }
  const ListenerConfig& config() const { return config_; }

 private:
  bool Allowed(const net::SocketAddress& peer) const;
  // Stops watching the socket for kAcceptPause (out of descriptors or
  // memory), then watches it again.
  void PauseAccepting(int error);

  event::Dispatcher* const loop_;
  const ListenerConfig config_;
  const AcceptFn on_accept_;
  std::atomic<uint64_t>* const accepted_;
  std::atomic<uint64_t>* const rejected_allowlist_;
  int fd_ = -1;
  std::string bound_;
  bool paused_ = false;
  event::Dispatcher::TimerId pause_timer_ = 0;
  uint64_t accept_pauses_ = 0;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_AUDIOSOCKET_LISTENER_H_
