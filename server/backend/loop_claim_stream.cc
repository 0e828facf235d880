#include "server/backend/loop_claim_stream.h"

#include <utility>

#include "server/backend/command_kind.h"
#include "server/backend/grpc_status_convert.h"

namespace audiosocket {

using bridge::v1::CallEvent;

namespace {

// gRPC servers' own limit on a received message.
constexpr size_t kMaxRequestBytes = 4 << 20;

}  // namespace

LoopClaimStream::LoopClaimStream(grpc_server::ServerConnection* connection, int32_t stream_id,
                                 ClaimDispatcher* dispatcher, const Options& options)
    : connection_(connection->weak_from_this()),
      loop_(connection->loop()),
      stream_id_(stream_id),
      dispatcher_(dispatcher),
      options_(options),
      reader_(kMaxRequestBytes),
      outbox_(options.max_queued_audio_events) {
  reader_.set_encoding(options.encoding);
}

LoopClaimStream::~LoopClaimStream() = default;

std::shared_ptr<LoopClaimStream> LoopClaimStream::Create(grpc_server::ServerConnection* connection,
                                                         int32_t stream_id,
                                                         ClaimDispatcher* dispatcher,
                                                         const Options& options) {
  std::shared_ptr<LoopClaimStream> stream(
      new LoopClaimStream(connection, stream_id, dispatcher, options));
  if (options.counters != nullptr) options.counters->pull_streams++;
  if (options.streams != nullptr) stream->stream_key_ = options.streams->Add(stream);
  return stream;
}

namespace {

absl::Status NotAClaimCallRequest() {
  return absl::InternalError("a message on the ClaimCall stream is not a ClaimCallRequest");
}

}  // namespace

template <typename Task>
void LoopClaimStream::OnLoop(Task task) {
  if (loop_->InDispatcherThread()) {
    task();
  } else {
    loop_->Post(std::move(task));
  }
}

// ------------------------------------------------------------ from the worker

void LoopClaimStream::OnRequestData(absl::string_view data) {
  if (done_) return;
  absl::Status read = reader_.Feed(data, [this](absl::string_view message) {
    if (done_ || finish_requested_) return;
    // A bound call's commands go to it as bytes: it parses them where
    // it keeps them until handled.
    std::shared_ptr<LinkObserver> observer = attached_ ? observer_.lock() : nullptr;
    if (observer != nullptr) {
      if (!observer->OnBackendCommandBytes(link_id_, BackendMessageKind::kClaimCallRequest,
                                           message)) {
        FailForWorker(NotAClaimCallRequest());
      }
      return;
    }
    bridge::v1::ClaimCallRequest request;
    if (!request.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
      FailForWorker(NotAClaimCallRequest());
      return;
    }
    OnRequest(std::move(request));
  });
  if (!read.ok()) FailForWorker(read);
}

void LoopClaimStream::FailForWorker(absl::Status status) {
  if (options_.counters != nullptr) options_.counters->pull_stream_errors++;
  FinishOnce(std::move(status));
}

void LoopClaimStream::OnRequest(bridge::v1::ClaimCallRequest request) {
  if (!claimed_) {
    claimed_ = true;
    if (!request.has_claim()) {
      FailForWorker(absl::InvalidArgumentError(
          "the first message on a ClaimCall stream must be a claim command"));
      return;
    }
    claim_ = request.claim();
    dispatcher_->AddSlot(shared_from_this());
    return;
  }
  if (attached_) {
    if (auto observer = observer_.lock()) observer->OnBackendCommand(link_id_, std::move(request));
    return;
  }
  CallEvent event;
  auto* result = event.mutable_result();
  DescribeCommand(request, result);
  result->set_code(bridge::v1::RESULT_CODE_FAILED_PRECONDITION);
  result->set_message("no call is bound to this stream yet; wait for CallStarted");
  Queue(std::move(event));
}

void LoopClaimStream::OnRequestEnd() {
  if (done_) return;
  read_closed_ = true;
  if (attached_) {
    NotifyClosed(grpc::Status::OK);
    return;
  }
  dispatcher_->RemoveSlot(this);
  FinishOnce(absl::OkStatus());
}

// ------------------------------------------------------------- to the worker

size_t LoopClaimStream::ReadBody(uint8_t* out, size_t size, bool* end, absl::Status* status) {
  const size_t copied = outbox_.Read(out, size, options_.inbound_latency);
  if (finish_requested_ && outbox_.idle()) {
    finished_ = true;
    *end = true;
    *status = pending_finish_;
  }
  return copied;
}

void LoopClaimStream::Queue(CallEvent event) {
  if (finish_requested_ || done_) return;
  const bool was_idle = outbox_.Push(std::move(event), event::MonoClock::now());
  CountDrops();
  if (outbox_.events().overflowed()) {
    // Said first, so the call ends with this reason rather than the reset's.
    NotifyClosed(BackendNotReadingStatus());
    ResetStream();
    return;
  }
  if (was_idle) {
    if (auto connection = connection_.lock()) connection->ResumeSending(stream_id_);
  }
}

void LoopClaimStream::FinishOnce(absl::Status status) {
  if (finish_requested_ || done_) return;
  finish_requested_ = true;
  pending_finish_ = std::move(status);
  if (auto connection = connection_.lock()) connection->ResumeSending(stream_id_);
}

void LoopClaimStream::ResetStream() {
  if (done_) return;
  outbox_.events().Discard();
  if (auto connection = connection_.lock()) connection->Reset(stream_id_);
  NotifyClosed(grpc::Status(grpc::StatusCode::CANCELLED, "the stream was reset"));
  Done();
}

void LoopClaimStream::OnClose(const absl::Status& status) {
  if (done_) return;
  if (status.ok()) {
    NotifyClosed(grpc::Status(grpc::StatusCode::CANCELLED, "stream ended"));
  } else {
    NotifyClosed(grpc::Status(grpc::StatusCode::CANCELLED,
                              absl::StrCat("the worker's stream ended: ", status.message())));
  }
  Done();
}

void LoopClaimStream::Done() {
  if (done_) return;
  done_ = true;
  outbox_.events().Discard();
  dispatcher_->RemoveSlot(this);
  if (options_.counters != nullptr) options_.counters->pull_streams--;
  // Last: shutdown may go on once every stream has left.
  if (options_.streams != nullptr) options_.streams->Done(stream_key_);
}

void LoopClaimStream::NotifyClosed(grpc::Status status) {
  if (!attached_ || closed_notified_) return;
  closed_notified_ = true;
  if (auto observer = observer_.lock()) observer->OnBackendClosed(link_id_, std::move(status));
}

void LoopClaimStream::CountDrops() {
  dropped_samples_.store(outbox_.events().dropped_audio_samples(), std::memory_order_relaxed);
  dropped_events_.store(outbox_.events().dropped_audio_events(), std::memory_order_relaxed);
}

// ------------------------------------------------------- from the call (any)

void LoopClaimStream::Attach(uint64_t link_id, std::weak_ptr<LinkObserver> observer) {
  OnLoop([self = shared_from_this(), link_id, observer = std::move(observer)]() mutable {
    self->link_id_ = link_id;
    self->observer_ = std::move(observer);
    self->attached_ = true;
    if (self->read_closed_ || self->finish_requested_ || self->done_) {
      self->NotifyClosed(grpc::Status(grpc::StatusCode::CANCELLED, "worker went away"));
    }
  });
}

void LoopClaimStream::EndIdle(grpc::Status status) {
  OnLoop([self = shared_from_this(), status = ToAbsl(status)] { self->FinishOnce(status); });
}

void LoopClaimStream::SendEvent(CallEvent&& event) {
  OnLoop([self = shared_from_this(), event = std::move(event)]() mutable {
    self->Queue(std::move(event));
  });
}

CallEvent LoopClaimStream::SpareAudioEvent() {
  // The outbox is the loop's: from elsewhere, a new event.
  if (!loop_->InDispatcherThread()) return {};
  return outbox_.TakeSpareAudioEvent();
}

void LoopClaimStream::ExtendAudioQueue(uint64_t audio_events) {
  OnLoop([self = shared_from_this(), audio_events] {
    self->outbox_.events().ExtendAudioQueue(audio_events);
  });
}

void LoopClaimStream::CloseAfterQueued() {
  OnLoop([self = shared_from_this()] { self->FinishOnce(absl::OkStatus()); });
}

void LoopClaimStream::Abort() {
  OnLoop([self = shared_from_this()] {
    if (self->done_) return;
    // A status waiting behind events the worker never reads: reset, so the
    // stream can end.
    if (self->finish_requested_ && !self->finished_) {
      self->ResetStream();
      return;
    }
    self->FinishOnce(absl::CancelledError("the bridge abandoned this call"));
  });
}

}  // namespace audiosocket
