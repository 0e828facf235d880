#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_LOOP_PUSH_LINK_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_LOOP_PUSH_LINK_H_

// Push mode on the call's own loop: one HandleCall stream over the loop's
// HTTP/2 connection to the backend (lib/grpc_client). Same contract as
// PushLink, which uses gRPC C++'s client; this one never leaves the loop,
// and every call's frames of a loop round leave in one write.
//
// Threads: the link's state is confined to its channel's loop. BackendLink
// methods may be called from any thread: off the loop they are posted to
// it, in order. Observer calls come on the loop. Ownership: shared by the
// call and, while the stream is open, by the connection (as its handler).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/grpc_client/channel.h"
#include "server/backend/backend_link.h"
#include "server/backend/framed_outbox.h"
#include "server/backend/push_link.h"
#include "server/backend/stream_tracker.h"

namespace audiosocket {

class LoopPushLink final : public BackendLink,
                           public grpc_client::StreamHandler,
                           public std::enable_shared_from_this<LoopPushLink> {
 public:
  using Options = PushLink::Options;

  // Opens the stream on `channel` (which must outlive it).
  static std::shared_ptr<LoopPushLink> Start(grpc_client::Channel* channel, uint64_t link_id,
                                             std::weak_ptr<LinkObserver> observer,
                                             const Options& options);

  // BackendLink
  void SendEvent(bridge::v1::CallEvent&& event) override;
  bridge::v1::CallEvent SpareAudioEvent() override;
  void ExtendAudioQueue(uint64_t audio_events) override;
  void CloseAfterQueued() override;
  void Abort() override;
  uint64_t dropped_audio_samples() const override { return dropped_samples_.load(); }
  uint64_t dropped_audio_events() const override { return dropped_events_.load(); }

  // grpc_client::StreamHandler
  size_t ReadBody(uint8_t* out, size_t size, bool* end) override;
  void OnMessage(absl::string_view message) override;
  void OnClose(const absl::Status& status) override;

 private:
  LoopPushLink(grpc_client::Channel* channel, uint64_t link_id,
               std::weak_ptr<LinkObserver> observer, const Options& options);
  void Open();
  // Runs `task` on the loop: now when already there, else posted.
  template <typename Task>
  void OnLoop(Task task);
  // SendEvent's work, on the loop.
  void QueueEvent(bridge::v1::CallEvent&& event);
  void Finish(const grpc::Status& status);
  void CountDrops();

  grpc_client::Channel* const channel_;
  event::Dispatcher* const loop_;
  const uint64_t link_id_;
  const Options options_;
  const std::weak_ptr<LinkObserver> observer_;
  StreamTracker* const streams_;
  uint64_t stream_key_ = 0;

  // Loop state.
  FramedOutbox<bridge::v1::HandleCallRequest> outbox_;
  std::shared_ptr<grpc_client::Connection> connection_;
  int32_t stream_id_ = 0;
  bool closing_ = false;
  bool done_ = false;

  std::atomic<uint64_t> dropped_samples_{0};
  std::atomic<uint64_t> dropped_events_{0};
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_LOOP_PUSH_LINK_H_
