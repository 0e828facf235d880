#include "server/playout/slot_ticker.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/time_source.h"

namespace audiosocket {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// The simulated clock's start, which is on the tick grid.
const event::MonoTime kStart = event::SimulatedTimeSource().Now();

// Records each tick as "name@ms" (when it was ticked, in whole ms since
// kStart) in a log the test shares among members.
class LoggingMember : public SlotTicker::Member {
 public:
  LoggingMember(std::string name, std::vector<std::string>* log)
      : name_(std::move(name)), log_(log) {}
  void OnSlotTick(event::MonoTime now) override {
    log_->push_back(
        absl::StrCat(name_, "@", std::chrono::duration_cast<milliseconds>(now - kStart).count()));
    if (on_tick) on_tick();
  }
  std::function<void()> on_tick;

 private:
  std::string name_;
  std::vector<std::string>* log_;
};

class SlotTickerTest : public ::testing::Test {
 protected:
  // Moves time by `by` and runs the loop: every timer due by then fires.
  void Advance(event::Nanos by) {
    time_.Advance(by);
    for (int i = 0; i < 3; ++i) loop_.RunOnce(event::Nanos(0));
  }

  event::SimulatedTimeSource time_;  // starts on the tick grid
  event::EpollDispatcher loop_{&time_};
  std::vector<std::string> log_;
};

// Members that land on one slot are ticked by its one timer, in the order
// they joined, at each of its points.
TEST_F(SlotTickerTest, MembersOfASlotShareOneTimerAndTickInJoinOrder) {
  SlotTicker ticker(&loop_);
  LoggingMember a("a", &log_), b("b", &log_), c("c", &log_);
  Advance(microseconds(500));
  const event::MonoTime first = ticker.Join(&a);
  EXPECT_EQ(first, time_.Now() + microseconds(500));  // the next grid point
  EXPECT_EQ(ticker.Join(&b), first);                  // the fullest slot with room
  EXPECT_EQ(ticker.Join(&c), first);
  EXPECT_EQ(ticker.running_timers(), 1u);
  EXPECT_EQ(ticker.slots().calls_in(TickSlots::SlotOf(first)), 3u);
  Advance(microseconds(400));
  EXPECT_THAT(log_, IsEmpty());
  Advance(microseconds(100));
  Advance(milliseconds(20));
  EXPECT_THAT(log_, ElementsAre("a@1", "b@1", "c@1", "a@21", "b@21", "c@21"));
  for (LoggingMember* member : {&a, &b, &c}) ticker.Leave(member, first);
}

// Full slots (here of two) send later members to the next slot, which gets
// a timer of its own.
TEST_F(SlotTickerTest, AFullSlotSendsMembersToAnotherWithItsOwnTimer) {
  SlotTicker ticker(&loop_, /*slot_capacity=*/2);
  LoggingMember a("a", &log_), b("b", &log_), c("c", &log_);
  const event::MonoTime first = ticker.Join(&a);
  ASSERT_EQ(ticker.Join(&b), first);
  const event::MonoTime third = ticker.Join(&c);
  EXPECT_EQ(third, first + milliseconds(1));
  EXPECT_EQ(ticker.running_timers(), 2u);
  Advance(event::Nanos(0));
  Advance(milliseconds(1));
  EXPECT_THAT(log_, ElementsAre("a@0", "b@0", "c@1"));
  ticker.Leave(&a, first);
  ticker.Leave(&b, first);
  ticker.Leave(&c, third);
}

// A member that leaves while its slot ticks (itself, or one after it) is
// not ticked again; the others keep their ticks. A slot left empty stops
// its timer at its next point, and a new member starts another.
TEST_F(SlotTickerTest, MembersLeavingDuringATickAreNotTickedAgain) {
  SlotTicker ticker(&loop_);
  LoggingMember a("a", &log_), b("b", &log_), c("c", &log_);
  const event::MonoTime first = ticker.Join(&a);
  ticker.Join(&b);
  ticker.Join(&c);
  a.on_tick = [&] { ticker.Leave(&c, first); };  // one after it
  b.on_tick = [&] { ticker.Leave(&b, first); };  // itself
  Advance(event::Nanos(0));
  EXPECT_THAT(log_, ElementsAre("a@0", "b@0"));
  EXPECT_EQ(ticker.slots().calls_in(TickSlots::SlotOf(first)), 1u);
  a.on_tick = nullptr;
  Advance(milliseconds(20));
  EXPECT_THAT(log_, ElementsAre("a@0", "b@0", "a@20"));
  ticker.Leave(&a, first);
  EXPECT_EQ(ticker.running_timers(), 1u);  // until its next point
  Advance(milliseconds(20));
  EXPECT_EQ(ticker.running_timers(), 0u);
  EXPECT_THAT(log_, ElementsAre("a@0", "b@0", "a@20"));
  ticker.Leave(&a, first);  // not a member: nothing
  const event::MonoTime again = ticker.Join(&b);
  EXPECT_EQ(again, time_.Now());  // due now: a new timer, run next round
  EXPECT_EQ(ticker.running_timers(), 1u);
  Advance(event::Nanos(0));
  EXPECT_THAT(log_, ElementsAre("a@0", "b@0", "a@20", "b@40"));
  ticker.Leave(&b, again);
}

// A loop that runs a slot's timer late ticks its members once, when it
// runs, and the timer then goes on at the first point after now.
TEST_F(SlotTickerTest, ALateLoopTicksOnceAndSkipsToTheNextPoint) {
  SlotTicker ticker(&loop_);
  LoggingMember a("a", &log_);
  const event::MonoTime first = ticker.Join(&a);
  time_.Advance(milliseconds(45));
  for (int i = 0; i < 3; ++i) loop_.RunOnce(event::Nanos(0));
  EXPECT_THAT(log_, ElementsAre("a@45"));
  Advance(milliseconds(14));
  EXPECT_THAT(log_, ElementsAre("a@45"));
  Advance(milliseconds(1));
  EXPECT_THAT(log_, ElementsAre("a@45", "a@60"));
  ticker.Leave(&a, first);
}

// The ticker may go before its loop (a loop's timers may outlive it): its
// timers then stop at their next point without calling anything.
TEST_F(SlotTickerTest, TimersOfATickerDestroyedBeforeItsLoopStop) {
  LoggingMember a("a", &log_);
  {
    SlotTicker ticker(&loop_);
    ticker.Join(&a);
    Advance(event::Nanos(0));
  }
  Advance(milliseconds(20));
  Advance(milliseconds(20));
  EXPECT_THAT(log_, ElementsAre("a@0"));
}

}  // namespace
}  // namespace audiosocket
