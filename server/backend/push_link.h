#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PUSH_LINK_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PUSH_LINK_H_

// Push mode: one client stream to a backend's CallHandlerService.HandleCall.
//
// Lifetime: the gRPC reactor keeps itself alive (self_) until OnDone; the
// call holds a shared_ptr too, so calling a finished link is safe and does
// nothing. Threads: SendEvent/CloseAfterQueued/Abort from the call's loop;
// reactions on gRPC threads. State is guarded by mu_; gRPC Start* and
// RemoveHold are called after releasing it.

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "server/backend/backend_link.h"
#include "server/backend/event_outbox.h"
#include "server/backend/stream_tracker.h"
#include "server/ops/latency_histogram.h"

namespace audiosocket {

class PushLink final : public BackendLink,
                       public grpc::ClientBidiReactor<bridge::v1::HandleCallRequest,
                                                      bridge::v1::HandleCallResponse> {
 public:
  struct Options {
    absl::Duration deadline = absl::Hours(24);
    size_t max_queued_audio_events = 50;
    std::string bearer_token;  // sent as "authorization: Bearer ..." when set
    LatencyHistogram* inbound_latency = nullptr;
    // When set, the stream is registered there until OnDone (shutdown
    // waits for it). Must outlive the stream.
    StreamTracker* streams = nullptr;
  };

  // Opens the stream. `observer` is told of commands and the end.
  static std::shared_ptr<PushLink> Start(bridge::v1::CallHandlerService::Stub* stub,
                                         uint64_t link_id, std::weak_ptr<LinkObserver> observer,
                                         const Options& options);

  void SendEvent(bridge::v1::CallEvent&& event) override;
  void ExtendAudioQueue(uint64_t audio_events) override;
  void CloseAfterQueued() override;
  void Abort() override;
  uint64_t dropped_audio_samples() const override;
  uint64_t dropped_audio_events() const override;

  // gRPC reactions.
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override {}
  void OnDone(const grpc::Status& status) override;

 private:
  PushLink(uint64_t link_id, std::weak_ptr<LinkObserver> observer, const Options& options);
  // Ends a Start* call counted in starting_ops_, removing the hold if its
  // release waited for it. Call without mu_ held.
  void FinishStartingOp();
  // Removes the hold once; call without mu_ held.
  void ReleaseHoldOnce();

  const uint64_t link_id_;
  LatencyHistogram* const inbound_latency_;
  StreamTracker* const streams_;
  uint64_t stream_key_ = 0;  // set in Start, before any reaction
  const std::weak_ptr<LinkObserver> observer_;
  grpc::ClientContext context_;
  bridge::v1::HandleCallResponse response_;  // read buffer, owned by the in-flight read
  std::shared_ptr<PushLink> self_;           // reset in OnDone

  mutable absl::Mutex mu_;
  EventOutbox<bridge::v1::HandleCallRequest> outbox_ ABSL_GUARDED_BY(mu_);
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  bool writes_done_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;  // no write can succeed any more
  bool hold_released_ ABSL_GUARDED_BY(mu_) = false;
  // Start* calls made from outside reactions (the call's loop) that have
  // been decided under mu_ but not yet returned. The hold is not removed
  // while any is under way: once it is, the RPC may complete and gRPC free
  // the stream those calls are about to use.
  int starting_ops_ ABSL_GUARDED_BY(mu_) = 0;
  bool release_deferred_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PUSH_LINK_H_
