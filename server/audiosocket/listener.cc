#include "server/audiosocket/listener.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "server/ops/log.h"

namespace audiosocket {

Listener::Listener(event::Dispatcher* loop, ListenerConfig config, AcceptFn on_accept,
                   std::atomic<uint64_t>* accepted, std::atomic<uint64_t>* rejected_allowlist)
    : loop_(loop),
      config_(std::move(config)),
      on_accept_(std::move(on_accept)),
      accepted_(accepted),
      rejected_allowlist_(rejected_allowlist) {}

Listener::~Listener() {
  if (pause_timer_ != 0) loop_->CancelTimer(pause_timer_);
  if (fd_ >= 0) ::close(fd_);
}

absl::Status Listener::Bind() {
  absl::StatusOr<net::HostPort> host_port = net::ParseHostPort(config_.address);
  if (!host_port.ok()) return host_port.status();
  absl::StatusOr<net::SocketAddress> address = net::Resolve(*host_port);
  if (!address.ok()) return address.status();
  absl::StatusOr<int> fd = net::ListenTcp(*address);
  if (!fd.ok()) return fd.status();
  fd_ = *fd;
  absl::StatusOr<net::SocketAddress> bound = net::LocalAddress(fd_);
  if (!bound.ok()) return bound.status();
  bound_ = bound->ToString();
  return absl::OkStatus();
}

void Listener::Close() {
  if (fd_ < 0) return;
  if (pause_timer_ != 0) loop_->CancelTimer(pause_timer_);
  pause_timer_ = 0;
  if (!paused_) loop_->Unwatch(fd_);
  paused_ = false;
  ::close(fd_);
  fd_ = -1;
}

void Listener::OnReadable() {
  for (int i = 0; i < 64 && fd_ >= 0; ++i) {
    sockaddr_storage peer{};
    socklen_t length = sizeof(peer);
    const int fd =
        ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        PauseAccepting(errno);
        return;
      }
      log::Error("accept_failed", {{"listener", config_.name}, {"error", std::strerror(errno)}});
      return;
    }
    // Counted here, before any refusal: every accepted connection then
    // ends in one counted outcome (a call, or a connections_rejected_*).
    (*accepted_)++;
    net::SocketAddress address;
    std::memcpy(&address.storage, &peer, sizeof(peer));
    address.length = length;
    if (!Allowed(address)) {
      // AudioSocket has no authentication: the network is the only check.
      // Counted before the close: a peer that sees the close and then
      // scrapes /metrics must find it counted.
      (*rejected_allowlist_)++;
      ::close(fd);
      log::Warning(
          "connection_refused",
          {{"reason", "allowlist"}, {"listener", config_.name}, {"peer", address.ToString()}});
      continue;
    }
    (void)net::SetNoDelay(fd);
    // A bounded kernel send buffer (Linux otherwise autotunes it to MBs,
    // minutes of audio) so a caller that stops reading meets the
    // write-stall limit within seconds.
    constexpr int kSendBuffer = 64 * 1024;
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kSendBuffer, sizeof(kSendBuffer));
    on_accept_(fd, &config_, address.ToString());
  }
}

void Listener::PauseAccepting(int error) {
  ++accept_pauses_;
  log::Error("accept_paused", {{"listener", config_.name},
                               {"error", std::strerror(error)},
                               {"pause_ms", static_cast<int64_t>(kAcceptPause.count())},
                               {"detail", "new connections wait in the backlog meanwhile"}});
  loop_->Unwatch(fd_);
  paused_ = true;
  pause_timer_ = loop_->RunAt(loop_->Now() + kAcceptPause, [this] {
    pause_timer_ = 0;
    paused_ = false;
    if (fd_ >= 0) (void)loop_->Watch(fd_, this, false);
  });
}

bool Listener::Allowed(const net::SocketAddress& peer) const {
  if (config_.allow.empty()) return true;
  for (const net::Cidr& cidr : config_.allow) {
    if (net::CidrContains(cidr, peer)) return true;
  }
  return false;
}

}  // namespace audiosocket
