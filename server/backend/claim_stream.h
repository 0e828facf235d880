#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_CLAIM_STREAM_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_CLAIM_STREAM_H_

// Pull mode's backend link: one ClaimCall stream, first an idle worker slot
// in the ClaimDispatcher, then one call's link to its backend.
//
// Threads: gRPC reactions run on gRPC threads; the call's methods run on
// its loop. The stream guards its state with its own mutex and never calls
// out (gRPC, the call) while holding it.

#include <grpcpp/grpcpp.h>

#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "server/backend/backend_link.h"
#include "server/backend/claim_dispatcher.h"
#include "server/backend/event_outbox.h"
#include "server/backend/stream_tracker.h"
#include "server/ops/counters.h"
#include "server/ops/latency_histogram.h"

namespace audiosocket {

// One ClaimCall stream: a worker slot, then one call's backend link.
class ClaimStream final
    : public ClaimSlot,
      public grpc::ServerBidiReactor<bridge::v1::ClaimCallRequest, bridge::v1::ClaimCallResponse> {
 public:
  ClaimStream(grpc::CallbackServerContext* context, ClaimDispatcher* dispatcher,
              size_t max_queued_audio_events, BridgeCounters* counters,
              LatencyHistogram* inbound_latency);
  // Begins reading; keeps itself alive until OnDone. When `streams` is
  // set, the stream is registered there until OnDone (shutdown waits).
  void Begin(StreamTracker* streams = nullptr);

  // ClaimSlot
  const bridge::v1::ClaimCall& claim() const override { return claim_; }
  void Attach(uint64_t link_id, std::weak_ptr<LinkObserver> observer) override;
  void EndIdle(grpc::Status status) override { FinishOnce(std::move(status)); }

  void SendEvent(bridge::v1::CallEvent&& event) override;
  void ExtendAudioQueue(uint64_t audio_events) override;
  void CloseAfterQueued() override;
  void Abort() override;
  uint64_t dropped_audio_samples() const override;
  uint64_t dropped_audio_events() const override;

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // Finishes once, after the write in flight (Finish counts as a write).
  void FinishOnce(grpc::Status status);
  void NotifyClosed(grpc::Status status);

  grpc::CallbackServerContext* const context_;
  ClaimDispatcher* const dispatcher_;
  BridgeCounters* const counters_;
  LatencyHistogram* const inbound_latency_;
  bridge::v1::ClaimCallRequest request_;  // read buffer
  bridge::v1::ClaimCall claim_;
  std::shared_ptr<ClaimStream> self_;
  StreamTracker* streams_ = nullptr;  // set in Begin, before any reaction
  uint64_t stream_key_ = 0;

  mutable absl::Mutex mu_;
  EventOutbox<bridge::v1::ClaimCallResponse> outbox_ ABSL_GUARDED_BY(mu_);
  bool claimed_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t link_id_ ABSL_GUARDED_BY(mu_) = 0;
  std::weak_ptr<LinkObserver> observer_ ABSL_GUARDED_BY(mu_);
  bool attached_ ABSL_GUARDED_BY(mu_) = false;
  bool closed_notified_ ABSL_GUARDED_BY(mu_) = false;
  // The worker stopped sending (half-close or gone) before a call attached.
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status pending_finish_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_CLAIM_STREAM_H_
