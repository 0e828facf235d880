#include "server/bridge.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "lib/audio/wav.h"
#include "lib/net/net.h"
#include "server/log.h"

namespace audiosocket {

// Accepts AudioSocket connections on one address. Runs on loop 0.
class Listener final : public event::FdHandler {
 public:
  Listener(Bridge* bridge, event::Dispatcher* loop, ListenerConfig config)
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
      // Counted here, before any refusal: every accepted connection then
      // ends in one counted outcome (a call, or a connections_rejected_*).
      bridge_->counters_.connections_accepted++;
      net::SocketAddress address;
      std::memcpy(&address.storage, &peer, sizeof(peer));
      address.length = length;
      if (!Allowed(address)) {
        // AudioSocket has no authentication: the network is the only check.
        // Counted before the close, as every refusal (see Bridge::Accept).
        bridge_->counters_.connections_rejected_allowlist++;
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
      bridge_->Accept(fd, &config_, address.ToString());
    }
  }
  void OnWritable() override {}

  bool Allowed(const net::SocketAddress& peer) const {
    if (config_.allow.empty()) return true;
    for (const net::Cidr& cidr : config_.allow) {
      if (net::CidrContains(cidr, peer)) return true;
    }
    return false;
  }

  const std::string& bound() const { return bound_; }
  const ListenerConfig& config() const { return config_; }

 private:
  Bridge* const bridge_;
  event::Dispatcher* const loop_;
  const ListenerConfig config_;
  int fd_ = -1;
  std::string bound_;
};

Bridge::Bridge(BridgeConfig config, int io_threads) : config_(std::move(config)) {
  for (int i = 0; i < std::max(1, io_threads); ++i) {
    loops_.push_back(std::make_unique<event::EpollDispatcher>());
  }
  dispatcher_ = std::make_unique<ClaimDispatcher>();
  metrics_ = std::make_unique<Metrics>(&counters_, dispatcher_.get());
  BridgeService::Options options;
  options.max_queued_audio_events = static_cast<size_t>(config_.backend_queue_ms / 20);
  options.claims_enabled = config_.mode == BackendMode::kPull;
  options.max_pull_streams = config_.max_pull_streams;
  options.auth_token = config_.auth_token;
  options.counters = &counters_;
  options.inbound_latency = &metrics_->inbound_latency();
  options.streams = &server_streams_;
  service_ = std::make_unique<BridgeService>(dispatcher_.get(), &registry_, options);
}

namespace {

// The contents of `path`; the error names `setting`.
absl::StatusOr<std::string> ReadSettingFile(absl::string_view setting, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(setting, ": cannot read \"", path, "\": ", std::strerror(errno)));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

absl::Status Prefixed(absl::string_view setting, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(setting, ": ", status.message()));
}

}  // namespace

Bridge::~Bridge() { Shutdown(absl::ZeroDuration()); }

absl::Status Bridge::Start() {
  services_.config = &config_;
  services_.registry = &registry_;
  services_.dispatcher = dispatcher_.get();
  services_.counters = &counters_;
  services_.fallback_audio = &fallback_audio_;
  services_.metrics = metrics_.get();
  services_.bearer_token = config_.auth_token;

  if (!config_.fallback_wav.empty()) {
    absl::StatusOr<audio::WavAudio> wav = audio::ReadWavFile(config_.fallback_wav, 8000);
    if (!wav.ok()) return Prefixed("fallback_wav", wav.status());
    fallback_audio_ = std::move(wav->samples);
    services_.fallback_sample_rate_hz = 8000;
  }

  std::shared_ptr<grpc::ServerCredentials> server_credentials = grpc::InsecureServerCredentials();
  if (!config_.tls_cert_file.empty() || !config_.tls_key_file.empty()) {
    if (config_.tls_cert_file.empty() || config_.tls_key_file.empty()) {
      return absl::InvalidArgumentError(
          "tls_cert_file: TLS needs both --tls_cert_file and --tls_key_file");
    }
    auto cert = ReadSettingFile("tls_cert_file", config_.tls_cert_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadSettingFile("tls_key_file", config_.tls_key_file);
    if (!key.ok()) return key.status();
    grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    if (!config_.tls_client_ca_file.empty()) {
      auto ca = ReadSettingFile("tls_client_ca_file", config_.tls_client_ca_file);
      if (!ca.ok()) return ca.status();
      ssl.pem_root_certs = *ca;
      ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    server_credentials = grpc::SslServerCredentials(ssl);
  } else if (!config_.tls_client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_client_ca_file: mutual TLS needs --tls_cert_file and --tls_key_file too");
  }

  if (config_.mode == BackendMode::kPush) {
    if (config_.backend_target.empty()) {
      return absl::InvalidArgumentError("backend: push mode needs a backend target (--backend)");
    }
    std::shared_ptr<grpc::ChannelCredentials> credentials = grpc::InsecureChannelCredentials();
    if (!config_.backend_tls_ca_file.empty() || !config_.backend_tls_cert_file.empty()) {
      grpc::SslCredentialsOptions ssl;
      if (!config_.backend_tls_ca_file.empty()) {
        auto ca = ReadSettingFile("backend_tls_ca_file", config_.backend_tls_ca_file);
        if (!ca.ok()) return ca.status();
        ssl.pem_root_certs = *ca;
      }
      if (!config_.backend_tls_cert_file.empty()) {
        if (config_.backend_tls_key_file.empty()) {
          return absl::InvalidArgumentError(
              "backend_tls_key_file: a client certificate needs its key");
        }
        auto cert = ReadSettingFile("backend_tls_cert_file", config_.backend_tls_cert_file);
        if (!cert.ok()) return cert.status();
        auto key = ReadSettingFile("backend_tls_key_file", config_.backend_tls_key_file);
        if (!key.ok()) return key.status();
        ssl.pem_cert_chain = *cert;
        ssl.pem_private_key = *key;
      }
      credentials = grpc::SslCredentials(ssl);
    }
    grpc::ChannelArguments args;
    // Each call's stream goes to the next backend address.
    args.SetLoadBalancingPolicyName("round_robin");
    // A backend that was down is found again within a second of coming back
    // (gRPC's default waits 1 s, then 1.6 s, 2.6 s... between connection
    // attempts): calls retry failed attempts on about that scale until the
    // accept deadline (Call::RetryBackendLater).
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    backend_channel_ = grpc::CreateCustomChannel(config_.backend_target, credentials, args);
    backend_stub_ = bridge::v1::CallHandlerService::NewStub(backend_channel_);
    services_.push_stub = backend_stub_.get();
    // Every push stream is tracked until OnDone, so Shutdown can wait for
    // the backends to take each call's last event.
    services_.push_link_factory = [this](uint64_t link_id, std::weak_ptr<LinkObserver> observer,
                                         const PushLink::Options& options) {
      PushLink::Options tracked = options;
      tracked.streams = &push_streams_;
      return PushLink::Start(backend_stub_.get(), link_id, std::move(observer), tracked);
    };
  }

  for (const ListenerConfig& listener_config : config_.listeners) {
    auto listener = std::make_unique<Listener>(this, loops_[0].get(), listener_config);
    if (absl::Status bound = listener->Bind(); !bound.ok()) {
      return absl::Status(bound.code(), absl::StrCat("listen: listener \"", listener_config.name,
                                                     "\": ", bound.message()));
    }
    listeners_.push_back(std::move(listener));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(config_.grpc_listen, server_credentials, &grpc_port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || grpc_port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("grpc_listen: cannot serve gRPC on ", config_.grpc_listen));
  }
  if (!config_.metrics_listen.empty()) {
    if (absl::Status served = metrics_->Serve(config_.metrics_listen); !served.ok()) {
      return Prefixed("metrics_listen", served);
    }
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
  // Each refusal is counted before the socket closes: a peer that sees the
  // close and then scrapes /metrics must find it counted.
  if (!accepting_) {
    // Accepted while the listeners were being closed.
    counters_.connections_rejected_draining++;
    ::close(fd);
    log::Info("connection_refused",
              {{"reason", "draining"}, {"listener", listener->name}, {"peer", peer}});
    return;
  }
  if (counters_.open_connections.load() >= config_.max_calls) {
    // Over the limit: close at once rather than queue a call nobody serves.
    counters_.connections_rejected_limit++;
    ::close(fd);
    log::Warning("connection_refused", {{"reason", "call_limit"},
                                        {"listener", listener->name},
                                        {"peer", peer},
                                        {"max_calls", config_.max_calls}});
    return;
  }
  counters_.open_connections++;  // released when the call closes its socket
  event::Dispatcher* loop = loops_[next_loop_++ % loops_.size()].get();
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

void Bridge::FlushPushStreams(absl::Time deadline) {
  // A push stream reaches OnDone once its backend finished it, after
  // reading the CallEnded queued last: exiting earlier loses those events.
  if (push_streams_.WaitIdle(deadline)) return;
  log::Warning("streams_abandoned",
               {{"streams", static_cast<int64_t>(push_streams_.open())},
                {"detail", "backends did not finish their streams before the shutdown deadline"}});
  push_streams_.AbortAll();
  // Cancelled streams still reach OnDone; the channel must outlive them.
  push_streams_.WaitIdle(absl::Now() + absl::Seconds(1));
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
  const absl::Time deadline = absl::Now() + timeout;
  if (server_ != nullptr) {
    // Idle ClaimCall and WatchCalls streams end now; streams of ended calls
    // finish after their last event (CallEnded). Wait for both ourselves:
    // Server::Shutdown would also wait, until its deadline, for clients to
    // close their connections, which idle workers need not do.
    service_->EndIdleStreams();
    server_streams_.WaitIdle(deadline);
    // Whatever is left (a stream still writing at the deadline, a unary
    // call in progress) is cancelled.
    server_->Shutdown(absl::ToChronoTime(absl::Now()));
    server_->Wait();
    server_.reset();
  }
  FlushPushStreams(deadline);
  for (auto& loop : loops_) loop->Stop();
  for (auto& loop : loops_) loop->Join();
  listeners_.clear();
  loops_.clear();
}

}  // namespace audiosocket
