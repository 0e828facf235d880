// Checks absl_mutex_tsan.cc under --config=tsan: patterns that are correct
// with absl::Mutex must give no ThreadSanitizer report (.bazelrc runs tests
// with halt_on_error=1, so a report fails the test). Run by the tsan suite
// (./test.sh); built without TSan it checks only that the patterns work.

#include <memory>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace {

// What a waiter's condition reads. The waiter owns it and frees it after
// the wait: correct, since the condition is only evaluated under the mutex.
struct WaitState {
  int evaluations = 0;
};

bool NeverTrue(WaitState* state) {
  ++state->evaluations;
  return false;
}

// Abseil's Unlock evaluates the conditions of waiting threads to decide whom
// to wake. When the condition is false nobody is woken, so nothing but the
// mutex orders that evaluation with what the waiter does after its wait ends
// by timeout. The shim used to annotate the release before the real Unlock
// ran, so TSan saw the evaluation after the release and reported the
// waiter's later `delete` (or reuse of its stack) as a race with it. That was
// the report seen in reliability_test: a condition lambda on the test
// thread's stack, evaluated by a backend reader thread's Unlock while the
// test thread waited for an event that never came; the test thread's stack
// was then reused by gtest's failure message.
TEST(AbslMutexTsanTest, ConditionEvaluatedByAnotherThreadsUnlockIsOrdered) {
  absl::Mutex mu;
  bool waiting = false;
  std::thread waiter([&] {
    auto state = std::make_unique<WaitState>();
    {
      absl::MutexLock lock(&mu);
      waiting = true;
      EXPECT_FALSE(
          mu.AwaitWithTimeout(absl::Condition(&NeverTrue, state.get()), absl::Milliseconds(300)));
      EXPECT_GE(state->evaluations, 2);
    }
    state.reset();  // freed after the wait, outside the lock
  });
  // Once the waiter is blocked in its wait, lock and unlock a few times:
  // each Unlock evaluates the waiter's condition on this thread.
  {
    absl::MutexLock lock(&mu);
    auto is_waiting = [&waiting]() { return waiting; };
    mu.Await(absl::Condition(&is_waiting));
  }
  for (int i = 0; i < 5; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
    absl::MutexLock lock(&mu);
  }
  waiter.join();
}

// A condition on the waiter's stack, the waiter's stack reused right after.
TEST(AbslMutexTsanTest, LambdaConditionOnTheWaitersStack) {
  absl::Mutex mu;
  int value = 0;
  std::thread waiter([&] {
    for (int i = 1; i <= 200; ++i) {
      absl::MutexLock lock(&mu);
      auto reached = [&value, i]() { return value >= i; };
      mu.Await(absl::Condition(&reached));
    }
  });
  for (int i = 1; i <= 200; ++i) {
    absl::MutexLock lock(&mu);
    value = i;
  }
  waiter.join();
  EXPECT_EQ(value, 200);
}

// Await with a timeout that expires: the mutex is held again on return.
TEST(AbslMutexTsanTest, AwaitWithTimeoutHoldsTheMutexOnTimeout) {
  absl::Mutex mu;
  int guarded = 0;
  std::thread other([&] {
    absl::SleepFor(absl::Milliseconds(5));
    absl::MutexLock lock(&mu);
    ++guarded;
  });
  {
    absl::MutexLock lock(&mu);
    auto never = []() { return false; };
    EXPECT_FALSE(mu.AwaitWithTimeout(absl::Condition(&never), absl::Milliseconds(20)));
    ++guarded;
  }
  other.join();
  EXPECT_EQ(guarded, 2);
}

}  // namespace
