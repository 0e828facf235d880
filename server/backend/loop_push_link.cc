#include "server/backend/loop_push_link.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "server/backend/grpc_status_convert.h"

namespace audiosocket {
namespace {

const std::string& HandleCallPath() {
  static const std::string* const path = new std::string(
      absl::StrCat("/", bridge::v1::CallHandlerService::service_full_name(), "/HandleCall"));
  return *path;
}

}  // namespace

LoopPushLink::LoopPushLink(grpc_client::Channel* channel, uint64_t link_id,
                           std::weak_ptr<LinkObserver> observer, const Options& options)
    : channel_(channel),
      loop_(channel->loop()),
      link_id_(link_id),
      options_(options),
      observer_(std::move(observer)),
      streams_(options.streams),
      outbox_(options.max_queued_audio_events) {}

std::shared_ptr<LoopPushLink> LoopPushLink::Start(grpc_client::Channel* channel, uint64_t link_id,
                                                  std::weak_ptr<LinkObserver> observer,
                                                  const Options& options) {
  std::shared_ptr<LoopPushLink> link(
      new LoopPushLink(channel, link_id, std::move(observer), options));
  // Registered at once, so a shutdown that starts now waits for it.
  if (link->streams_ != nullptr) link->stream_key_ = link->streams_->Add(link);
  link->OnLoop([link] { link->Open(); });
  return link;
}

template <typename Task>
void LoopPushLink::OnLoop(Task task) {
  if (loop_->InDispatcherThread()) {
    task();
  } else {
    loop_->Post(std::move(task));
  }
}

void LoopPushLink::Open() {
  if (done_) return;  // aborted before it opened
  grpc_client::Connection::Metadata metadata;
  if (!options_.bearer_token.empty()) {
    metadata.emplace_back("authorization", absl::StrCat("Bearer ", options_.bearer_token));
  }
  absl::StatusOr<grpc_client::Channel::OpenedStream> opened =
      channel_->OpenStream(HandleCallPath(), metadata, options_.deadline, shared_from_this());
  if (!opened.ok()) {
    Finish(ToGrpc(opened.status()));
    return;
  }
  connection_ = std::move(opened->connection);
  stream_id_ = opened->stream_id;
}

void LoopPushLink::SendEvent(bridge::v1::CallEvent&& event) {
  // From the loop (every caller frame of every call): queued at once, with
  // no closure around the event. The caller holds the link.
  if (loop_->InDispatcherThread()) {
    QueueEvent(std::move(event));
    return;
  }
  loop_->Post([self = shared_from_this(), event = std::move(event)]() mutable {
    self->QueueEvent(std::move(event));
  });
}

void LoopPushLink::QueueEvent(bridge::v1::CallEvent&& event) {
  if (closing_ || done_) return;
  const bool idle = outbox_.Push(std::move(event), event::MonoClock::now());
  CountDrops();
  if (outbox_.events().overflowed()) {
    // Kept alive through Finish, as in OnMessage. Said first, so the call
    // ends with this reason rather than the cancellation's.
    std::shared_ptr<LoopPushLink> self = shared_from_this();
    if (connection_ != nullptr) connection_->Cancel(stream_id_);
    Finish(BackendNotReadingStatus());
    return;
  }
  if (idle && connection_ != nullptr) connection_->ResumeSending(stream_id_);
}

bridge::v1::CallEvent LoopPushLink::SpareAudioEvent() {
  // The outbox is the loop's: from elsewhere (a test, a future caller),
  // a new event.
  if (!loop_->InDispatcherThread()) return {};
  return outbox_.TakeSpareAudioEvent();
}

void LoopPushLink::ExtendAudioQueue(uint64_t audio_events) {
  OnLoop([self = shared_from_this(), audio_events] {
    self->outbox_.events().ExtendAudioQueue(audio_events);
  });
}

void LoopPushLink::CloseAfterQueued() {
  OnLoop([self = shared_from_this()] {
    if (self->closing_ || self->done_) return;
    self->closing_ = true;
    if (self->connection_ != nullptr) self->connection_->ResumeSending(self->stream_id_);
  });
}

void LoopPushLink::Abort() {
  OnLoop([self = shared_from_this()] {
    if (self->done_) return;
    self->closing_ = true;
    if (self->connection_ != nullptr) self->connection_->Cancel(self->stream_id_);
    self->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the bridge cancelled the stream"));
  });
}

void LoopPushLink::CountDrops() {
  dropped_samples_.store(outbox_.events().dropped_audio_samples(), std::memory_order_relaxed);
  dropped_events_.store(outbox_.events().dropped_audio_events(), std::memory_order_relaxed);
}

size_t LoopPushLink::ReadBody(uint8_t* out, size_t size, bool* end) {
  const size_t copied = outbox_.Read(out, size, options_.inbound_latency);
  *end = closing_ && outbox_.idle() && !done_;
  return copied;
}

void LoopPushLink::OnMessage(absl::string_view message) {
  // The call parses the bytes where it keeps them until handled; with no
  // call left they are only checked.
  std::shared_ptr<LinkObserver> observer = observer_.lock();
  const bool parsed = observer != nullptr
                          ? observer->OnBackendCommandBytes(
                                link_id_, BackendMessageKind::kHandleCallResponse, message)
                          : bridge::v1::HandleCallResponse().ParseFromArray(
                                message.data(), static_cast<int>(message.size()));
  if (!parsed) {
    // The cancel drops the connection's hold on this link, and whoever
    // hears of the close may drop theirs: kept alive until Finish is done.
    std::shared_ptr<LoopPushLink> self = shared_from_this();
    if (connection_ != nullptr) connection_->Cancel(stream_id_);
    Finish(grpc::Status(grpc::StatusCode::INTERNAL,
                        "the backend sent a message that is not a HandleCallResponse"));
  }
}

void LoopPushLink::OnClose(const absl::Status& status) { Finish(ToGrpc(status)); }

void LoopPushLink::Finish(const grpc::Status& status) {
  if (done_) return;
  done_ = true;
  closing_ = true;
  outbox_.events().Discard();
  connection_ = nullptr;
  if (auto observer = observer_.lock()) observer->OnBackendClosed(link_id_, status);
  // Last: shutdown may go on once every stream has left.
  if (streams_ != nullptr) streams_->Done(stream_key_);
}

}  // namespace audiosocket
