#ifndef AUDIOSOCKET_BRIDGE_SERVER_GRPC_BRIDGE_SERVICE_H_
#define AUDIOSOCKET_BRIDGE_SERVER_GRPC_BRIDGE_SERVICE_H_

// The Bridge gRPC service: ClaimCall streams for pull-mode workers (handed
// to the ClaimDispatcher as slots), and the operations RPCs (ListCalls,
// WatchCalls, HangupCall) over the call registry.
//
// Threads: gRPC threads. State shared between streams is guarded by
// watch_mu_; the service never calls out while holding it.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "server/backend/claim_dispatcher.h"
#include "server/backend/stream_tracker.h"
#include "server/call/call_registry.h"
#include "server/grpc/bearer_auth.h"
#include "server/ops/counters.h"
#include "server/ops/latency_histogram.h"

namespace audiosocket {

class WatchStream;

// The BridgeService (pull mode and call operations).
class BridgeService final : public bridge::v1::BridgeService::CallbackService {
 public:
  struct Options {
    size_t max_queued_audio_events = 50;
    // False in push mode: ClaimCall then fails with FAILED_PRECONDITION
    // instead of waiting for calls that never come.
    bool claims_enabled = true;
    int64_t max_pull_streams = 10000;
    // When set, every RPC must carry "authorization: Bearer <token>".
    std::string auth_token;
    BridgeCounters* counters = nullptr;
    LatencyHistogram* inbound_latency = nullptr;
    // When set, every ClaimCall and WatchCalls stream is registered there
    // until OnDone, so shutdown can wait for their last writes.
    StreamTracker* streams = nullptr;
  };
  BridgeService(ClaimDispatcher* dispatcher, CallRegistry* registry, Options options);

  grpc::ServerBidiReactor<bridge::v1::ClaimCallRequest, bridge::v1::ClaimCallResponse>* ClaimCall(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* ListCalls(grpc::CallbackServerContext* context,
                                      const bridge::v1::ListCallsRequest* request,
                                      bridge::v1::ListCallsResponse* response) override;
  grpc::ServerWriteReactor<bridge::v1::WatchCallsResponse>* WatchCalls(
      grpc::CallbackServerContext* context, const bridge::v1::WatchCallsRequest* request) override;
  grpc::ServerUnaryReactor* HangupCall(grpc::CallbackServerContext* context,
                                       const bridge::v1::HangupCallRequest* request,
                                       bridge::v1::HangupCallResponse* response) override;

  // Whether a new ClaimCall stream may open: OK, or the status that
  // refuses it (authentication, push mode, --max_pull_streams), counted.
  // Shared with the loops' own server (loop_server.h).
  grpc::Status AdmitClaim(std::optional<std::string_view> authorization) const;
  // Where a stream admitted on the loops' own server goes: the same
  // dispatcher, counters and bounds as this service's streams.
  ClaimDispatcher* dispatcher() const { return dispatcher_; }
  const Options& options() const { return options_; }

  // Shutdown, once no call is left: ends the streams that would otherwise
  // only end at the gRPC server's shutdown deadline (idle ClaimCall slots,
  // WatchCalls streams, now and any opened later) with UNAVAILABLE, after
  // what they have queued. Streams bound to a call end with their call.
  void EndIdleStreams();

 private:
  ClaimDispatcher* const dispatcher_;
  CallRegistry* const registry_;
  const Options options_;
  const BearerAuth auth_;
  absl::Mutex watch_mu_;
  // Open WatchCalls streams; expired ones are dropped as new ones come.
  std::vector<std::weak_ptr<WatchStream>> watchers_ ABSL_GUARDED_BY(watch_mu_);
  bool ending_ ABSL_GUARDED_BY(watch_mu_) = false;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_GRPC_BRIDGE_SERVICE_H_
