#include "server/bridge.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "server/log.h"
#include "server/net.h"

namespace audiosocket {

// Accepts AudioSocket connections on one address. Runs on loop 0.
class Listener final : public FdHandler {
 public:
  Listener(Bridge* bridge, EventLoop* loop, ListenerConfig config)
      : bridge_(bridge), loop_(loop), config_(std::move(config)) {}
  ~Listener() override {
    if (fd_ >= 0) ::close(fd_);
  }

  absl::Status Bind() {
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

  absl::Status StartAccepting() { return loop_->Watch(fd_, this, false); }

  // On the loop: stop accepting and close the socket.
  void Close() {
    if (fd_ < 0) return;
    loop_->Unwatch(fd_);
    ::close(fd_);
    fd_ = -1;
  }

  void OnReadable() override {
    for (int i = 0; i < 64 && fd_ >= 0; ++i) {
      sockaddr_storage peer{};
      socklen_t length = sizeof(peer);
      const int fd =
          ::accept4(fd_, reinterpret_cast<sockaddr*>(&peer), &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        if (errno == EINTR || errno == ECONNABORTED) continue;
        log::Error("accept_failed", {{"listener", config_.name}, {"error", std::strerror(errno)}});
        return;
      }
      net::SocketAddress address;
      std::memcpy(&address.storage, &peer, sizeof(peer));
      address.length = length;
      (void)net::SetNoDelay(fd);
      bridge_->Accept(fd, &config_, address.ToString());
    }
  }
  void OnWritable() override {}

  const std::string& bound() const { return bound_; }
  const ListenerConfig& config() const { return config_; }

 private:
  Bridge* const bridge_;
  EventLoop* const loop_;
  const ListenerConfig config_;
  int fd_ = -1;
  std::string bound_;
};

Bridge::Bridge(BridgeConfig config, int io_threads) : config_(std::move(config)) {
  for (int i = 0; i < std::max(1, io_threads); ++i) {
    loops_.push_back(std::make_unique<EventLoop>());
  }
  dispatcher_ = std::make_unique<ClaimDispatcher>(100000);
  service_ = std::make_unique<BridgeService>(dispatcher_.get(), &registry_,
                                             static_cast<size_t>(config_.backend_queue_ms / 20),
                                             config_.mode == BackendMode::kPull);
}

Bridge::~Bridge() { Shutdown(absl::ZeroDuration()); }

absl::Status Bridge::Start() {
  services_.config = &config_;
  services_.registry = &registry_;
  services_.dispatcher = dispatcher_.get();
  services_.counters = &counters_;
  services_.fallback_audio = &fallback_audio_;

  if (config_.mode == BackendMode::kPush) {
    if (config_.backend_target.empty()) {
      return absl::InvalidArgumentError("push mode needs a backend target (--backend)");
    }
    grpc::ChannelArguments args;
    // Each call's stream goes to the next backend address.
    args.SetLoadBalancingPolicyName("round_robin");
    backend_channel_ =
        grpc::CreateCustomChannel(config_.backend_target, grpc::InsecureChannelCredentials(), args);
    backend_stub_ = bridge::v1::CallHandler::NewStub(backend_channel_);
    services_.push_stub = backend_stub_.get();
  }

  for (const ListenerConfig& listener_config : config_.listeners) {
    auto listener = std::make_unique<Listener>(this, loops_[0].get(), listener_config);
    if (absl::Status bound = listener->Bind(); !bound.ok()) {
      return absl::Status(
          bound.code(), absl::StrCat("listener \"", listener_config.name, "\": ", bound.message()));
    }
    listeners_.push_back(std::move(listener));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.grpc_listen, grpc::InsecureServerCredentials(), &grpc_port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot serve gRPC on ", config_.grpc_listen));
  }
  server_->GetHealthCheckService()->SetServingStatus(true);

  for (auto& loop : loops_) loop->StartThread();
  accepting_ = true;
  for (auto& listener : listeners_) {
    Listener* l = listener.get();
    loops_[0]->Post([l] { (void)l->StartAccepting(); });
  }
  return absl::OkStatus();
}

std::vector<std::string> Bridge::audiosocket_addresses() const {
  std::vector<std::string> out;
  for (const auto& listener : listeners_) out.push_back(listener->bound());
  return out;
}

void Bridge::Accept(int fd, const ListenerConfig* listener, std::string peer) {
  if (!accepting_) {
    ::close(fd);
    return;
  }
  EventLoop* loop = loops_[next_loop_++ % loops_.size()].get();
  auto call = std::make_shared<Call>(loop, fd, listener, std::move(peer), &services_);
  {
    absl::MutexLock lock(&mu_);
    // Forget calls that are gone, so the list stays as long as the live set.
    if (calls_.size() > 64 && calls_.size() % 64 == 0) {
      calls_.erase(std::remove_if(calls_.begin(), calls_.end(),
                                  [](const std::weak_ptr<Call>& c) { return c.expired(); }),
                   calls_.end());
    }
    calls_.push_back(call);
  }
  loop->Post([call] { call->Start(); });
}

void Bridge::StopAccepting() {
  if (!accepting_.exchange(false)) return;
  if (server_ != nullptr) server_->GetHealthCheckService()->SetServingStatus(false);
  auto closed = std::make_shared<absl::Notification>();
  loops_[0]->Post([this, closed] {
    for (auto& listener : listeners_) listener->Close();
    closed->Notify();
  });
  closed->WaitForNotificationWithTimeout(absl::Seconds(5));
}

bool Bridge::WaitForCalls(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    bool any = false;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& call : calls_) {
        if (!call.expired()) {
          any = true;
          break;
        }
      }
    }
    if (!any) return true;
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

void Bridge::Shutdown(absl::Duration timeout) {
  if (loops_.empty()) return;
  StopAccepting();
  {
    absl::MutexLock lock(&mu_);
    for (const auto& weak : calls_) {
      if (auto call = weak.lock()) call->Shutdown();
    }
  }
  // Calls close their sockets on their loops; wait for them, bounded.
  WaitForCalls(std::max(timeout, absl::Seconds(2)));
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + timeout));
    server_->Wait();
    server_.reset();
  }
  for (auto& loop : loops_) loop->Stop();
  for (auto& loop : loops_) loop->Join();
  listeners_.clear();
  loops_.clear();
}

}  // namespace audiosocket
