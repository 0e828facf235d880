#include "server/backend/claim_dispatcher.h"

#include <utility>

namespace audiosocket {

// ---------------------------------------------------------------- dispatcher

bool ClaimDispatcher::Matches(const ClaimSlot& slot, const WaitingCall& call) {
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
  std::shared_ptr<ClaimSlot> slot;
  {
    absl::MutexLock lock(&mu_);
    auto chosen = slots_.end();
    for (auto it = slots_.begin(); it != slots_.end(); ++it) {
      if (!Matches(**it, *call)) continue;
      if (chosen == slots_.end()) chosen = it;
      if (call->loop() == nullptr || (*it)->loop() == call->loop()) {
        chosen = it;
        break;
      }
    }
    if (chosen != slots_.end()) {
      slot = std::move(*chosen);
      slots_.erase(chosen);
    } else {
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

void ClaimDispatcher::AddSlot(std::shared_ptr<ClaimSlot> slot) {
  PairOrPark(std::move(slot), /*front=*/false);
}

void ClaimDispatcher::PairOrPark(std::shared_ptr<ClaimSlot> slot, bool front) {
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

void ClaimDispatcher::RemoveSlot(const ClaimSlot* slot) {
  absl::MutexLock lock(&mu_);
  for (auto it = slots_.begin(); it != slots_.end(); ++it) {
    if (it->get() == slot) {
      slots_.erase(it);
      return;
    }
  }
}

void ClaimDispatcher::ReturnSlot(std::shared_ptr<ClaimSlot> slot) {
  // It waited longest: first in line for the next call.
  PairOrPark(std::move(slot), /*front=*/true);
}

void ClaimDispatcher::EndIdleSlots(const grpc::Status& status) {
  std::deque<std::shared_ptr<ClaimSlot>> idle;
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

}  // namespace audiosocket
