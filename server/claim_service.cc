#include "server/claim_service.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/command_kind.h"
#include "server/log.h"

namespace audiosocket {

using bridge::v1::CallEvent;
using bridge::v1::ClaimCallResponse;
using bridge::v1::WatchCallsResponse;

// ---------------------------------------------------------------- dispatcher

bool ClaimDispatcher::Matches(const ClaimStream& slot, const WaitingCall& call) {
  const bridge::v1::ClaimCall& claim = slot.claim();
  switch (claim.target_case()) {
    case bridge::v1::ClaimCall::kCallId:
      return claim.call_id() == call.call_id();
    case bridge::v1::ClaimCall::kListener:
      return claim.listener().empty() || claim.listener() == call.listener_name();
    default:
      return true;
  }
}

void ClaimDispatcher::Offer(std::shared_ptr<WaitingCall> call) {
  std::shared_ptr<ClaimStream> slot;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = slots_.begin(); it != slots_.end(); ++it) {
      if (Matches(**it, *call)) {
        slot = std::move(*it);
        slots_.erase(it);
        break;
      }
    }
    if (slot == nullptr) {
      calls_.push_back(call);
      return;
    }
  }
  call->OnClaimed(std::move(slot));
}

bool ClaimDispatcher::Withdraw(const WaitingCall* call) {
  absl::MutexLock lock(&mu_);
  for (auto it = calls_.begin(); it != calls_.end(); ++it) {
    if (it->get() == call) {
      calls_.erase(it);
      return true;
    }
  }
  return false;
}

void ClaimDispatcher::AddSlot(std::shared_ptr<ClaimStream> slot) {
  PairOrPark(std::move(slot), /*front=*/false);
}

void ClaimDispatcher::PairOrPark(std::shared_ptr<ClaimStream> slot, bool front) {
  std::shared_ptr<WaitingCall> call;
  grpc::Status ended;
  {
    absl::MutexLock lock(&mu_);
    for (auto it = calls_.begin(); it != calls_.end(); ++it) {
      if (Matches(*slot, **it)) {
        call = std::move(*it);
        calls_.erase(it);
        break;
      }
    }
    if (call == nullptr && !ended_.has_value()) {
      if (front) {
        slots_.push_front(std::move(slot));
      } else {
        slots_.push_back(std::move(slot));
      }
      return;
    }
    if (call == nullptr) ended = *ended_;
  }
  if (call == nullptr) {
    slot->EndIdle(std::move(ended));  // shutting down: no call will come
    return;
  }
  call->OnClaimed(std::move(slot));
}

void ClaimDispatcher::RemoveSlot(const ClaimStream* slot) {
  absl::MutexLock lock(&mu_);
  for (auto it = slots_.begin(); it != slots_.end(); ++it) {
    if (it->get() == slot) {
      slots_.erase(it);
      return;
    }
  }
}

void ClaimDispatcher::ReturnSlot(std::shared_ptr<ClaimStream> slot) {
  // It waited longest: first in line for the next call.
  PairOrPark(std::move(slot), /*front=*/true);
}

void ClaimDispatcher::EndIdleSlots(const grpc::Status& status) {
  std::deque<std::shared_ptr<ClaimStream>> idle;
  {
    absl::MutexLock lock(&mu_);
    ended_ = status;
    idle.swap(slots_);
  }
  // Outside the lock: Finish calls into gRPC.
  for (const auto& slot : idle) slot->EndIdle(status);
}

size_t ClaimDispatcher::idle_slots() const {
  absl::MutexLock lock(&mu_);
  return slots_.size();
}

size_t ClaimDispatcher::waiting_calls() const {
  absl::MutexLock lock(&mu_);
  return calls_.size();
}

// -------------------------------------------------------------- claim stream

ClaimStream::ClaimStream(grpc::CallbackServerContext* context, ClaimDispatcher* dispatcher,
                         size_t max_queued_audio_events, BridgeCounters* counters,
                         prometheus::Histogram* inbound_latency)
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

void ClaimStream::SendEvent(CallEvent event) {
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
      inbound_latency_->Observe(
          std::chrono::duration<double>(event::MonoClock::now() - outbox_.in_flight_since())
              .count());
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

// -------------------------------------------------------------- watch stream

// WatchCalls: a change stream fed by the registry. Slow watchers are cut off
// rather than buffered without bound.
// Owned by self_ until OnDone; the registry's watcher holds a weak_ptr, so a
// change delivered while the stream ends finds it alive (and finished).
// The service keeps a weak_ptr too, to end it at shutdown.
class WatchStream final : public grpc::ServerWriteReactor<WatchCallsResponse> {
 public:
  // The returned shared_ptr keeps the stream alive while the caller hands
  // it to gRPC, even if it already ended.
  static std::shared_ptr<WatchStream> Create(CallRegistry* registry, std::string listener,
                                             StreamTracker* streams) {
    auto* stream = new WatchStream(registry, std::move(listener));
    std::shared_ptr<WatchStream> owner(stream);
    stream->self_ = owner;
    stream->streams_ = streams;
    if (streams != nullptr) stream->stream_key_ = streams->Add({});
    stream->Begin();
    return owner;
  }

  WatchStream(CallRegistry* registry, std::string listener)
      : registry_(registry), listener_(std::move(listener)) {}

  void Begin() {
    std::vector<bridge::v1::CallInfo> existing;
    std::weak_ptr<WatchStream> weak = self_;
    // Changes numbered up to the snapshot are in `existing` already (a call
    // added while this watcher registers must not be reported twice).
    auto snapshot = std::make_shared<std::atomic<uint64_t>>(UINT64_MAX);
    watcher_id_ = registry_->AddWatcher(
        [weak, snapshot](const WatchCallsResponse& change, uint64_t sequence) {
          if (sequence <= snapshot->load()) return;
          if (auto stream = weak.lock()) stream->Enqueue(change);
        },
        &existing, snapshot.get());
    for (auto& info : existing) {
      WatchCallsResponse change;
      *change.mutable_started() = std::move(info);
      Enqueue(change);
    }
  }

  void OnWriteDone(bool ok) override {
    const WatchCallsResponse* next = nullptr;
    bool finish = false;
    grpc::Status status;
    {
      absl::MutexLock lock(&mu_);
      queue_.pop_front();
      writing_ = false;
      if (!ok) {
        finish = !finished_;
        finished_ = true;
      } else if (!queue_.empty()) {
        writing_ = true;
        next = &queue_.front();
      } else if (finish_pending_ && !finished_) {
        finish = true;
        finished_ = true;
        status = pending_status_;
      }
    }
    if (next) StartWrite(next);
    if (finish) Finish(status);
  }

  void OnCancel() override { FinishOnce(grpc::Status::CANCELLED); }

  // Ends the stream after the changes already queued (shutdown).
  void End(grpc::Status status) { FinishOnce(std::move(status)); }

  void OnDone() override {
    registry_->RemoveWatcher(watcher_id_);
    StreamTracker* const streams = streams_;
    const uint64_t key = stream_key_;
    { std::shared_ptr<WatchStream> self = std::move(self_); }
    // After the last touch of this object.
    if (streams != nullptr) streams->Done(key);
  }

 private:
  static constexpr size_t kMaxQueued = 10000;

  bool Relevant(const WatchCallsResponse& change) const {
    return listener_.empty() || !change.has_started() || change.started().listener() == listener_;
  }

  void Enqueue(const WatchCallsResponse& change) {
    if (!Relevant(change)) return;
    const WatchCallsResponse* to_write = nullptr;
    bool overflow = false;
    {
      absl::MutexLock lock(&mu_);
      if (finish_pending_ || finished_) return;
      if (queue_.size() >= kMaxQueued) {
        overflow = true;
      } else {
        queue_.push_back(change);
        if (!writing_) {
          writing_ = true;
          to_write = &queue_.front();
        }
      }
    }
    if (to_write) StartWrite(to_write);
    if (overflow) {
      FinishOnce(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                              "watcher too slow: more than 10000 changes queued"));
    }
  }

  void FinishOnce(grpc::Status status) {
    {
      absl::MutexLock lock(&mu_);
      if (finish_pending_ || finished_) return;
      finish_pending_ = true;
      if (writing_) {
        pending_status_ = std::move(status);
        return;
      }
      finished_ = true;
    }
    Finish(status);
  }

  CallRegistry* const registry_;
  const std::string listener_;
  uint64_t watcher_id_ = 0;
  std::shared_ptr<WatchStream> self_;
  StreamTracker* streams_ = nullptr;  // set in Create, before any reaction
  uint64_t stream_key_ = 0;
  absl::Mutex mu_;
  std::deque<WatchCallsResponse> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_pending_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status pending_status_ ABSL_GUARDED_BY(mu_);
};

// ------------------------------------------------------------------ service

namespace {

// How streams ended at shutdown finish: UNAVAILABLE, so clients retry
// against another bridge.
grpc::Status ShuttingDown() {
  return grpc::Status(grpc::StatusCode::UNAVAILABLE, "the bridge is shutting down");
}

}  // namespace

BridgeService::BridgeService(ClaimDispatcher* dispatcher, CallRegistry* registry, Options options)
    : dispatcher_(dispatcher), registry_(registry), options_(std::move(options)) {}

grpc::Status BridgeService::Authenticate(const grpc::CallbackServerContext* context) const {
  if (options_.auth_token.empty()) return grpc::Status::OK;
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing \"authorization: Bearer <token>\" metadata");
  }
  const std::string expected = "Bearer " + options_.auth_token;
  const grpc::string_ref& got = it->second;
  // Compare in constant time: the token is a secret.
  unsigned char diff = got.size() == expected.size() ? 0 : 1;
  for (size_t i = 0; i < expected.size(); ++i) {
    diff |= static_cast<unsigned char>(expected[i] ^ (i < got.size() ? got.data()[i] : 0));
  }
  if (diff != 0) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong bearer token");
  return grpc::Status::OK;
}

namespace {

// A ClaimCall refused at once (push mode, limit, authentication).
class RefusedClaim final
    : public grpc::ServerBidiReactor<bridge::v1::ClaimCallRequest, ClaimCallResponse> {
 public:
  explicit RefusedClaim(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerBidiReactor<bridge::v1::ClaimCallRequest, ClaimCallResponse>* BridgeService::ClaimCall(
    grpc::CallbackServerContext* context) {
  if (grpc::Status auth = Authenticate(context); !auth.ok()) {
    if (options_.counters != nullptr) options_.counters->pull_streams_rejected++;
    return new RefusedClaim(auth);
  }
  if (!options_.claims_enabled) {
    return new RefusedClaim(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                         "this bridge runs in push mode (--backend is set); calls "
                                         "are not available for claiming"));
  }
  if (options_.counters != nullptr &&
      options_.counters->pull_streams.load() >= options_.max_pull_streams) {
    options_.counters->pull_streams_rejected++;
    return new RefusedClaim(
        grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                     absl::StrCat("the bridge already has ", options_.max_pull_streams,
                                  " ClaimCall streams open (--max_pull_streams)")));
  }
  auto* stream = new ClaimStream(context, dispatcher_, options_.max_queued_audio_events,
                                 options_.counters, options_.inbound_latency);
  stream->Begin(options_.streams);
  return stream;
}

grpc::ServerUnaryReactor* BridgeService::ListCalls(grpc::CallbackServerContext* context,
                                                   const bridge::v1::ListCallsRequest* request,
                                                   bridge::v1::ListCallsResponse* response) {
  auto* reactor = context->DefaultReactor();
  if (grpc::Status auth = Authenticate(context); !auth.ok()) {
    reactor->Finish(auth);
    return reactor;
  }
  for (auto& info : registry_->List(request->listener())) *response->add_calls() = std::move(info);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<WatchCallsResponse>* BridgeService::WatchCalls(
    grpc::CallbackServerContext* context, const bridge::v1::WatchCallsRequest* request) {
  if (grpc::Status auth = Authenticate(context); !auth.ok()) {
    class Refused final : public grpc::ServerWriteReactor<WatchCallsResponse> {
     public:
      explicit Refused(grpc::Status status) { Finish(std::move(status)); }
      void OnDone() override { delete this; }
    };
    return new Refused(auth);
  }
  std::shared_ptr<WatchStream> stream =
      WatchStream::Create(registry_, request->listener(), options_.streams);
  bool ending;
  {
    absl::MutexLock lock(&watch_mu_);
    // Forget streams that are gone, so the list stays as long as the live set.
    watchers_.erase(std::remove_if(watchers_.begin(), watchers_.end(),
                                   [](const std::weak_ptr<WatchStream>& w) { return w.expired(); }),
                    watchers_.end());
    watchers_.push_back(stream);
    ending = ending_;
  }
  if (ending) stream->End(ShuttingDown());
  return stream.get();
}

void BridgeService::EndIdleStreams() {
  dispatcher_->EndIdleSlots(ShuttingDown());
  std::vector<std::shared_ptr<WatchStream>> watchers;
  {
    absl::MutexLock lock(&watch_mu_);
    ending_ = true;
    for (const auto& weak : watchers_) {
      if (auto stream = weak.lock()) watchers.push_back(std::move(stream));
    }
  }
  // Outside the lock: Finish calls into gRPC.
  for (const auto& stream : watchers) stream->End(ShuttingDown());
}

grpc::ServerUnaryReactor* BridgeService::HangupCall(grpc::CallbackServerContext* context,
                                                    const bridge::v1::HangupCallRequest* request,
                                                    bridge::v1::HangupCallResponse* /*response*/) {
  auto* reactor = context->DefaultReactor();
  if (grpc::Status auth = Authenticate(context); !auth.ok()) {
    reactor->Finish(auth);
    return reactor;
  }
  absl::Status status = registry_->Hangup(request->call_id());
  reactor->Finish(status.ok()
                      ? grpc::Status::OK
                      : grpc::Status(grpc::StatusCode::NOT_FOUND, std::string(status.message())));
  return reactor;
}

}  // namespace audiosocket
