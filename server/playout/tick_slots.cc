#include "server/playout/tick_slots.h"

namespace audiosocket {

event::MonoTime TickSlots::NextGridPoint(event::MonoTime now) {
  const event::Nanos since_epoch = now.time_since_epoch();
  return event::MonoTime((since_epoch + kGrid - event::Nanos(1)) / kGrid * kGrid);
}

size_t TickSlots::SlotOf(event::MonoTime tick) {
  return static_cast<size_t>(tick.time_since_epoch() / kGrid % static_cast<int64_t>(kSlots));
}

event::MonoTime TickSlots::Take(event::MonoTime now) {
  const event::MonoTime first = NextGridPoint(now);
  auto point = [first](size_t i) { return first + kGrid * static_cast<int64_t>(i); };
  size_t best = kChoices;  // the fullest with room
  size_t emptiest = 0;     // when none has room
  for (size_t i = 0; i < kChoices; ++i) {
    const size_t calls = calls_[SlotOf(point(i))];
    if (calls < slot_capacity_ && (best == kChoices || calls > calls_[SlotOf(point(best))])) {
      best = i;
    }
    if (calls < calls_[SlotOf(point(emptiest))]) emptiest = i;
  }
  const event::MonoTime tick = point(best < kChoices ? best : emptiest);
  ++calls_[SlotOf(tick)];
  return tick;
}

void TickSlots::Release(event::MonoTime tick) {
  size_t& calls = calls_[SlotOf(tick)];
  if (calls > 0) --calls;
}

}  // namespace audiosocket
