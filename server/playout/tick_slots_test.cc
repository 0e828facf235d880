// TickSlots: few calls share slots, no slot takes more than its capacity
// while another in reach has room, and stopped calls make room.

#include "server/playout/tick_slots.h"

#include <chrono>

#include "gtest/gtest.h"

namespace audiosocket {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

event::MonoTime At(event::Nanos t) { return event::MonoTime(t); }

TEST(TickSlotsTest, AGridPointIsTheNextWholeMillisecondAndItsSlotRepeatsEvery20Ms) {
  EXPECT_EQ(TickSlots::NextGridPoint(At(milliseconds(7))), At(milliseconds(7)));
  EXPECT_EQ(TickSlots::NextGridPoint(At(microseconds(7001))), At(milliseconds(8)));
  EXPECT_EQ(TickSlots::SlotOf(At(milliseconds(7))), 7u);
  EXPECT_EQ(TickSlots::SlotOf(At(milliseconds(27))), 7u);
  EXPECT_EQ(TickSlots::SlotOf(At(milliseconds(40))), 0u);
}

TEST(TickSlotsTest, ACallJoinsAnOccupiedSlotWithinReachRatherThanOpenANewOne) {
  TickSlots slots;
  // The first call: every slot in reach is empty, the earliest is taken.
  EXPECT_EQ(slots.Take(At(microseconds(200))), At(milliseconds(1)));
  // 17.3 ms: points 18 to 22 ms are in reach, 21 ms is slot 1's.
  EXPECT_EQ(slots.Take(At(microseconds(17300))), At(milliseconds(21)));
  EXPECT_EQ(slots.Take(At(milliseconds(19))), At(milliseconds(21)));
  EXPECT_EQ(slots.calls_in(1), 3u);
  // Out of reach (more than 5 ms before the slot): a slot of its own.
  EXPECT_EQ(slots.Take(At(microseconds(5200))), At(milliseconds(6)));
  EXPECT_EQ(slots.calls_in(6), 1u);
}

TEST(TickSlotsTest, AFullSlotTakesNoMoreWhileAnotherInReachHasRoom) {
  TickSlots slots(/*slot_capacity=*/2);
  EXPECT_EQ(slots.Take(At(milliseconds(1))), At(milliseconds(1)));
  EXPECT_EQ(slots.Take(At(milliseconds(1))), At(milliseconds(1)));
  // Slot 1 is full: the earliest of the empty ones in reach.
  EXPECT_EQ(slots.Take(At(microseconds(17300))), At(milliseconds(18)));
  // The fullest with room: slot 18 now, over the empty ones.
  EXPECT_EQ(slots.Take(At(microseconds(16500))), At(milliseconds(18)));
  EXPECT_EQ(slots.calls_in(1), 2u);
  EXPECT_EQ(slots.calls_in(18), 2u);
}

TEST(TickSlotsTest, WhenEverySlotInReachIsFullTheEmptiestTakesTheCall) {
  TickSlots slots(/*slot_capacity=*/1);
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(slots.Take(At(microseconds(200))), At(milliseconds(i)));
  // All five full: the emptiest, the earliest of equals.
  EXPECT_EQ(slots.Take(At(microseconds(200))), At(milliseconds(1)));
  EXPECT_EQ(slots.Take(At(microseconds(200))), At(milliseconds(2)));
  EXPECT_EQ(slots.calls_in(1), 2u);
  EXPECT_EQ(slots.calls_in(2), 2u);
}

TEST(TickSlotsTest, AReleasedPlaceIsTakenAgain) {
  TickSlots slots(/*slot_capacity=*/1);
  EXPECT_EQ(slots.Take(At(microseconds(200))), At(milliseconds(1)));
  EXPECT_EQ(slots.Take(At(microseconds(200))), At(milliseconds(2)));
  // A tick of the call in slot 1, many periods later.
  slots.Release(At(milliseconds(1001)));
  EXPECT_EQ(slots.calls_in(1), 0u);
  EXPECT_EQ(slots.Take(At(microseconds(200))), At(milliseconds(1)));
}

}  // namespace
}  // namespace audiosocket
