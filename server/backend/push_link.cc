#include "server/backend/push_link.h"

#include "absl/strings/str_cat.h"

namespace audiosocket {

using bridge::v1::CallEvent;

PushLink::PushLink(uint64_t link_id, std::weak_ptr<LinkObserver> observer, const Options& options)
    : link_id_(link_id),
      inbound_latency_(options.inbound_latency),
      streams_(options.streams),
      observer_(std::move(observer)),
      outbox_(options.max_queued_audio_events) {
  context_.set_deadline(absl::ToChronoTime(absl::Now() + options.deadline));
  if (!options.bearer_token.empty()) {
    context_.AddMetadata("authorization", absl::StrCat("Bearer ", options.bearer_token));
  }
}

std::shared_ptr<PushLink> PushLink::Start(bridge::v1::CallHandlerService::Stub* stub,
                                          uint64_t link_id, std::weak_ptr<LinkObserver> observer,
                                          const Options& options) {
  std::shared_ptr<PushLink> link(new PushLink(link_id, std::move(observer), options));
  link->self_ = link;
  if (link->streams_ != nullptr) link->stream_key_ = link->streams_->Add(link);
  stub->async()->HandleCall(&link->context_, link.get());
  // Writes come from outside reactions (the call's loop), so hold the
  // stream open until we decide no more writes will start.
  link->AddHold();
  link->StartRead(&link->response_);
  link->StartCall();
  return link;
}

void PushLink::SendEvent(CallEvent&& event) {
  const bridge::v1::HandleCallRequest* to_write = nullptr;
  bool overflowed = false;
  {
    absl::MutexLock lock(&mu_);
    if (closing_ || broken_ || done_) return;
    if (outbox_.Push(std::move(event), event::MonoClock::now())) {
      to_write = &outbox_.in_flight();
      ++starting_ops_;
    }
    overflowed = outbox_.overflowed();
    if (overflowed) {
      broken_ = true;
      outbox_.DiscardQueued();  // the write in flight fails after the cancel
    }
  }
  if (overflowed) {
    if (to_write != nullptr) FinishStartingOp();  // not started after all
    // Said first, so the call ends with this reason rather than the
    // cancellation's.
    if (auto observer = observer_.lock()) {
      observer->OnBackendClosed(link_id_, BackendNotReadingStatus());
    }
    context_.TryCancel();
    return;
  }
  if (to_write != nullptr) {
    StartWrite(to_write);
    FinishStartingOp();
  }
}

void PushLink::ExtendAudioQueue(uint64_t audio_events) {
  absl::MutexLock lock(&mu_);
  outbox_.ExtendAudioQueue(audio_events);
}

void PushLink::CloseAfterQueued() {
  bool writes_done_now = false;
  {
    absl::MutexLock lock(&mu_);
    if (closing_ || done_) return;
    closing_ = true;
    if (outbox_.idle() && !broken_ && !writes_done_) {
      writes_done_ = true;
      writes_done_now = true;
      ++starting_ops_;
    }
  }
  if (writes_done_now) {
    StartWritesDone();
    FinishStartingOp();
  }
  {
    absl::MutexLock lock(&mu_);
    if (!writes_done_ && !broken_) return;  // the last OnWriteDone finishes the job
  }
  ReleaseHoldOnce();
}

void PushLink::Abort() {
  {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    closing_ = true;
  }
  context_.TryCancel();
  ReleaseHoldOnce();
}

uint64_t PushLink::dropped_audio_samples() const {
  absl::MutexLock lock(&mu_);
  return outbox_.dropped_audio_samples();
}

uint64_t PushLink::dropped_audio_events() const {
  absl::MutexLock lock(&mu_);
  return outbox_.dropped_audio_events();
}

void PushLink::ReleaseHoldOnce() {
  {
    absl::MutexLock lock(&mu_);
    if (hold_released_) return;
    hold_released_ = true;
    if (starting_ops_ > 0) {
      release_deferred_ = true;  // FinishStartingOp removes it
      return;
    }
  }
  RemoveHold();
}

void PushLink::FinishStartingOp() {
  {
    absl::MutexLock lock(&mu_);
    --starting_ops_;
    if (starting_ops_ > 0 || !release_deferred_) return;
    release_deferred_ = false;
  }
  RemoveHold();
}

void PushLink::OnReadDone(bool ok) {
  if (!ok) {
    // The backend finished the stream: no write can succeed any more, so
    // let the RPC complete; OnDone reports the status.
    {
      absl::MutexLock lock(&mu_);
      broken_ = true;
    }
    ReleaseHoldOnce();
    return;
  }
  if (auto observer = observer_.lock()) {
    observer->OnBackendCommand(link_id_, std::move(response_));
  }
  response_.Clear();
  StartRead(&response_);
}

void PushLink::OnWriteDone(bool ok) {
  const bridge::v1::HandleCallRequest* next = nullptr;
  bool writes_done_now = false;
  bool release = false;
  {
    absl::MutexLock lock(&mu_);
    if (!ok) {
      // No later write can succeed.
      broken_ = true;
      release = true;
      outbox_.Discard();
    } else {
      if (inbound_latency_ != nullptr && outbox_.in_flight().event().has_audio()) {
        inbound_latency_->Observe(event::MonoClock::now() - outbox_.in_flight_since());
      }
      if (outbox_.WriteDone()) {
        next = &outbox_.in_flight();
      } else if (closing_ && !writes_done_) {
        writes_done_ = true;
        writes_done_now = true;
        release = true;
      }
    }
  }
  if (next != nullptr) StartWrite(next);
  if (writes_done_now) StartWritesDone();
  if (release) ReleaseHoldOnce();
}

void PushLink::OnDone(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
  if (auto observer = observer_.lock()) observer->OnBackendClosed(link_id_, status);
  StreamTracker* const streams = streams_;
  const uint64_t key = stream_key_;
  {
    // Last touch: the call may still hold a shared_ptr; this reactor is inert.
    std::shared_ptr<PushLink> self = std::move(self_);
  }
  // After the last touch of this object: shutdown may go on once every
  // stream left.
  if (streams != nullptr) streams->Done(key);
}

}  // namespace audiosocket
