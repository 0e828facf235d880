#ifndef AUDIOSOCKET_BRIDGE_SERVER_GRPC_LOOP_SERVER_H_
#define AUDIOSOCKET_BRIDGE_SERVER_GRPC_LOOP_SERVER_H_

// The bridge's gRPC port served on its event loops (--server_transport):
// pull mode's ClaimCall streams run on the loops (LoopClaimStream), each
// connection on one loop, accepted round-robin; every other method
// (ListCalls, WatchCalls, HangupCall, health checks, reflection) is passed
// through to gRPC C++'s server (ProxyStream), which then listens on no port
// but on one socketpair per loop. ClaimCall's admission (bearer token, push
// mode, --max_pull_streams) is BridgeService's, the same on both servers.
//
// Threads: Bind, Start and the shutdown steps are called by the owner (the
// bridge) off the loops and wait for the loops to do them; everything else
// runs on the loops. Per-loop state is confined to its loop. Ownership: the
// owner keeps the server, the loops and the inner gRPC server alive until
// Close() returned.

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "lib/event/dispatcher.h"
#include "lib/grpc_client/connection.h"
#include "lib/grpc_server/server_connection.h"
#include "server/audiosocket/listener.h"
#include "server/grpc/bridge_service.h"

namespace audiosocket {

class LoopServer {
 public:
  LoopServer(std::vector<event::Dispatcher*> loops, BridgeService* service);
  ~LoopServer();

  // Binds `listen` ("host:port"; port 0 picks one). Before the loops run.
  absl::Status Bind(const std::string& listen);
  int port() const { return port_; }
  // Starts accepting; other methods go to `inner`, which must have been
  // built with no listening port and outlive this server's connections.
  void Start(grpc::Server* inner);
  // Stops accepting new connections.
  void StopAccepting();
  // Closes every connection now (GOAWAY first), and the inner ones.
  void Close();

 private:
  // One loop's connections, and its connection to the inner server.
  struct PerLoop {
    event::Dispatcher* loop = nullptr;
    absl::flat_hash_map<grpc_server::ServerConnection*,
                        std::shared_ptr<grpc_server::ServerConnection>>
        connections;
    std::shared_ptr<grpc_client::Connection> inner;
  };

  void Accept(int fd, std::string peer);
  void Serve(PerLoop* per_loop, int fd, std::string peer);
  absl::StatusOr<std::shared_ptr<grpc_server::StreamHandler>> Route(
      PerLoop* per_loop, grpc_server::ServerConnection* connection, int32_t stream_id,
      const grpc_server::RequestHead& head);
  // The loop's connection to the inner server, made on first use and again
  // after it closed.
  absl::StatusOr<grpc_client::Connection*> Inner(PerLoop* per_loop);
  // Runs `task` on each loop and waits for all of them (bounded).
  void OnEveryLoop(const std::function<void(PerLoop*)>& task);

  BridgeService* const service_;
  std::vector<std::unique_ptr<PerLoop>> loops_;
  std::unique_ptr<Listener> listener_;  // on loops_[0]
  std::atomic<uint64_t> accepted_{0};
  std::atomic<uint64_t> rejected_{0};
  std::atomic<size_t> next_loop_{0};
  std::atomic<grpc::Server*> inner_server_{nullptr};
  // Start() ran: the loops serve, and the shutdown steps run on them. Set
  // and read by the owner's thread only.
  bool started_ = false;
  int port_ = 0;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_GRPC_LOOP_SERVER_H_
