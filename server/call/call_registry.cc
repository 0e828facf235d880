#include "server/call/call_registry.h"

#include "absl/strings/str_cat.h"
#include "server/ops/quote.h"

namespace audiosocket {

using bridge::v1::CallInfo;
using bridge::v1::WatchCallsResponse;

absl::Status CallRegistry::Add(const CallInfo& info, std::weak_ptr<RegisteredCall> call) {
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    if (calls_.contains(info.call_id())) {
      return absl::AlreadyExistsError(
          absl::StrCat("call id ", info.call_id(), " is already active on this bridge"));
    }
    calls_.emplace(info.call_id(), Entry{info, std::move(call)});
    sequence = ++sequence_;
  }
  WatchCallsResponse change;
  *change.mutable_started() = info;
  Notify(change, sequence);
  return absl::OkStatus();
}

void CallRegistry::SetState(const std::string& call_id, bridge::v1::CallState state,
                            uint32_t call_sample_rate_hz) {
  absl::MutexLock lock(&mu_);
  auto it = calls_.find(call_id);
  if (it == calls_.end()) return;
  it->second.info.set_state(state);
  it->second.info.set_call_sample_rate_hz(call_sample_rate_hz);
}

void CallRegistry::Remove(const std::string& call_id, bridge::v1::CallEndReason reason,
                          const std::string& detail) {
  uint64_t sequence;
  {
    absl::MutexLock lock(&mu_);
    if (calls_.erase(call_id) == 0) return;
    sequence = ++sequence_;
  }
  WatchCallsResponse change;
  change.mutable_ended()->set_call_id(call_id);
  change.mutable_ended()->set_reason(reason);
  change.mutable_ended()->set_detail(detail);
  Notify(change, sequence);
}

std::vector<CallInfo> CallRegistry::List(const std::string& listener) const {
  absl::MutexLock lock(&mu_);
  std::vector<CallInfo> out;
  for (const auto& [id, entry] : calls_) {
    if (listener.empty() || entry.info.listener() == listener) out.push_back(entry.info);
  }
  return out;
}

absl::Status CallRegistry::Hangup(const std::string& call_id) {
  std::shared_ptr<RegisteredCall> call;
  {
    absl::MutexLock lock(&mu_);
    auto it = calls_.find(call_id);
    if (it != calls_.end()) call = it->second.call.lock();
  }
  if (call == nullptr) {
    return absl::NotFoundError(absl::StrCat("no active call with id ", QuoteForError(call_id)));
  }
  call->RequestHangup();
  return absl::OkStatus();
}

size_t CallRegistry::size() const {
  absl::MutexLock lock(&mu_);
  return calls_.size();
}

uint64_t CallRegistry::AddWatcher(Watcher watcher, std::vector<CallInfo>* existing,
                                  std::atomic<uint64_t>* snapshot_sequence) {
  absl::MutexLock lock(&mu_);
  for (const auto& [id, entry] : calls_) existing->push_back(entry.info);
  // Set before the watcher is visible to Notify: no change can slip between.
  snapshot_sequence->store(sequence_);
  const uint64_t id = next_watcher_++;
  watchers_.emplace(id, std::make_shared<Watcher>(std::move(watcher)));
  return id;
}

void CallRegistry::RemoveWatcher(uint64_t id) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(id);
}

void CallRegistry::Notify(const WatchCallsResponse& change, uint64_t sequence) {
  std::vector<std::shared_ptr<Watcher>> watchers;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, watcher] : watchers_) watchers.push_back(watcher);
  }
  for (const auto& watcher : watchers) (*watcher)(change, sequence);
}

}  // namespace audiosocket
