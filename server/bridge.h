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
#include "absl/time/time.h"
#include "lib/event/epoll_dispatcher.h"
#include "server/call.h"
#include "server/call_registry.h"
#include "server/claim_service.h"
#include "server/config.h"
#include "server/counters.h"
#include "server/metrics.h"
#include "server/stream_tracker.h"

namespace audiosocket {

class Listener;

class Bridge {
 public:
  Bridge(BridgeConfig config, int io_threads = 1);
  ~Bridge();

  // Binds every listener and the gRPC and metrics ports, and starts
  // serving. Errors start with the name of the setting at fault
  // ("tls_cert_file: ...").
  absl::Status Start();

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

  const BridgeCounters& counters() const { return counters_; }
  CallRegistry& registry() { return registry_; }
  ClaimDispatcher& dispatcher() { return *dispatcher_; }

 private:
  friend class Listener;
  // On loop 0: a connection was accepted on `listener`.
  void Accept(int fd, const ListenerConfig* listener, std::string peer);
  // Waits until every push stream reached OnDone, up to `deadline`; then
  // cancels the rest and waits (briefly) for them to go.
  void FlushPushStreams(absl::Time deadline);

  BridgeConfig config_;
  BridgeCounters counters_;
  CallRegistry registry_;
  std::unique_ptr<ClaimDispatcher> dispatcher_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<BridgeService> service_;
  // ClaimCall and WatchCalls streams not yet at OnDone; declared before the
  // gRPC server so it outlives every stream the server runs.
  StreamTracker server_streams_;
  // Push streams not yet at OnDone; declared before the channel so it
  // outlives it and every stream on it.
  StreamTracker push_streams_;
  std::shared_ptr<grpc::Channel> backend_channel_;
  std::unique_ptr<bridge::v1::CallHandlerService::Stub> backend_stub_;
  std::unique_ptr<grpc::Server> server_;
  int grpc_port_ = 0;
  std::vector<int16_t> fallback_audio_;
  CallServices services_;

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
