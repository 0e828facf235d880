// mutex_waits: a thread put to sleep on a held absl::Mutex is counted; an
// uncontended lock is not.

#include "server/ops/mutex_waits.h"

#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace audiosocket {
namespace {

TEST(MutexWaitsTest, UncontendedLocksAreNotCounted) {
  mutex_waits::Install();
  absl::Mutex mu;
  const uint64_t before = mutex_waits::Count();
  for (int i = 0; i < 10000; ++i) absl::MutexLock lock(&mu);
  EXPECT_EQ(mutex_waits::Count(), before);
}

TEST(MutexWaitsTest, AThreadThatSleptOnAHeldLockIsCounted) {
  mutex_waits::Install();
  mutex_waits::Install();  // twice: harmless
  absl::Mutex mu;
  const uint64_t before = mutex_waits::Count();
  // The other thread must reach Lock while this one holds it; on a loaded
  // machine it may not get there in one hold, so a few are tried.
  for (int attempt = 0; attempt < 50 && mutex_waits::Count() == before; ++attempt) {
    absl::Notification started;
    mu.Lock();
    std::thread waiter([&] {
      started.Notify();
      absl::MutexLock lock(&mu);
    });
    started.WaitForNotification();
    absl::SleepFor(absl::Milliseconds(20));  // far longer than Abseil spins
    mu.Unlock();
    waiter.join();
  }
  EXPECT_GT(mutex_waits::Count(), before);
}

}  // namespace
}  // namespace audiosocket
