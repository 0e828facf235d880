#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_EVENT_OUTBOX_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_EVENT_OUTBOX_H_

// The queue of CallEvents waiting to be written to a backend's gRPC stream,
// with one write in flight (gRPC allows only one) and a bound: when the
// backend does not keep up, the oldest queued audio is dropped (never other
// events) and counted. The dropped audio shows as a gap in offset_samples.
// ExtendAudioQueue() raises the bound once, for a burst the caller promised
// to deliver whole (audio held before the backend took the call); the extra
// room is used up as audio is written. Other events (results, marks, DTMF)
// are never dropped; they are bounded in bytes instead, and overflowed()
// says the backend has stopped reading: its stream must end.
//
// `Message` is the stream's message type wrapping one CallEvent in a field
// named `event` (HandleCallRequest in push mode, ClaimCallResponse in pull),
// for gRPC C++, which writes messages; or CallEvent itself, for a writer
// that frames the wrapper on its own (FramedOutbox) and so never builds it.
// The message in flight is held apart from the queue: gRPC borrows it until
// the write completes, and dropping queued audio must never move it.
//
// Not thread-safe: the owning reactor guards it with its mutex.

#include <cstdint>
#include <deque>
#include <optional>
#include <type_traits>
#include <utility>

#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/event/time_source.h"

namespace audiosocket {

template <typename Message>
class EventOutbox {
 public:
  // Bytes of queued events other than audio before overflowed(): far more
  // than a reading backend ever lets pile up.
  static constexpr uint64_t kDefaultMaxOtherBytes = 8 << 20;

  explicit EventOutbox(size_t max_audio_events, uint64_t max_other_bytes = kDefaultMaxOtherBytes)
      : max_audio_events_(max_audio_events), max_other_bytes_(max_other_bytes) {}

  // Queues `event`. Returns true when no write was in flight: the caller
  // must start writing in_flight() now.
  bool Push(audiosocket::bridge::v1::CallEvent&& event, event::MonoTime now = event::MonoTime()) {
    if constexpr (kBare) {
      return PushMessage(std::move(event), now);
    } else {
      Message message;
      *message.mutable_event() = std::move(event);
      return PushMessage(std::move(message), now);
    }
  }

  // Lets the queue hold `audio_events` more audio events than its bound
  // until that many audio events have been written.
  void ExtendAudioQueue(uint64_t audio_events) { extra_audio_events_ += audio_events; }

  // The message being written; valid until WriteDone().
  const Message& in_flight() const { return *in_flight_; }
  // When the message being written was pushed.
  event::MonoTime in_flight_since() const { return in_flight_since_; }

  // The write of in_flight() finished. Returns true when another message
  // became in flight and must be written.
  bool WriteDone() {
    if (extra_audio_events_ > 0 && in_flight_.has_value() && EventOf(*in_flight_).has_audio()) {
      --extra_audio_events_;
    }
    if constexpr (kBare) {
      // Written: kept, emptied, for TakeSpareAudioEvent.
      if (in_flight_.has_value() && in_flight_->has_audio() && !spare_audio_.has_value()) {
        in_flight_->mutable_audio()->Clear();  // the bytes keep their capacity
        spare_audio_ = std::move(*in_flight_);
      }
    }
    in_flight_.reset();
    if (queue_.empty()) return false;
    if (EventOf(queue_.front().message).has_audio()) {
      --queued_audio_;
    } else {
      queued_other_bytes_ -= queue_.front().message.ByteSizeLong();
    }
    in_flight_ = std::move(queue_.front().message);
    in_flight_since_ = queue_.front().pushed;
    queue_.pop_front();
    return true;
  }

  // An audio event already written, emptied (a cleared chunk whose bytes
  // keep their capacity), or an empty event when there is none: filling it
  // reuses the allocations of an earlier frame's event instead of making
  // three per frame. Only when the queue holds bare CallEvents, whose
  // writer no longer needs the one in flight once it is framed.
  audiosocket::bridge::v1::CallEvent TakeSpareAudioEvent() {
    static_assert(kBare, "only a queue of bare CallEvents keeps written ones");
    audiosocket::bridge::v1::CallEvent event;
    if (spare_audio_.has_value()) {
      event = std::move(*spare_audio_);
      spare_audio_.reset();
    }
    return event;
  }
  // Drops everything not yet written (the stream can take no more).
  void Discard() {
    queue_.clear();
    queued_audio_ = 0;
    queued_other_bytes_ = 0;
    extra_audio_events_ = 0;
    in_flight_.reset();
  }

  // Drops what is queued but keeps the message in flight, which gRPC
  // borrows until its write completes.
  void DiscardQueued() {
    queue_.clear();
    queued_audio_ = 0;
    queued_other_bytes_ = 0;
    extra_audio_events_ = 0;
  }

  // Queued events other than audio passed their bound in bytes: the
  // backend is not reading.
  bool overflowed() const { return queued_other_bytes_ > max_other_bytes_; }

  bool idle() const { return !in_flight_.has_value(); }
  size_t size() const { return queue_.size() + (in_flight_.has_value() ? 1 : 0); }
  uint64_t dropped_audio_events() const { return dropped_events_; }
  uint64_t dropped_audio_samples() const { return dropped_samples_; }

 private:
  // Push, for the message as queued. Each move of a message is a swap and
  // a destruction, and this runs for every frame: moved once into place.
  bool PushMessage(Message&& message, event::MonoTime now) {
    if (!in_flight_.has_value()) {
      in_flight_.emplace(std::move(message));
      in_flight_since_ = now;
      return true;
    }
    if (EventOf(message).has_audio()) {
      ++queued_audio_;
      while (queued_audio_ > max_audio_events_ + extra_audio_events_ && DropOldestAudio()) {
      }
    } else {
      queued_other_bytes_ += message.ByteSizeLong();
    }
    queue_.push_back(Entry{std::move(message), now});
    return false;
  }

  static constexpr bool kBare = std::is_same_v<Message, audiosocket::bridge::v1::CallEvent>;

  static const audiosocket::bridge::v1::CallEvent& EventOf(const Message& message) {
    if constexpr (kBare) {
      return message;
    } else {
      return message.event();
    }
  }

  bool DropOldestAudio() {
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (EventOf(it->message).has_audio()) {
        dropped_samples_ += EventOf(it->message).audio().pcm().size() / 2;
        ++dropped_events_;
        --queued_audio_;
        queue_.erase(it);
        return true;
      }
    }
    return false;
  }

  size_t max_audio_events_;
  uint64_t max_other_bytes_;
  uint64_t queued_other_bytes_ = 0;
  uint64_t extra_audio_events_ = 0;  // ExtendAudioQueue's room not yet used
  struct Entry {
    Message message;
    event::MonoTime pushed;
  };
  std::optional<Message> in_flight_;
  std::optional<Message> spare_audio_;  // see TakeSpareAudioEvent
  event::MonoTime in_flight_since_;
  std::deque<Entry> queue_;
  size_t queued_audio_ = 0;
  uint64_t dropped_events_ = 0;
  uint64_t dropped_samples_ = 0;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_EVENT_OUTBOX_H_
