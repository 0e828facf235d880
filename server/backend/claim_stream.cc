#include "server/backend/claim_stream.h"

#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/backend/command_kind.h"
#include "server/ops/log.h"

namespace audiosocket {

using bridge::v1::CallEvent;
using bridge::v1::ClaimCallResponse;

// -------------------------------------------------------------- claim stream

ClaimStream::ClaimStream(grpc::CallbackServerContext* context, ClaimDispatcher* dispatcher,
                         size_t max_queued_audio_events, BridgeCounters* counters,
                         LatencyHistogram* inbound_latency)
    : context_(context),
      dispatcher_(dispatcher),
      counters_(counters),
      inbound_latency_(inbound_latency),
      outbox_(max_queued_audio_events) {
  if (counters_ != nullptr) counters_->pull_streams++;
}

void ClaimStream::Begin(StreamTracker* streams) {
  // gRPC does not own callback reactors: this shared_ptr does, until OnDone.
  self_ = std::shared_ptr<ClaimStream>(this);
  streams_ = streams;
  if (streams_ != nullptr) stream_key_ = streams_->Add(self_);
  StartRead(&request_);
}

void ClaimStream::Attach(uint64_t link_id, std::weak_ptr<LinkObserver> observer) {
  bool closed = false;
  {
    absl::MutexLock lock(&mu_);
    link_id_ = link_id;
    observer_ = observer;
    attached_ = true;
    closed = read_closed_ || finish_requested_ || done_;
  }
  if (closed) NotifyClosed(grpc::Status(grpc::StatusCode::CANCELLED, "worker went away"));
}

void ClaimStream::NotifyClosed(grpc::Status status) {
  std::shared_ptr<LinkObserver> observer;
  uint64_t link_id;
  {
    absl::MutexLock lock(&mu_);
    if (!attached_ || closed_notified_) return;
    closed_notified_ = true;
    observer = observer_.lock();
    link_id = link_id_;
  }
  if (observer) observer->OnBackendClosed(link_id, std::move(status));
}

void ClaimStream::SendEvent(CallEvent&& event) {
  const ClaimCallResponse* to_write = nullptr;
  bool overflowed = false;
  {
    absl::MutexLock lock(&mu_);
    if (finish_requested_ || done_) return;
    if (outbox_.Push(std::move(event), event::MonoClock::now())) to_write = &outbox_.in_flight();
    overflowed = outbox_.overflowed();
    if (overflowed) outbox_.DiscardQueued();  // the write in flight fails after the cancel
  }
  if (overflowed) {
    // Said first, so the call ends with this reason rather than the
    // cancellation's.
    NotifyClosed(BackendNotReadingStatus());
    context_->TryCancel();
    FinishOnce(BackendNotReadingStatus());
    return;
  }
  if (to_write != nullptr) StartWrite(to_write);
}

void ClaimStream::ExtendAudioQueue(uint64_t audio_events) {
  absl::MutexLock lock(&mu_);
  outbox_.ExtendAudioQueue(audio_events);
}

void ClaimStream::CloseAfterQueued() { FinishOnce(grpc::Status::OK); }

void ClaimStream::Abort() {
  bool stuck;
  {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    // A Finish waiting behind a write the worker never reads: cancel, so
    // the write fails and the stream can end.
    stuck = finish_requested_ && !finished_;
  }
  if (stuck) {
    context_->TryCancel();
    return;
  }
  FinishOnce(grpc::Status(grpc::StatusCode::CANCELLED, "the bridge abandoned this call"));
}

uint64_t ClaimStream::dropped_audio_samples() const {
  absl::MutexLock lock(&mu_);
  return outbox_.dropped_audio_samples();
}

uint64_t ClaimStream::dropped_audio_events() const {
  absl::MutexLock lock(&mu_);
  return outbox_.dropped_audio_events();
}

void ClaimStream::FinishOnce(grpc::Status status) {
  {
    absl::MutexLock lock(&mu_);
    if (finish_requested_) return;
    finish_requested_ = true;
    if (!outbox_.idle()) {
      pending_finish_ = std::move(status);
      return;  // OnWriteDone finishes after the last write
    }
    finished_ = true;
  }
  Finish(status);
}

void ClaimStream::OnReadDone(bool ok) {
  if (!ok) {
    bool attached;
    {
      absl::MutexLock lock(&mu_);
      read_closed_ = true;
      attached = attached_;
    }
    if (attached) {
      NotifyClosed(grpc::Status::OK);
    } else {
      dispatcher_->RemoveSlot(this);
      FinishOnce(grpc::Status::OK);
    }
    return;
  }
  bool first;
  bool attached;
  {
    absl::MutexLock lock(&mu_);
    first = !claimed_;
    claimed_ = true;
    attached = attached_;
  }
  if (first) {
    if (!request_.has_claim()) {
      if (counters_ != nullptr) counters_->pull_stream_errors++;
      FinishOnce(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              "the first message on a ClaimCall stream must be a claim command"));
      return;
    }
    claim_ = request_.claim();
    dispatcher_->AddSlot(self_);
  } else if (attached) {
    std::shared_ptr<LinkObserver> observer;
    uint64_t link_id;
    {
      absl::MutexLock lock(&mu_);
      observer = observer_.lock();
      link_id = link_id_;
    }
    if (observer) observer->OnBackendCommand(link_id, std::move(request_));
  } else {
    CallEvent event;
    auto* result = event.mutable_result();
    DescribeCommand(request_, result);
    result->set_code(bridge::v1::RESULT_CODE_FAILED_PRECONDITION);
    result->set_message("no call is bound to this stream yet; wait for CallStarted");
    SendEvent(std::move(event));
  }
  request_.Clear();
  StartRead(&request_);
}

void ClaimStream::OnWriteDone(bool ok) {
  const ClaimCallResponse* next = nullptr;
  bool finish_now = false;
  grpc::Status status;
  {
    absl::MutexLock lock(&mu_);
    if (ok && inbound_latency_ != nullptr && outbox_.in_flight().event().has_audio()) {
      inbound_latency_->Observe(event::MonoClock::now() - outbox_.in_flight_since());
    }
    if (ok && outbox_.WriteDone()) {
      next = &outbox_.in_flight();
    } else if (!ok) {
      // No later write can succeed.
      outbox_.Discard();
    }
    if (next == nullptr && finish_requested_ && !finished_) {
      finished_ = true;
      finish_now = true;
      status = pending_finish_;
    }
  }
  if (next != nullptr) StartWrite(next);
  if (finish_now) Finish(status);
  if (!ok) NotifyClosed(grpc::Status(grpc::StatusCode::UNAVAILABLE, "write to worker failed"));
}

void ClaimStream::OnCancel() {
  dispatcher_->RemoveSlot(this);
  NotifyClosed(grpc::Status(grpc::StatusCode::CANCELLED, "worker cancelled the stream"));
  FinishOnce(grpc::Status::CANCELLED);
}

void ClaimStream::OnDone() {
  dispatcher_->RemoveSlot(this);
  if (counters_ != nullptr) counters_->pull_streams--;
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
  NotifyClosed(grpc::Status(grpc::StatusCode::CANCELLED, "stream ended"));
  StreamTracker* const streams = streams_;
  const uint64_t key = stream_key_;
  { std::shared_ptr<ClaimStream> self = std::move(self_); }
  // After the last touch of this object.
  if (streams != nullptr) streams->Done(key);
}

}  // namespace audiosocket
