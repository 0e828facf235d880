#include "server/backend/stream_tracker.h"

#include <vector>

namespace audiosocket {

uint64_t StreamTracker::Add(std::weak_ptr<BackendLink> link) {
  absl::MutexLock lock(&mu_);
  const uint64_t key = ++next_key_;
  open_.emplace(key, std::move(link));
  return key;
}

void StreamTracker::Done(uint64_t key) {
  absl::MutexLock lock(&mu_);
  open_.erase(key);
}

bool StreamTracker::WaitIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithDeadline(absl::Condition(this, &StreamTracker::NoneOpen), deadline);
}

void StreamTracker::AbortAll() {
  std::vector<std::shared_ptr<BackendLink>> links;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, weak] : open_) {
      if (auto link = weak.lock()) links.push_back(std::move(link));
    }
  }
  // Outside the lock: Abort calls into gRPC.
  for (const auto& link : links) link->Abort();
}

size_t StreamTracker::open() const {
  absl::MutexLock lock(&mu_);
  return open_.size();
}

}  // namespace audiosocket
