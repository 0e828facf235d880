#include "server/bridge.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "lib/audio/wav.h"
#include "lib/net/net.h"
#include "server/audiosocket/listener.h"
#include "server/backend/loop_push_link.h"
#include "server/backend/pull_connector.h"
#include "server/backend/push_connector.h"
#include "server/backend/push_link.h"
#include "server/grpc/credentials.h"
#include "server/ops/log.h"

namespace audiosocket {

Bridge::Bridge(BridgeConfig config, int io_threads) : config_(std::move(config)) {
  for (int i = 0; i < std::max(1, io_threads); ++i) {
    loops_.push_back(std::make_unique<event::EpollDispatcher>());
    loops_.back()->set_round_window(absl::ToChronoNanoseconds(config_.io_round_window));
    loop_counters_.push_back(std::make_unique<BridgeCounters>());
  }
  dispatcher_ = std::make_unique<ClaimDispatcher>();
  CounterSet all_counters({&counters_});
  for (const auto& counters : loop_counters_) all_counters.Add(counters.get());
  counters_sum_ = all_counters;
  metrics_ = std::make_unique<Metrics>(std::move(all_counters), dispatcher_.get());
  for (const auto& loop : loops_) {
    loop->set_round_observer(
        [rounds = &metrics_->loop_rounds()](event::Nanos took) { rounds->Observe(took); });
  }
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

absl::Status Prefixed(absl::string_view setting, const absl::Status& status) {
  return absl::Status(status.code(), absl::StrCat(setting, ": ", status.message()));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Bridge>> Bridge::Create(BridgeConfig config, int io_threads) {
  std::unique_ptr<Bridge> bridge(new Bridge(std::move(config), io_threads));
  if (absl::Status started = bridge->Start(); !started.ok()) return started;
  return bridge;
}

Bridge::~Bridge() { Shutdown(absl::ZeroDuration()); }

absl::Status Bridge::Start() {
  services_.config = &config_;
  services_.registry = &registry_;
  services_.counters = &counters_;
  services_.fallback_audio = &fallback_audio_;
  services_.metrics = metrics_.get();

  if (!config_.fallback_wav.empty()) {
    absl::StatusOr<audio::WavAudio> wav = audio::ReadWavFile(config_.fallback_wav, 8000);
    if (!wav.ok()) return Prefixed("fallback_wav", wav.status());
    absl::StatusOr<FallbackAudio> rendered = FallbackAudio::Render(wav->samples, 8000);
    if (!rendered.ok()) return Prefixed("fallback_wav", rendered.status());
    fallback_audio_ = std::move(*rendered);
  }

  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> server_credentials =
      ServerCredentialsFor(config_);
  if (!server_credentials.ok()) return server_credentials.status();

  if (config_.mode == BackendMode::kPush) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        BackendCredentialsFor(config_);
    if (!credentials.ok()) return credentials.status();
    if (absl::Status configured = ConfigurePush(*credentials); !configured.ok()) return configured;
  } else {
    ConfigurePull();
  }

  for (const ListenerConfig& listener_config : config_.listeners) {
    auto listener = std::make_unique<Listener>(
        loops_[0].get(), listener_config,
        [this](int fd, const ListenerConfig* config, std::string peer) {
          Accept(fd, config, std::move(peer));
        },
        &counters_.connections_accepted, &counters_.connections_rejected_allowlist);
    if (absl::Status bound = listener->Bind(); !bound.ok()) {
      return absl::Status(bound.code(), absl::StrCat("listen: listener \"", listener_config.name,
                                                     "\": ", bound.message()));
    }
    listeners_.push_back(std::move(listener));
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  if (config_.loop_server()) {
    std::vector<event::Dispatcher*> loops;
    for (auto& loop : loops_) loops.push_back(loop.get());
    loop_server_ = std::make_unique<LoopServer>(std::move(loops), service_.get());
    if (absl::Status bound = loop_server_->Bind(config_.grpc_listen); !bound.ok()) {
      return Prefixed("grpc_listen", bound);
    }
    grpc_port_ = loop_server_->port();
  } else {
    builder.AddListeningPort(config_.grpc_listen, *server_credentials, &grpc_port_);
  }
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

  // Each loop's calls count in their own loop's counters, and take their
  // playout ticks on their own loop.
  for (size_t i = 0; i < loop_counters_.size(); ++i) {
    auto services = std::make_unique<CallServices>(services_);
    services->counters = loop_counters_[i].get();
    loop_tickers_.push_back(std::make_unique<SlotTicker>(loops_[i].get()));
    services->ticker = loop_tickers_.back().get();
    loop_services_.push_back(std::move(services));
  }
  for (auto& loop : loops_) loop->StartThread();
  if (loop_server_ != nullptr) loop_server_->Start(server_.get());
  accepting_ = true;
  for (auto& listener : listeners_) {
    Listener* l = listener.get();
    loops_[0]->Post([l] { (void)l->StartAccepting(); });
  }
  return absl::OkStatus();
}

absl::Status Bridge::ConfigurePush(std::shared_ptr<grpc::ChannelCredentials> credentials) {
  if (config_.backend_target.empty()) {
    return absl::InvalidArgumentError("backend: push mode needs a backend target (--backend)");
  }
  grpc::ChannelArguments args;
  // Each call's stream goes to the next backend address.
  args.SetLoadBalancingPolicyName("round_robin");
  // A backend that was down is found again within a second of coming back
  // (gRPC's default waits 1 s, then 1.6 s, 2.6 s... between connection
  // attempts): calls retry failed attempts on about that scale until the
  // accept deadline (PushConnector).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // Each loop's calls get connections of their own: gRPC serializes the
  // work of one HTTP/2 connection (its combiner), so one connection for all
  // loops would be one lock every frame of every call passes through, and
  // more --io_threads would not carry more calls. Without a local pool,
  // gRPC shares the subchannels of equal channels across the process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // PushConnector retries a failed attempt itself, on another address, until
  // the accept deadline; gRPC's retry filter would add nothing but its cost
  // on every message of every call (about 10 KiB per call and a few per cent
  // of the CPU per frame, measured side by side at 100 calls).
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
  PushLink::Options link_options;
  link_options.deadline = config_.max_call_duration;
  link_options.max_queued_audio_events = static_cast<size_t>(config_.backend_queue_ms / 20);
  link_options.bearer_token = config_.auth_token;
  link_options.inbound_latency = &metrics_->inbound_latency();
  // Every push stream is tracked until it ends, so Shutdown can wait for the
  // backends to take each call's last event.
  link_options.streams = &push_streams_;
  PushConnector::Options options;
  options.accept_timeout = config_.accept_timeout;
  options.backend_attempts = config_.backend_attempts;

  if (config_.push_transport == PushTransport::kLoop ||
      (config_.push_transport == PushTransport::kAuto && !config_.backend_tls())) {
    // Each loop's own connections: a call's frames never leave its loop.
    for (const auto& loop : loops_) {
      absl::StatusOr<std::shared_ptr<grpc_client::Channel>> channel =
          grpc_client::Channel::Create(loop.get(), config_.backend_target, {});
      if (!channel.ok()) return Prefixed("backend", channel.status());
      loop_channels_.push_back(*std::move(channel));
    }
    services_.connect_backend = [this, link_options, options](BackendConnector::Context context) {
      grpc_client::Channel* channel = LoopChannelFor(context.loop);
      return std::make_shared<PushConnector>(
          std::move(context), options,
          [channel, link_options](uint64_t link_id, std::weak_ptr<LinkObserver> observer) {
            return LoopPushLink::Start(channel, link_id, std::move(observer), link_options);
          });
    };
    return absl::OkStatus();
  }

  for (size_t i = 0; i < loops_.size(); ++i) {
    backend_channels_.push_back(
        grpc::CreateCustomChannel(config_.backend_target, credentials, args));
    backend_stubs_.push_back(bridge::v1::CallHandlerService::NewStub(backend_channels_.back()));
  }
  services_.connect_backend = [this, link_options, options](BackendConnector::Context context) {
    bridge::v1::CallHandlerService::Stub* stub = StubFor(context.loop);
    return std::make_shared<PushConnector>(
        std::move(context), options,
        [stub, link_options](uint64_t link_id, std::weak_ptr<LinkObserver> observer) {
          return PushLink::Start(stub, link_id, std::move(observer), link_options);
        });
  };
  return absl::OkStatus();
}

grpc_client::Channel* Bridge::LoopChannelFor(const event::Dispatcher* loop) const {
  for (size_t i = 0; i < loops_.size(); ++i) {
    if (loops_[i].get() == loop) return loop_channels_[i].get();
  }
  return loop_channels_[0].get();  // not one of ours (tests): loop 0's
}

bridge::v1::CallHandlerService::Stub* Bridge::StubFor(const event::Dispatcher* loop) const {
  for (size_t i = 0; i < loops_.size(); ++i) {
    if (loops_[i].get() == loop) return backend_stubs_[i].get();
  }
  return backend_stubs_[0].get();  // not one of ours (tests): any connection serves
}

void Bridge::ConfigurePull() {
  services_.connect_backend = [this](BackendConnector::Context context) {
    return std::make_shared<PullConnector>(std::move(context), config_.claim_timeout,
                                           dispatcher_.get());
  };
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
  if (counters_sum_.Sum(&BridgeCounters::open_connections) >= config_.max_calls) {
    // Over the limit: close at once rather than queue a call nobody serves.
    counters_.connections_rejected_limit++;
    ::close(fd);
    log::Warning("connection_refused", {{"reason", "call_limit"},
                                        {"listener", listener->name},
                                        {"peer", peer},
                                        {"max_calls", config_.max_calls}});
    return;
  }
  const size_t index = next_loop_++ % loops_.size();
  event::Dispatcher* loop = loops_[index].get();
  // Released when the call closes its socket, on its loop.
  loop_counters_[index]->open_connections++;
  auto call =
      std::make_shared<Call>(loop, fd, listener, std::move(peer), loop_services_[index].get());
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
    if (loop_server_ != nullptr) {
      loop_server_->StopAccepting();
      loop_server_->Close();
    }
    server_->Shutdown(absl::ToChronoTime(absl::Now()));
    server_->Wait();
    server_.reset();
  }
  FlushPushStreams(deadline);
  // The loops' own backend connections close on their loops; the channels
  // go once the loops have stopped (a resolver thread may still post).
  for (size_t i = 0; i < loop_channels_.size(); ++i) {
    loops_[i]->Post([channel = loop_channels_[i]] {
      channel->Shutdown(absl::UnavailableError("the bridge is shutting down"));
    });
  }
  for (auto& loop : loops_) loop->Stop();
  for (auto& loop : loops_) loop->Join();
  loop_channels_.clear();
  loop_server_.reset();
  listeners_.clear();
  loops_.clear();
}

}  // namespace audiosocket
