#ifndef AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_TICK_SLOTS_H_
#define AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_TICK_SLOTS_H_

// Where on a loop's 20 ms frame period each call's playout ticks fall.
//
// Ticks lie on a 1 ms grid, 20 slots per period; a call keeps its slot for
// its life. Calls that share a slot are played in one wake-up of the loop,
// their frames written one after another, so the last of them is as late
// as the slot is long. Few calls: share slots, so the loop wakes as seldom
// as it can. Many: no slot longer than `slot_capacity` calls. A new call
// therefore takes, among the grid points of the next 5 ms, the fullest
// slot that still has room, and only when none has, the emptiest.
//
// Threads: confined to its loop. Ownership: one per loop, outliving every
// call on it.

#include <array>
#include <cstddef>

#include "lib/event/time_source.h"

namespace audiosocket {

class TickSlots {
 public:
  static constexpr event::Nanos kGrid = std::chrono::milliseconds(1);
  static constexpr size_t kSlots = 20;  // the 20 ms frame period over kGrid
  // A new call's first tick is on one of this many grid points from now
  // (its first frame within 5 ms).
  static constexpr size_t kChoices = 5;
  // Calls per slot before a slot counts as full: about 0.3 ms of writes
  // on the benchmark machine (docs/BENCHMARKS.md).
  static constexpr size_t kDefaultSlotCapacity = 50;

  explicit TickSlots(size_t slot_capacity = kDefaultSlotCapacity) : slot_capacity_(slot_capacity) {}
  TickSlots(const TickSlots&) = delete;
  TickSlots& operator=(const TickSlots&) = delete;

  // The first grid point at or after `now`.
  static event::MonoTime NextGridPoint(event::MonoTime now);
  // The slot a tick at `tick` (a grid point) belongs to.
  static size_t SlotOf(event::MonoTime tick);

  // Chooses a new call's first tick (a grid point at or after `now`, less
  // than kChoices grid points away) and counts the call in its slot.
  event::MonoTime Take(event::MonoTime now);
  // The call whose ticks fall on `tick`'s slot stopped.
  void Release(event::MonoTime tick);

  size_t calls_in(size_t slot) const { return calls_[slot]; }

 private:
  const size_t slot_capacity_;
  std::array<size_t, kSlots> calls_{};
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_TICK_SLOTS_H_
