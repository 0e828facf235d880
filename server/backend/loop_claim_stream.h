#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_LOOP_CLAIM_STREAM_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_LOOP_CLAIM_STREAM_H_

// Pull mode on the event loops: one worker's ClaimCall stream served by the
// loop's own HTTP/2 server (lib/grpc_server), first an idle slot in the
// ClaimDispatcher, then one call's backend link. Same contract as
// ClaimStream, which runs on gRPC C++'s server; this one never leaves its
// loop, and the dispatcher gives it calls on that loop first, so a call's
// frames stay on one thread.
//
// Threads: the stream's state is confined to its connection's loop.
// ClaimSlot methods may be called from any thread: off the loop they are
// posted to it, in order. Observer calls come on the loop. Ownership:
// shared by the connection (as its handler, until the stream ends), the
// dispatcher while idle, and the call once attached.

#include <atomic>
#include <cstdint>
#include <memory>

#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/grpc_client/message_reader.h"
#include "lib/grpc_server/server_connection.h"
#include "server/backend/claim_dispatcher.h"
#include "server/backend/framed_outbox.h"
#include "server/backend/stream_tracker.h"
#include "server/ops/counters.h"
#include "server/ops/latency_histogram.h"

namespace audiosocket {

class LoopClaimStream final : public ClaimSlot,
                              public grpc_server::StreamHandler,
                              public std::enable_shared_from_this<LoopClaimStream> {
 public:
  struct Options {
    size_t max_queued_audio_events = 50;
    BridgeCounters* counters = nullptr;  // pull_streams, while open
    LatencyHistogram* inbound_latency = nullptr;
    // When set, the stream is registered there until it ends, so shutdown
    // can wait for its last writes.
    StreamTracker* streams = nullptr;
    // How the worker compresses its messages (its grpc-encoding).
    grpc_client::MessageEncoding encoding = grpc_client::MessageEncoding::kIdentity;
  };

  // The stream `stream_id` of `connection`.
  static std::shared_ptr<LoopClaimStream> Create(grpc_server::ServerConnection* connection,
                                                 int32_t stream_id, ClaimDispatcher* dispatcher,
                                                 const Options& options);
  ~LoopClaimStream() override;

  // ClaimSlot
  const bridge::v1::ClaimCall& claim() const override { return claim_; }
  void Attach(uint64_t link_id, std::weak_ptr<LinkObserver> observer) override;
  void EndIdle(grpc::Status status) override;
  event::Dispatcher* loop() const override { return loop_; }

  // BackendLink
  void SendEvent(bridge::v1::CallEvent&& event) override;
  bridge::v1::CallEvent SpareAudioEvent() override;
  void ExtendAudioQueue(uint64_t audio_events) override;
  void CloseAfterQueued() override;
  void Abort() override;
  uint64_t dropped_audio_samples() const override { return dropped_samples_.load(); }
  uint64_t dropped_audio_events() const override { return dropped_events_.load(); }

  // grpc_server::StreamHandler
  void OnRequestData(absl::string_view data) override;
  void OnRequestEnd() override;
  size_t ReadBody(uint8_t* out, size_t size, bool* end, absl::Status* status) override;
  void OnClose(const absl::Status& status) override;

 private:
  LoopClaimStream(grpc_server::ServerConnection* connection, int32_t stream_id,
                  ClaimDispatcher* dispatcher, const Options& options);
  // Runs `task` on the loop: now when already there, else posted.
  template <typename Task>
  void OnLoop(Task task);
  void OnRequest(bridge::v1::ClaimCallRequest request);
  // Queues `event` for the worker (loop).
  void Queue(bridge::v1::CallEvent event);
  // Finishes once, after what is queued (loop).
  void FinishOnce(absl::Status status);
  // FinishOnce for what the worker sent, counted in pull_stream_errors.
  void FailForWorker(absl::Status status);
  // Resets the stream: the worker hears nothing more (loop).
  void ResetStream();
  void NotifyClosed(grpc::Status status);
  // The stream is over for this side: forget the slot, release counts.
  void Done();
  void CountDrops();

  const std::weak_ptr<grpc_server::ServerConnection> connection_;
  event::Dispatcher* const loop_;
  const int32_t stream_id_;
  ClaimDispatcher* const dispatcher_;
  const Options options_;
  uint64_t stream_key_ = 0;

  // Loop state.
  grpc_client::MessageReader reader_;
  bridge::v1::ClaimCall claim_;  // set before the slot is added, then fixed
  FramedOutbox<bridge::v1::ClaimCallResponse> outbox_;
  bool claimed_ = false;
  bool attached_ = false;
  uint64_t link_id_ = 0;
  std::weak_ptr<LinkObserver> observer_;
  bool closed_notified_ = false;
  bool read_closed_ = false;
  bool finish_requested_ = false;
  bool finished_ = false;  // the status is on its way
  absl::Status pending_finish_;
  bool done_ = false;

  std::atomic<uint64_t> dropped_samples_{0};
  std::atomic<uint64_t> dropped_events_{0};
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_LOOP_CLAIM_STREAM_H_
