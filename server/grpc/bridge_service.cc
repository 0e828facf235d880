#include "server/grpc/bridge_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/backend/claim_stream.h"
#include "server/ops/log.h"

namespace audiosocket {

using bridge::v1::ClaimCallResponse;
using bridge::v1::WatchCallsResponse;

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
    : dispatcher_(dispatcher),
      registry_(registry),
      options_(std::move(options)),
      auth_(options_.auth_token) {}

namespace {

// A ClaimCall refused at once (push mode, limit, authentication).
class RefusedClaim final
    : public grpc::ServerBidiReactor<bridge::v1::ClaimCallRequest, ClaimCallResponse> {
 public:
  explicit RefusedClaim(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::Status BridgeService::AdmitClaim(std::optional<std::string_view> authorization) const {
  if (grpc::Status auth = auth_.CheckHeader(authorization); !auth.ok()) {
    if (options_.counters != nullptr) options_.counters->pull_streams_rejected++;
    return auth;
  }
  if (!options_.claims_enabled) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this bridge runs in push mode (--backend is set); calls are not "
                        "available for claiming");
  }
  if (options_.counters != nullptr &&
      options_.counters->pull_streams.load() >= options_.max_pull_streams) {
    options_.counters->pull_streams_rejected++;
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("the bridge already has ", options_.max_pull_streams,
                                     " ClaimCall streams open (--max_pull_streams)"));
  }
  return grpc::Status::OK;
}

grpc::ServerBidiReactor<bridge::v1::ClaimCallRequest, ClaimCallResponse>* BridgeService::ClaimCall(
    grpc::CallbackServerContext* context) {
  std::optional<std::string_view> authorization;
  const auto& metadata = context->client_metadata();
  if (auto it = metadata.find("authorization"); it != metadata.end()) {
    authorization = std::string_view(it->second.data(), it->second.size());
  }
  if (grpc::Status admitted = AdmitClaim(authorization); !admitted.ok()) {
    return new RefusedClaim(std::move(admitted));
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
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) {
    reactor->Finish(auth);
    return reactor;
  }
  for (auto& info : registry_->List(request->listener())) *response->add_calls() = std::move(info);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<WatchCallsResponse>* BridgeService::WatchCalls(
    grpc::CallbackServerContext* context, const bridge::v1::WatchCallsRequest* request) {
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) {
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
  if (grpc::Status auth = auth_.Check(*context); !auth.ok()) {
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
