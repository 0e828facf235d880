#include "server/playout/slot_ticker.h"

#include <algorithm>

namespace audiosocket {

namespace {

constexpr event::Nanos kPeriod = TickSlots::kGrid * static_cast<int64_t>(TickSlots::kSlots);

}  // namespace

event::MonoTime SlotTicker::Join(Member* member) {
  const event::MonoTime first = slots_.Take(loop_->Now());
  const size_t index = TickSlots::SlotOf(first);
  Slot& slot = slot_[index];
  slot.members.push_back(member);
  // A running timer's next point is `first`, or an earlier one of the same
  // slot that a late loop has not reached yet.
  if (!slot.running) {
    slot.running = true;
    slot.next = first;
    loop_->RunRepeating(first, [self = std::weak_ptr<SlotTicker*>(self_), index] {
      const std::shared_ptr<SlotTicker*> ticker = self.lock();
      return ticker == nullptr ? event::MonoTime::max() : (*ticker)->Tick(index);
    });
  }
  return first;
}

void SlotTicker::Leave(Member* member, event::MonoTime first_tick) {
  Slot& slot = slot_[TickSlots::SlotOf(first_tick)];
  const auto it = std::find(slot.members.begin(), slot.members.end(), member);
  if (it == slot.members.end()) return;
  slots_.Release(first_tick);
  // While the slot ticks, its loop holds an index: the place is emptied
  // now and closed up after.
  if (slot.ticking) {
    *it = nullptr;
  } else {
    slot.members.erase(it);
  }
}

size_t SlotTicker::running_timers() const {
  return static_cast<size_t>(
      std::count_if(slot_.begin(), slot_.end(), [](const Slot& slot) { return slot.running; }));
}

event::MonoTime SlotTicker::Tick(size_t index) {
  Slot& slot = slot_[index];
  const event::MonoTime now = loop_->Now();
  slot.ticking = true;
  // Members that join meanwhile (at the end) have their first tick later.
  const size_t count = slot.members.size();
  for (size_t i = 0; i < count; ++i) {
    Member* const member = slot.members[i];  // read each time: Join may grow the vector
    if (member != nullptr) member->OnSlotTick(now);
  }
  slot.ticking = false;
  slot.members.erase(std::remove(slot.members.begin(), slot.members.end(), nullptr),
                     slot.members.end());
  if (slot.members.empty()) {
    slot.running = false;
    return event::MonoTime::max();
  }
  slot.next += kPeriod;
  while (slot.next <= now) slot.next += kPeriod;
  return slot.next;
}

}  // namespace audiosocket
