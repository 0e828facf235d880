#ifndef AUDIOSOCKET_BRIDGE_SERVER_CLAIM_SERVICE_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CLAIM_SERVICE_H_

// Pull mode: the Bridge gRPC service. Backends open ClaimCall streams; an
// open stream that has claimed nothing yet is an idle worker slot. The
// dispatcher pairs waiting calls with slots, first come first served.
//
// Threads: gRPC reactions run on gRPC threads; calls run on their loops.
// The dispatcher and each stream guard their state with their own mutex
// and never call out (gRPC, calls) while holding it.

#include <grpcpp/grpcpp.h>
#include <prometheus/histogram.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "server/backend_link.h"
#include "server/call_registry.h"
#include "server/counters.h"
#include "server/event_outbox.h"
#include "server/stream_tracker.h"

namespace audiosocket {

class ClaimStream;
class WatchStream;

// A call waiting for a worker; implemented by Call. Thread-safe.
class WaitingCall {
 public:
  virtual ~WaitingCall() = default;
  virtual const std::string& call_id() const = 0;
  virtual const std::string& listener_name() const = 0;
  // The dispatcher chose `stream` for this call. Asynchronous.
  virtual void OnClaimed(std::shared_ptr<ClaimStream> stream) = 0;
};

// Streams are counted and limited by BridgeService (--max_pull_streams).
class ClaimDispatcher {
 public:
  // A call starts waiting; bound at once when a slot matches.
  void Offer(std::shared_ptr<WaitingCall> call);
  // The call stops waiting. False when it was already paired (its
  // OnClaimed is on its way).
  bool Withdraw(const WaitingCall* call);
  // A worker's claim: paired with a waiting call, or parked as idle.
  void AddSlot(std::shared_ptr<ClaimStream> slot);
  // A slot went away while idle (no-op when it was paired).
  void RemoveSlot(const ClaimStream* slot);
  // A paired call could not take its slot (it ended meanwhile): the slot
  // waits for the next call.
  void ReturnSlot(std::shared_ptr<ClaimStream> slot);

  size_t idle_slots() const;
  size_t waiting_calls() const;

  // Shutdown: idle slots are ended with `status` now, and any slot added
  // or returned later at once, so no worker keeps the gRPC server's
  // shutdown waiting for a call that will never come.
  void EndIdleSlots(const grpc::Status& status);

 private:
  static bool Matches(const ClaimStream& slot, const WaitingCall& call);
  // Pairs `slot` with the oldest matching call, or parks it (at the front
  // of the line when `front`).
  void PairOrPark(std::shared_ptr<ClaimStream> slot, bool front);

  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<ClaimStream>> slots_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<WaitingCall>> calls_ ABSL_GUARDED_BY(mu_);
  // Set by EndIdleSlots: new slots are ended with this status.
  std::optional<grpc::Status> ended_ ABSL_GUARDED_BY(mu_);
};

// One ClaimCall stream: a worker slot, then one call's backend link.
class ClaimStream final
    : public BackendLink,
      public grpc::ServerBidiReactor<bridge::v1::ClaimCallRequest, bridge::v1::ClaimCallResponse> {
 public:
  ClaimStream(grpc::CallbackServerContext* context, ClaimDispatcher* dispatcher,
              size_t max_queued_audio_events, BridgeCounters* counters,
              prometheus::Histogram* inbound_latency);
  // Begins reading; keeps itself alive until OnDone. When `streams` is
  // set, the stream is registered there until OnDone (shutdown waits).
  void Begin(StreamTracker* streams = nullptr);

  const bridge::v1::ClaimCall& claim() const { return claim_; }  // set before AddSlot

  // The call took this slot: commands now go to `observer`.
  void Attach(uint64_t link_id, std::weak_ptr<LinkObserver> observer);

  void SendEvent(bridge::v1::CallEvent event) override;
  void ExtendAudioQueue(uint64_t audio_events) override;
  void CloseAfterQueued() override;
  void Abort() override;
  uint64_t dropped_audio_samples() const override;
  uint64_t dropped_audio_events() const override;

  // Ends a slot no call took (shutdown), after any queued write.
  void EndIdle(grpc::Status status) { FinishOnce(std::move(status)); }

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
  prometheus::Histogram* const inbound_latency_;
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
    prometheus::Histogram* inbound_latency = nullptr;
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

  // Shutdown, once no call is left: ends the streams that would otherwise
  // only end at the gRPC server's shutdown deadline (idle ClaimCall slots,
  // WatchCalls streams, now and any opened later) with UNAVAILABLE, after
  // what they have queued. Streams bound to a call end with their call.
  void EndIdleStreams();

 private:
  // OK, or UNAUTHENTICATED naming what is wrong.
  grpc::Status Authenticate(const grpc::CallbackServerContext* context) const;

  ClaimDispatcher* const dispatcher_;
  CallRegistry* const registry_;
  const Options options_;
  absl::Mutex watch_mu_;
  // Open WatchCalls streams; expired ones are dropped as new ones come.
  std::vector<std::weak_ptr<WatchStream>> watchers_ ABSL_GUARDED_BY(watch_mu_);
  bool ending_ ABSL_GUARDED_BY(watch_mu_) = false;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CLAIM_SERVICE_H_
