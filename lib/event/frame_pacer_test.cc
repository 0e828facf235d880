// FramePacer in simulated time: absolute deadlines, both ways of handling
// a late tick.

#include "lib/event/frame_pacer.h"

#include <chrono>

#include "gtest/gtest.h"
#include "lib/event/time_source.h"

namespace audiosocket::event {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(FramePacerTest, DeadlinesAreAbsoluteFromTheFrameNumber) {
  const MonoTime start(seconds(5));
  FramePacer pacer(start, milliseconds(20));
  EXPECT_EQ(pacer.Deadline(0), start);
  EXPECT_EQ(pacer.Deadline(3'600'000), start + seconds(72'000));  // 20 hours, exact
  EXPECT_FALSE(pacer.Due(start - Nanos(1)));
  EXPECT_TRUE(pacer.Due(start));
  pacer.Advance();
  EXPECT_EQ(pacer.next_deadline(), start + milliseconds(20));
}

TEST(FramePacerTest, LateTicksDoNotDrift) {
  SimulatedTimeSource time;
  const MonoTime start = time.Now();
  FramePacer pacer(start, milliseconds(20));
  // Every tick 3 ms late: the schedule stays on the 20 ms grid.
  for (int i = 0; i < 1000; ++i) {
    time.Set(pacer.next_deadline() + milliseconds(3));
    EXPECT_EQ(pacer.Lateness(time.Now()), milliseconds(3));
    pacer.OnTick(time.Now());
  }
  EXPECT_EQ(pacer.frames(), 1000u);
  EXPECT_EQ(pacer.next_deadline(), start + milliseconds(20) * 1000);
  EXPECT_EQ(pacer.skipped(), 0u);
}

TEST(FramePacerTest, ALateTickSendsOneFrameAndCountsTheSkippedDeadlines) {
  SimulatedTimeSource time;
  const MonoTime start = time.Now();
  FramePacer pacer(start, milliseconds(20));
  pacer.OnTick(start);
  // The loop stalls for 75 ms: deadlines at 20, 40, 60 and 80 ms have passed.
  time.Set(start + milliseconds(95));
  EXPECT_EQ(pacer.Lateness(time.Now()), milliseconds(75));
  pacer.OnTick(time.Now());
  EXPECT_EQ(pacer.frames(), 2u);
  EXPECT_EQ(pacer.skipped(), 3u);
  EXPECT_EQ(pacer.next_deadline(), start + milliseconds(100));
}

TEST(FramePacerTest, CatchingUpSendsEveryDueFrame) {
  SimulatedTimeSource time;
  FramePacer pacer(time.Now(), milliseconds(20));
  int64_t sent = 0;
  // Wake up at irregular times for ten minutes; send what is due.
  const milliseconds steps[] = {milliseconds(3), milliseconds(29), milliseconds(17),
                                milliseconds(41)};
  const MonoTime end = time.Now() + seconds(600);
  for (int i = 0; time.Now() < end; ++i) {
    time.Advance(steps[i % 4]);
    while (pacer.Due(time.Now())) {
      pacer.Advance();
      ++sent;
    }
  }
  EXPECT_EQ(sent, pacer.FramesDueBy(time.Now()));
  EXPECT_EQ(pacer.skipped(), 0u);
}

TEST(FramePacerTest, FramesDueByCountsFromStart) {
  const MonoTime start(seconds(1));
  FramePacer pacer(start, milliseconds(20));
  EXPECT_EQ(pacer.FramesDueBy(start - Nanos(1)), 0);
  EXPECT_EQ(pacer.FramesDueBy(start), 1);
  EXPECT_EQ(pacer.FramesDueBy(start + milliseconds(999)), 50);
  EXPECT_EQ(pacer.FramesDueBy(start + milliseconds(1000)), 51);
}

TEST(FramePacerTest, FiftyFramesPerSecondOverAnHour) {
  SimulatedTimeSource time;
  FramePacer pacer(time.Now(), milliseconds(20));
  const MonoTime end = time.Now() + std::chrono::hours(1);
  while (pacer.next_deadline() < end) {
    time.Set(pacer.next_deadline());
    pacer.OnTick(time.Now());
  }
  EXPECT_EQ(pacer.frames(), 180000u);
}

}  // namespace
}  // namespace audiosocket::event
