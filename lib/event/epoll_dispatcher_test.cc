// EpollDispatcher: posting across threads, timers in simulated and real
// time, cancellation, descriptor readiness.

#include "lib/event/epoll_dispatcher.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/time_source.h"

namespace audiosocket::event {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;

TEST(EpollDispatcherTest, PostedTasksRunInOrderOnTheDispatcherThread) {
  EpollDispatcher dispatcher;
  dispatcher.StartThread();
  std::vector<int> order;  // touched by dispatcher tasks only
  absl::Notification done;
  std::atomic<bool> on_thread{true};
  for (int i = 0; i < 1000; ++i) {
    dispatcher.Post([&, i] {
      if (!dispatcher.InDispatcherThread()) on_thread = false;
      order.push_back(i);
      if (i == 999) done.Notify();
    });
  }
  // Generous: the machine may be loaded; the test only fails on a hang.
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(60)));
  dispatcher.Stop();
  dispatcher.Join();
  EXPECT_TRUE(on_thread);
  ASSERT_EQ(order.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(order[i], i);
}

TEST(EpollDispatcherTest, PostsFromManyThreadsAllRun) {
  EpollDispatcher dispatcher;
  dispatcher.StartThread();
  std::atomic<int> ran{0};
  std::vector<std::thread> posters;
  for (int t = 0; t < 4; ++t) {
    posters.emplace_back([&] {
      for (int i = 0; i < 500; ++i) dispatcher.Post([&] { ++ran; });
    });
  }
  for (std::thread& t : posters) t.join();
  dispatcher.Stop();  // tasks posted before Stop still run
  dispatcher.Join();
  EXPECT_EQ(ran.load(), 2000);
}

TEST(EpollDispatcherTest, ALargeBurstRunsInSlicesWithTimersBetween) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  std::vector<std::string> log;
  for (int i = 0; i < 600; ++i) dispatcher.Post([&] { log.push_back("task"); });
  dispatcher.RunAt(time.Now(), [&] { log.push_back("timer"); });
  dispatcher.RunOnce(milliseconds(0));
  // Timers run first in a round, then at most one slice of tasks.
  ASSERT_FALSE(log.empty());
  EXPECT_EQ(log.front(), "timer");
  EXPECT_LT(log.size(), 601u);
  for (int i = 0; i < 10 && log.size() < 601; ++i) dispatcher.RunOnce(milliseconds(0));
  EXPECT_EQ(log.size(), 601u);
}

TEST(EpollDispatcherTest, TimersFireInDeadlineOrderInSimulatedTime) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  const MonoTime t0 = time.Now();
  std::vector<int> fired;
  dispatcher.RunAt(t0 + milliseconds(30), [&] { fired.push_back(30); });
  dispatcher.RunAt(t0 + milliseconds(10), [&] { fired.push_back(10); });
  dispatcher.RunAt(t0 + milliseconds(20), [&] { fired.push_back(20); });
  dispatcher.RunAt(t0 + milliseconds(10), [&] { fired.push_back(11); });  // same time: set order
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_TRUE(fired.empty());
  time.Advance(milliseconds(10));
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_THAT(fired, ElementsAre(10, 11));
  time.Advance(milliseconds(25));
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_THAT(fired, ElementsAre(10, 11, 20, 30));
  EXPECT_EQ(dispatcher.pending_timers(), 0u);
}

TEST(EpollDispatcherTest, ATimerSetByATimerForNowRunsNextRound) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  int fired = 0;
  dispatcher.RunAt(time.Now(), [&] {
    ++fired;
    dispatcher.RunAt(time.Now(), [&] { ++fired; });
  });
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_EQ(fired, 1);  // one timer cannot starve the rest of the round
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_EQ(fired, 2);
}

TEST(EpollDispatcherTest, ACancelledTimerNeverRuns) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  bool kept = false;
  bool cancelled = false;
  const auto id = dispatcher.RunAt(time.Now() + milliseconds(5), [&] { cancelled = true; });
  dispatcher.RunAt(time.Now() + milliseconds(5), [&] { kept = true; });
  dispatcher.CancelTimer(id);
  dispatcher.CancelTimer(id);      // twice: harmless
  dispatcher.CancelTimer(123456);  // unknown: harmless
  time.Advance(milliseconds(5));
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_TRUE(kept);
  EXPECT_FALSE(cancelled);
}

// Ids of timers that ran or were cancelled stay dead even once their place
// holds a new timer: an owner cancelling late (a call ending after its
// one-shot timer fired) must not cancel someone else's.
TEST(EpollDispatcherTest, AnIdOfAFinishedTimerNeverNamesTheTimerSetAfterIt) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  const auto fired_id = dispatcher.RunAt(time.Now(), [] {});
  dispatcher.RunOnce(milliseconds(0));
  const auto cancelled_id = dispatcher.RunAt(time.Now() + milliseconds(50), [] {});
  dispatcher.CancelTimer(cancelled_id);
  std::vector<int> fired;
  std::vector<EpollDispatcher::TimerId> ids;
  for (int i = 0; i < 3; ++i) {
    ids.push_back(
        dispatcher.RunAt(time.Now() + milliseconds(5), [&fired, i] { fired.push_back(i); }));
  }
  dispatcher.CancelTimer(fired_id);
  dispatcher.CancelTimer(cancelled_id);
  EXPECT_EQ(dispatcher.pending_timers(), 3u);
  EXPECT_THAT(
      ids, ::testing::Each(::testing::AllOf(::testing::Ne(fired_id), ::testing::Ne(cancelled_id))));
  time.Advance(milliseconds(5));
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_THAT(fired, ElementsAre(0, 1, 2));
  EXPECT_EQ(dispatcher.pending_timers(), 0u);
}

TEST(EpollDispatcherTest, ATimerCancelledByAnEarlierOneInTheSameRoundDoesNotRun) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  Dispatcher::TimerId second = 0;
  bool second_ran = false;
  dispatcher.RunAt(time.Now(), [&] { dispatcher.CancelTimer(second); });
  second = dispatcher.RunAt(time.Now(), [&] { second_ran = true; });
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_FALSE(second_ran);
  EXPECT_EQ(dispatcher.pending_timers(), 0u);
}

TEST(EpollDispatcherTest, ARepeatingTimerRunsAtTheTimesItReturnsUntilMax) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  const MonoTime t0 = time.Now();
  std::vector<int64_t> fired_ms;
  dispatcher.RunRepeating(t0 + milliseconds(5), [&] {
    fired_ms.push_back(std::chrono::duration_cast<milliseconds>(time.Now() - t0).count());
    // Every 20 ms, three times; the gap it asks for is its own choice.
    return fired_ms.size() < 3 ? time.Now() + milliseconds(20) : MonoTime::max();
  });
  for (int i = 0; i < 20; ++i) {
    dispatcher.RunOnce(milliseconds(0));
    time.Advance(milliseconds(5));
  }
  EXPECT_THAT(fired_ms, ElementsAre(5, 25, 45));
  EXPECT_EQ(dispatcher.pending_timers(), 0u);  // max() ended it
}

TEST(EpollDispatcherTest, ARepeatingTimerKeepsItsIdAndOneEntry) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  int fired = 0;
  const auto id = dispatcher.RunRepeating(time.Now(), [&] {
    ++fired;
    return time.Now() + milliseconds(1);
  });
  for (int i = 0; i < 50; ++i) {
    dispatcher.RunOnce(milliseconds(0));
    time.Advance(milliseconds(1));
    EXPECT_EQ(dispatcher.pending_timers(), 1u);
  }
  EXPECT_EQ(fired, 50);
  dispatcher.CancelTimer(id);  // the id it was set with stops it
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_EQ(fired, 50);
  EXPECT_EQ(dispatcher.pending_timers(), 0u);
}

TEST(EpollDispatcherTest, ARepeatingTimerCancelledFromInsideItselfStops) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  Dispatcher::TimerId id = 0;
  int fired = 0;
  id = dispatcher.RunRepeating(time.Now(), [&] {
    if (++fired == 2) dispatcher.CancelTimer(id);  // what a call ending on a tick does
    return time.Now() + milliseconds(1);
  });
  for (int i = 0; i < 5; ++i) {
    dispatcher.RunOnce(milliseconds(0));
    time.Advance(milliseconds(1));
  }
  EXPECT_EQ(fired, 2);
  EXPECT_EQ(dispatcher.pending_timers(), 0u);
}

TEST(EpollDispatcherTest, ARepeatingTimerThatSetsTimersAndIsLateRunsOncePerRound) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  int fired = 0;
  int others = 0;
  dispatcher.RunRepeating(time.Now(), [&] {
    ++fired;
    // Many timers set from inside it: the map holding it grows and
    // rehashes while it runs.
    for (int i = 0; i < 100; ++i) dispatcher.RunAt(time.Now() + milliseconds(1), [&] { ++others; });
    return time.Now();  // already due: the next round, not this one
  });
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_EQ(fired, 1);
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_EQ(fired, 2);
  time.Advance(milliseconds(1));
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_EQ(fired, 3);
  EXPECT_EQ(others, 200);
}

TEST(EpollDispatcherTest, RealTimeTimersSleepOnTheTimerFd) {
  EpollDispatcher dispatcher;
  const MonoTime start = dispatcher.Now();
  MonoTime fired_at{};
  dispatcher.RunAt(start + milliseconds(15), [&] { fired_at = dispatcher.Now(); });
  // No epoll timeout: only the timerfd can wake this round.
  while (fired_at == MonoTime{}) dispatcher.RunOnce(Nanos(-1));
  EXPECT_GE(fired_at - start, milliseconds(15));
}

class RecordingHandler : public FdHandler {
 public:
  void OnReadable() override { ++readable; }
  void OnWritable() override { ++writable; }
  int readable = 0;
  int writable = 0;
};

TEST(EpollDispatcherTest, ReportsReadinessUntilUnwatched) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  RecordingHandler handler;
  ASSERT_TRUE(dispatcher.Watch(fds[0], &handler, /*writable=*/false).ok());
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_EQ(handler.readable, 0);
  EXPECT_EQ(handler.writable, 0);  // not asked for

  ASSERT_EQ(write(fds[1], "x", 1), 1);
  dispatcher.RunOnce(milliseconds(1000));
  EXPECT_EQ(handler.readable, 1);

  ASSERT_TRUE(dispatcher.SetWritable(fds[0], &handler, true).ok());
  dispatcher.RunOnce(milliseconds(1000));
  EXPECT_EQ(handler.writable, 1);
  EXPECT_EQ(handler.readable, 2);  // level-triggered: the byte is still unread

  dispatcher.Unwatch(fds[0]);
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_EQ(handler.readable, 2);
  EXPECT_EQ(handler.writable, 1);
  close(fds[0]);
  close(fds[1]);
}

// Reads whatever is there per round, and remembers each round's bytes.
class ReadingHandler : public FdHandler {
 public:
  explicit ReadingHandler(int fd) : fd_(fd) {}
  void OnReadable() override {
    char buffer[64];
    const ssize_t n = read(fd_, buffer, sizeof(buffer));
    if (n <= 0) return;
    std::function<void()> first;
    {
      absl::MutexLock lock(&mu_);
      rounds_.emplace_back(buffer, static_cast<size_t>(n));
      if (rounds_.size() == 1) first = std::move(on_first_);
    }
    if (first) first();
  }
  void OnWritable() override {}
  void OnFirstRead(std::function<void()> task) { on_first_ = std::move(task); }
  std::vector<std::string> WaitForRounds(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return rounds_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(20));
    return rounds_;
  }

 private:
  const int fd_;
  absl::Mutex mu_;
  std::vector<std::string> rounds_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_first_;  // set before the loop runs
};

TEST(EpollDispatcherTest, ARoundWindowTakesInputArrivingWithinItInOneRound) {
  EpollDispatcher dispatcher;
  dispatcher.set_round_window(milliseconds(2000));
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  ReadingHandler handler(fds[0]);
  ASSERT_TRUE(dispatcher.Watch(fds[0], &handler, /*writable=*/false).ok());
  dispatcher.StartThread();
  // The first input after an idle spell is taken at once...
  ASSERT_EQ(write(fds[1], "a", 1), 1);
  ASSERT_EQ(handler.WaitForRounds(1).size(), 1u);
  // ...what follows within the window waits for one round; without the
  // window "b" would have a round of its own, 20 ms before "c" comes.
  ASSERT_EQ(write(fds[1], "b", 1), 1);
  std::this_thread::sleep_for(milliseconds(20));
  ASSERT_EQ(write(fds[1], "c", 1), 1);
  EXPECT_THAT(handler.WaitForRounds(2), ElementsAre("a", "bc"));
  dispatcher.Stop();
  dispatcher.Join();
  dispatcher.Unwatch(fds[0]);
  close(fds[0]);
  close(fds[1]);
}

TEST(EpollDispatcherTest, ARoundWindowDoesNotDelayTimers) {
  EpollDispatcher dispatcher;
  dispatcher.set_round_window(milliseconds(2000));
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  ReadingHandler handler(fds[0]);
  absl::Notification fired;
  MonoTime set_at{};
  MonoTime fired_at{};
  // Set right after a round began, so the window is in force.
  handler.OnFirstRead([&] {
    set_at = dispatcher.Now();
    dispatcher.RunAt(set_at + milliseconds(30), [&] {
      fired_at = dispatcher.Now();
      fired.Notify();
    });
  });
  ASSERT_TRUE(dispatcher.Watch(fds[0], &handler, /*writable=*/false).ok());
  dispatcher.StartThread();
  ASSERT_EQ(write(fds[1], "a", 1), 1);
  ASSERT_TRUE(fired.WaitForNotificationWithTimeout(absl::Seconds(20)));
  EXPECT_GE(fired_at - set_at, milliseconds(30));
  EXPECT_LT(fired_at - set_at, milliseconds(1500));  // not at the window's end
  dispatcher.Stop();
  dispatcher.Join();
  dispatcher.Unwatch(fds[0]);
  close(fds[0]);
  close(fds[1]);
}

TEST(EpollDispatcherTest, WatchingAClosedDescriptorIsAnError) {
  EpollDispatcher dispatcher;
  RecordingHandler handler;
  EXPECT_FALSE(dispatcher.Watch(-1, &handler, false).ok());
  EXPECT_FALSE(dispatcher.SetWritable(-1, &handler, true).ok());
}

TEST(EpollDispatcherTest, APostWakesARoundWaitingWithoutLimit) {
  EpollDispatcher dispatcher;
  std::atomic<bool> ran{false};
  std::thread poster([&] { dispatcher.Post([&] { ran = true; }); });
  while (!ran) dispatcher.RunOnce(Nanos(-1));
  poster.join();
  EXPECT_TRUE(ran);
}

TEST(EpollDispatcherTest, AfterRoundTasksRunOnceTheRoundsHandlersHaveRun) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
  std::vector<std::string> order;
  // A handler that asks for one after-round task per input, the way every
  // stream of a round asks for its connection to be flushed.
  struct Handler : FdHandler {
    EpollDispatcher* dispatcher;
    std::vector<std::string>* order;
    int fd;
    void OnReadable() override {
      char c;
      while (read(fd, &c, 1) == 1) {
        order->push_back(std::string("read ") + c);
        dispatcher->RunAfterRound([this, c] {
          order->push_back(std::string("after ") + c);
          // Added while after-round tasks run: still this round.
          if (c == 'b') dispatcher->RunAfterRound([this] { order->push_back("after after b"); });
        });
      }
    }
    void OnWritable() override {}
  } handler;
  handler.dispatcher = &dispatcher;
  handler.order = &order;
  handler.fd = fds[0];
  ASSERT_TRUE(dispatcher.Watch(fds[0], &handler, false).ok());
  dispatcher.RunAt(time.Now(), [&] { order.push_back("timer"); });
  ASSERT_EQ(write(fds[1], "ab", 2), 2);
  dispatcher.RunOnce(milliseconds(1000));
  EXPECT_THAT(order,
              ElementsAre("timer", "read a", "read b", "after a", "after b", "after after b"));
  order.clear();
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_TRUE(order.empty());
  dispatcher.Unwatch(fds[0]);
  close(fds[0]);
  close(fds[1]);
}

// A round with many descriptors ready (a caller that sent a burst) must not
// hold a timer that comes due while it runs until its last handler.
TEST(EpollDispatcherTest, ATimerDueDuringALongRoundRunsBeforeTheRestOfIt) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  constexpr int kDescriptors = 48;
  std::vector<std::string> order;
  // Each handler reads its byte and takes 10 us of the loop's time.
  struct Handler : FdHandler {
    SimulatedTimeSource* time;
    std::vector<std::string>* order;
    int fd;
    void OnReadable() override {
      char c;
      if (read(fd, &c, 1) != 1) return;
      order->push_back("read");
      time->Advance(std::chrono::microseconds(10));
    }
    void OnWritable() override {}
  };
  std::vector<Handler> handlers(kDescriptors);
  std::vector<std::array<int, 2>> pairs(kDescriptors);
  for (int i = 0; i < kDescriptors; ++i) {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pairs[i].data()), 0);
    handlers[i].time = &time;
    handlers[i].order = &order;
    handlers[i].fd = pairs[i][0];
    ASSERT_TRUE(dispatcher.Watch(pairs[i][0], &handlers[i], false).ok());
    ASSERT_EQ(write(pairs[i][1], "x", 1), 1);
  }
  // Due 50 us into a round of 480 us.
  dispatcher.RunAt(time.Now() + std::chrono::microseconds(50), [&] { order.push_back("timer"); });
  dispatcher.RunOnce(milliseconds(0));
  ASSERT_EQ(order.size(), static_cast<size_t>(kDescriptors + 1));
  const auto timer = std::find(order.begin(), order.end(), "timer");
  ASSERT_NE(timer, order.end());
  // It ran at the first look at the clock after it came due, 16 handlers
  // in (160 us), not after all 48.
  EXPECT_EQ(timer - order.begin(), 16);
  for (auto& pair : pairs) {
    dispatcher.Unwatch(pair[0]);
    close(pair[0]);
    close(pair[1]);
  }
}

// One byte to read on a watched socket: its handler notes "read", runs
// `during_read` (the test's own work inside the handler), and asks for an
// after-round "flush", as a connection shared by many calls does.
class OneReadHandler final : public FdHandler {
 public:
  OneReadHandler(
      EpollDispatcher* dispatcher, std::vector<std::string>* order,
      std::function<void()> during_read = [] {})
      : dispatcher_(dispatcher), order_(order), during_read_(std::move(during_read)) {
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair_), 0);
    EXPECT_TRUE(dispatcher_->Watch(pair_[0], this, false).ok());
    EXPECT_EQ(write(pair_[1], "x", 1), 1);
  }
  ~OneReadHandler() override {
    dispatcher_->Unwatch(pair_[0]);
    close(pair_[0]);
    close(pair_[1]);
  }
  void OnReadable() override {
    char c;
    if (read(pair_[0], &c, 1) != 1) return;
    order_->push_back("read");
    during_read_();
    dispatcher_->RunAfterRound([this] { order_->push_back("flush"); });
  }
  void OnWritable() override {}

 private:
  EpollDispatcher* const dispatcher_;
  std::vector<std::string>* const order_;
  const std::function<void()> during_read_;
  int pair_[2] = {-1, -1};
};

// A tick that comes due while a round's few handlers run goes before the
// round's closing work (the flushes of shared connections), and
// TimerDue() says so to a handler that has more input to take.
TEST(EpollDispatcherTest, ATimerDueAfterTheHandlersRunsBeforeTheAfterRoundWork) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  std::vector<std::string> order;
  std::vector<bool> due_seen;
  OneReadHandler handler(&dispatcher, &order, [&] {
    due_seen.push_back(dispatcher.TimerDue());
    time.Advance(std::chrono::microseconds(100));
    due_seen.push_back(dispatcher.TimerDue());
  });
  dispatcher.RunAt(time.Now() + std::chrono::microseconds(50), [&] { order.push_back("timer"); });
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_THAT(order, ElementsAre("read", "timer", "flush"));
  EXPECT_THAT(due_seen, ElementsAre(false, true));
  EXPECT_FALSE(dispatcher.TimerDue());
}

// Playout slots that run long: the next slot, set long before, comes due
// while this one's ticks run. It goes at the round's next look at the
// clock, not after the rest of the round.
TEST(EpollDispatcherTest, ATimerThatCameDueWhileTimersRanGoesAtTheNextLook) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  std::vector<std::string> order;
  OneReadHandler handler(&dispatcher, &order);
  dispatcher.RunAt(time.Now(), [&] {
    order.push_back("slot 1");
    time.Advance(std::chrono::microseconds(300));
  });
  dispatcher.RunAt(time.Now() + std::chrono::microseconds(100), [&] { order.push_back("slot 2"); });
  dispatcher.RunOnce(milliseconds(0));
  EXPECT_THAT(order, ElementsAre("slot 1", "read", "slot 2", "flush"));
}

// A burst of input leaves after-round work for hundreds of calls (their
// backend messages, the flushes of shared connections). A tick slot that
// comes due while that work runs goes at the next look at the clock, not
// after all of it.
TEST(EpollDispatcherTest, ATimerDueDuringLongAfterRoundWorkRunsBeforeTheRestOfIt) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  std::vector<std::string> order;
  OneReadHandler handler(&dispatcher, &order, [&] {
    for (int i = 0; i < 48; ++i) {
      dispatcher.RunAfterRound([&] {
        order.push_back("after");
        time.Advance(std::chrono::microseconds(10));
      });
    }
  });
  // Due 50 us into 480 us of after-round work.
  dispatcher.RunAt(time.Now() + std::chrono::microseconds(50), [&] { order.push_back("timer"); });
  dispatcher.RunOnce(milliseconds(0));
  ASSERT_EQ(order.size(), 51u);  // the read, 48 tasks, the handler's flush, the timer
  EXPECT_EQ(order.front(), "read");
  EXPECT_EQ(order.back(), "flush");
  // 16 tasks in (160 us), at the first look after it came due.
  EXPECT_EQ(std::find(order.begin(), order.end(), "timer") - order.begin(), 17);
}

// The same for tasks posted from other threads (backend messages of calls
// whose links run on gRPC's threads).
TEST(EpollDispatcherTest, ATimerDueWhilePostedTasksRunRunsBeforeTheRestOfThem) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  std::vector<std::string> order;
  for (int i = 0; i < 48; ++i) {
    dispatcher.Post([&] {
      order.push_back("task");
      time.Advance(std::chrono::microseconds(10));
    });
  }
  dispatcher.RunAt(time.Now() + std::chrono::microseconds(50), [&] { order.push_back("timer"); });
  dispatcher.RunOnce(milliseconds(0));
  ASSERT_EQ(order.size(), 49u);
  EXPECT_EQ(std::find(order.begin(), order.end(), "timer") - order.begin(), 16);
}

TEST(EpollDispatcherTest, TheRoundObserverHearsHowLongEachRoundTook) {
  SimulatedTimeSource time;
  EpollDispatcher dispatcher(&time);
  std::vector<Nanos> rounds;
  dispatcher.set_round_observer([&](Nanos took) { rounds.push_back(took); });
  // A timer and an after-round task that each take the loop's time: the
  // round is measured from the wake-up to the end of its last task.
  dispatcher.RunAt(time.Now(), [&] {
    time.Advance(std::chrono::microseconds(300));
    dispatcher.RunAfterRound([&] { time.Advance(std::chrono::microseconds(200)); });
  });
  dispatcher.RunOnce(milliseconds(0));
  dispatcher.RunOnce(milliseconds(0));  // nothing to do
  EXPECT_THAT(rounds, ElementsAre(Nanos(std::chrono::microseconds(500)), Nanos(0)));
}

TEST(EpollDispatcherTest, AnAfterRoundTaskAskedForOutsideARoundWakesTheNextOne) {
  EpollDispatcher dispatcher;
  bool ran = false;
  dispatcher.RunAfterRound([&] { ran = true; });
  // Would wait forever if nothing woke the round.
  dispatcher.RunOnce(Nanos(-1));
  EXPECT_TRUE(ran);
}

}  // namespace
}  // namespace audiosocket::event
