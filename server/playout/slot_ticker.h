#ifndef AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_SLOT_TICKER_H_
#define AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_SLOT_TICKER_H_

// A loop's playout ticks: one repeating timer per occupied tick slot
// (TickSlots), which ticks every call on that slot in turn, in the order
// they joined. A timer per call cost the loop a pop and a push of its timer
// heap, and a move of the call's closure, for every frame; here the heap
// holds at most TickSlots::kSlots playout entries, however many calls the
// loop carries.
//
// A slot's timer runs on its grid points, a period apart; a loop that runs
// it late ticks the members once and the timer goes on at the first point
// after now. Each member checks its own deadline against the time it is
// ticked: one that joined while its slot's timer was late is ticked before
// its first deadline, and one whose deadline a late tick reached is ticked
// for it there.
// A slot left empty stops at its next point rather than at once, so that
// leaving never touches the loop (a call may end while its loop is being
// torn down); for the same reason the ticker may be destroyed before or
// after its loop: a slot timer that outlives it stops at its next point.
//
// Threads: confined to its loop. Ownership: one per loop (the bridge's),
// or one per playout that has no loop's (tests); members leave before
// they are destroyed.

#include <array>
#include <cstddef>
#include <memory>
#include <vector>

#include "lib/event/dispatcher.h"
#include "lib/event/time_source.h"
#include "server/playout/tick_slots.h"

namespace audiosocket {

class SlotTicker {
 public:
  class Member {
   public:
    virtual ~Member() = default;
    // The member's slot's timer fired at `now` (its point or later).
    virtual void OnSlotTick(event::MonoTime now) = 0;
  };

  explicit SlotTicker(event::Dispatcher* loop,
                      size_t slot_capacity = TickSlots::kDefaultSlotCapacity)
      : loop_(loop), slots_(slot_capacity) {}
  SlotTicker(const SlotTicker&) = delete;
  SlotTicker& operator=(const SlotTicker&) = delete;

  // Chooses `member`'s first tick (TickSlots::Take, a grid point at or
  // after now and less than 5 ms away) and ticks it there and every period
  // after, until Leave. A first tick at now is the caller's to run: the
  // slot's timer may already have passed it.
  event::MonoTime Join(Member* member);
  // No more ticks for `member`, which joined with `first_tick`; nothing
  // if it is not a member.
  void Leave(Member* member, event::MonoTime first_tick);

  const TickSlots& slots() const { return slots_; }
  // Slot timers running (a slot just emptied counts until its next point).
  size_t running_timers() const;

 private:
  struct Slot {
    std::vector<Member*> members;  // null: left while the slot was ticking
    event::MonoTime next{};        // the timer's next point, while running
    bool running = false;
    bool ticking = false;
  };

  // Ticks slot `index`'s members; returns its timer's next point, or max()
  // when the slot is empty.
  event::MonoTime Tick(size_t index);

  event::Dispatcher* const loop_;
  TickSlots slots_;
  std::array<Slot, TickSlots::kSlots> slot_;
  // The slot timers hold it weakly: once the ticker is gone, they stop.
  std::shared_ptr<SlotTicker*> self_ = std::make_shared<SlotTicker*>(this);
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_SLOT_TICKER_H_
