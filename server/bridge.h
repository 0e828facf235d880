#ifndef AUDIOSOCKET_BRIDGE_SERVER_BRIDGE_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BRIDGE_H_

// The bridge as a whole: AudioSocket listeners, the event loops that run
// calls, the gRPC server (BridgeService, health, reflection) and, in push
// mode, the channel to the backends.
//
// Threads: Start/Drain/Shutdown from one controlling thread (main). Each
// event loop runs on its own thread; listeners accept on loop 0 and hand
// each connection to a loop round-robin.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/grpc_client/channel.h"
#include "server/backend/claim_stream.h"
#include "server/backend/stream_tracker.h"
#include "server/call/call.h"
#include "server/call/call_registry.h"
#include "server/config/config.h"
#include "server/grpc/bridge_service.h"
#include "server/grpc/loop_server.h"
#include "server/ops/counters.h"
#include "server/ops/metrics.h"
#include "server/playout/fallback_audio.h"
#include "server/playout/slot_ticker.h"

namespace audiosocket {

class Listener;

class Bridge {
 public:
  // Reads the credentials and the fallback audio (rendered once at every
  // rate), binds every listener and the gRPC and metrics ports, and starts
  // serving on `io_threads` event loops. Errors start with the name of the
  // setting at fault ("tls_cert_file: ..."); nothing is left running then.
  static absl::StatusOr<std::unique_ptr<Bridge>> Create(BridgeConfig config, int io_threads = 1);
  ~Bridge();

  // Where listener i actually listens ("host:port"), and the gRPC port.
  std::vector<std::string> audiosocket_addresses() const;
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_ != nullptr ? metrics_->port() : 0; }

  // Stops accepting new connections and reports NOT_SERVING.
  void StopAccepting();
  // Waits up to `timeout` for active calls to end by themselves; returns
  // true when none is left.
  bool WaitForCalls(absl::Duration timeout);
  // Ends every remaining call with reason SHUTDOWN (hang-up sent, backend
  // told), stops gRPC and the loops. Returns once every backend stream
  // finished (its last event delivered) or, at the latest, `timeout` after
  // the calls closed; streams still open then are cancelled.
  void Shutdown(absl::Duration timeout);

  int64_t active_calls() const { return counters_sum_.Sum(&BridgeCounters::active_calls); }
  CallRegistry& registry() { return registry_; }
  ClaimDispatcher& dispatcher() { return *dispatcher_; }

 private:
  Bridge(BridgeConfig config, int io_threads);
  absl::Status Start();
  // How each call finds its backend, by mode.
  absl::Status ConfigurePush(std::shared_ptr<grpc::ChannelCredentials> credentials);
  void ConfigurePull();
  // Push mode: the backend stub of `loop`'s calls.
  bridge::v1::CallHandlerService::Stub* StubFor(const event::Dispatcher* loop) const;
  grpc_client::Channel* LoopChannelFor(const event::Dispatcher* loop) const;
  // On loop 0: a connection was accepted on `listener`.
  void Accept(int fd, const ListenerConfig* listener, std::string peer);
  // Waits until every push stream reached OnDone, up to `deadline`; then
  // cancels the rest and waits (briefly) for them to go.
  void FlushPushStreams(absl::Time deadline);

  BridgeConfig config_;
  // Listeners' and gRPC threads' counts; each loop's calls count in
  // loop_counters_[loop]. counters_sum_ reads them all.
  BridgeCounters counters_;
  std::vector<std::unique_ptr<BridgeCounters>> loop_counters_;
  CounterSet counters_sum_;
  CallRegistry registry_;
  std::unique_ptr<ClaimDispatcher> dispatcher_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<BridgeService> service_;
  // ClaimCall and WatchCalls streams not yet at OnDone; declared before the
  // gRPC server so it outlives every stream the server runs.
  StreamTracker server_streams_;
  // Push streams not yet at OnDone; declared before the channels so it
  // outlives them and every stream on them.
  StreamTracker push_streams_;
  // Push mode: one channel per loop, [i] for loops_[i]'s calls.
  std::vector<std::shared_ptr<grpc::Channel>> backend_channels_;
  std::vector<std::unique_ptr<bridge::v1::CallHandlerService::Stub>> backend_stubs_;
  // Push mode over the loops' own HTTP/2 client: [i] for loops_[i]'s calls.
  std::vector<std::shared_ptr<grpc_client::Channel>> loop_channels_;
  std::unique_ptr<grpc::Server> server_;
  // Serves the gRPC port on the loops when config_.loop_server(); server_
  // then listens on no port of its own (loop_server.h).
  std::unique_ptr<LoopServer> loop_server_;
  int grpc_port_ = 0;
  FallbackAudio fallback_audio_;
  // What calls share, as configured; each loop's copy has its counters.
  CallServices services_;
  // Before loop_services_: destroyed after every call that ticks on them.
  std::vector<std::unique_ptr<SlotTicker>> loop_tickers_;
  std::vector<std::unique_ptr<CallServices>> loop_services_;

  std::vector<std::unique_ptr<event::EpollDispatcher>> loops_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::atomic<size_t> next_loop_{0};
  std::atomic<bool> accepting_{false};

  // All calls, for shutdown. Guarded by mu_.
  absl::Mutex mu_;
  std::vector<std::weak_ptr<Call>> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BRIDGE_H_
