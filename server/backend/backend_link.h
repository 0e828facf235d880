#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_BACKEND_LINK_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_BACKEND_LINK_H_

// The seam between a call and its backend's gRPC stream. In push mode the
// link is a client stream the bridge opened (PushLink); in pull mode it is
// a worker's ClaimCall stream (ClaimStream). The call does not know which.

#include <grpcpp/support/status.h>

#include <cstdint>
#include <memory>
#include <variant>

#include "absl/strings/string_view.h"
#include "audiosocket/bridge/v1/bridge.pb.h"

namespace audiosocket {

// A call's stream to its backend. Thread-safe: methods may be called from
// any thread; they never block on the network.
class BackendLink {
 public:
  virtual ~BackendLink() = default;
  // Queues an event (bounded: the oldest queued audio is dropped first;
  // other events are bounded in bytes, past which the stream ends and the
  // observer hears BackendNotReadingStatus()).
  virtual void SendEvent(bridge::v1::CallEvent&& event) = 0;
  // An event to fill with the next frame of caller audio and send: an
  // emptied audio event the link already wrote, when it keeps those (its
  // chunk and bytes are reused rather than allocated per frame), else an
  // empty one. Call it on the call's loop.
  virtual bridge::v1::CallEvent SpareAudioEvent() { return {}; }
  // Room for `audio_events` audio events beyond the queue's bound, used up
  // as audio is written: for the audio held before the backend took the
  // call, which must arrive whole however long the bound is.
  virtual void ExtendAudioQueue(uint64_t audio_events) = 0;
  // No more events: ends the stream once queued events are written.
  virtual void CloseAfterQueued() = 0;
  // Abandons the stream now (cancel).
  virtual void Abort() = 0;
  // Caller audio dropped because the backend did not keep up, in samples.
  virtual uint64_t dropped_audio_samples() const = 0;
  virtual uint64_t dropped_audio_events() const = 0;
};

// What a backend sent on its stream: push, a HandleCallResponse (AcceptCall,
// RejectCall or a CallCommand); pull, a ClaimCallRequest after the stream's
// first claim (a CallCommand, or a claim sent again).
using BackendMessage = std::variant<bridge::v1::HandleCallResponse, bridge::v1::ClaimCallRequest>;

// The same, by reference, wherever the message lives (a BackendMessage, or
// an arena of the call's).
using BackendMessageRef =
    std::variant<const bridge::v1::HandleCallResponse*, const bridge::v1::ClaimCallRequest*>;

inline BackendMessageRef RefOf(const BackendMessage& message) {
  return std::visit([](const auto& m) -> BackendMessageRef { return &m; }, message);
}

// Which of the two a link's bytes are.
enum class BackendMessageKind { kHandleCallResponse, kClaimCallRequest };

// What a link reports to its call. Implementations must be thread-safe and
// must not block: links call them from gRPC threads.
class LinkObserver {
 public:
  virtual ~LinkObserver() = default;
  virtual void OnBackendCommand(uint64_t link_id, BackendMessage message) = 0;
  // From a link on the observer's own loop thread: a message's bytes as
  // they came off the stream, for the observer to parse where it likes (a
  // call parses into an arena it empties once its commands are handled; a
  // BackendMessage costs an allocation and a free for each nested message).
  // Returns false, having done nothing, when the bytes are not a `kind`
  // message. By default: parsed into a BackendMessage for OnBackendCommand.
  virtual bool OnBackendCommandBytes(uint64_t link_id, BackendMessageKind kind,
                                     absl::string_view bytes) {
    BackendMessage message;
    if (kind == BackendMessageKind::kClaimCallRequest) message.emplace<1>();
    const bool parsed = std::visit(
        [&](auto& m) { return m.ParseFromArray(bytes.data(), static_cast<int>(bytes.size())); },
        message);
    if (!parsed) return false;
    OnBackendCommand(link_id, std::move(message));
    return true;
  }
  // The stream ended: `status` is the gRPC status (push), or OK when the
  // worker half-closed and CANCELLED when it went away (pull).
  virtual void OnBackendClosed(uint64_t link_id, grpc::Status status) = 0;
};

// Why a link ends a stream whose backend stopped reading: the events it
// must not drop (results, marks, DTMF) passed their bound (EventOutbox).
inline grpc::Status BackendNotReadingStatus() {
  return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                      "the backend stopped reading its events (more than 8 MiB of results and "
                      "events other than audio waited for it)");
}

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_BACKEND_LINK_H_
