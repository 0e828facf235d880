#ifndef AUDIOSOCKET_BRIDGE_LIB_EVENT_TIME_SOURCE_H_
#define AUDIOSOCKET_BRIDGE_LIB_EVENT_TIME_SOURCE_H_

// Monotonic time for pacing and timeouts, behind a seam so that code on a
// dispatcher can be tested in simulated time instead of sleeping. Wall-clock
// time (absl::Now) is only for logs and timestamps shown to users.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace audiosocket::event {

using MonoClock = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux
using MonoTime = MonoClock::time_point;
using Nanos = std::chrono::nanoseconds;

// Threads: implementations are safe to call from any thread.
class TimeSource {
 public:
  virtual ~TimeSource() = default;
  virtual MonoTime Now() const = 0;
  // True when Now() reads CLOCK_MONOTONIC, so a dispatcher can sleep on a
  // timerfd armed at an absolute deadline. Simulated time must not: its
  // deadlines are not the kernel's.
  virtual bool IsSystemMonotonic() const { return false; }
};

// The process's monotonic clock. Stateless; Get() is a shared instance
// that is never destroyed: a dispatcher thread still running while the
// process exits reads the time through it, and a destroyed instance would
// leave it calling a pure virtual method.
class RealTimeSource final : public TimeSource {
 public:
  MonoTime Now() const override { return MonoClock::now(); }
  bool IsSystemMonotonic() const override { return true; }
  static RealTimeSource* Get() {
    static RealTimeSource* const source = new RealTimeSource();
    return source;
  }
};

// Time that moves only when a test says so. Any thread may read it and
// move it (an atomic), e.g. a test thread advancing time for a dispatcher
// it runs itself.
class SimulatedTimeSource final : public TimeSource {
 public:
  // Starts at a non-zero point so "unset" MonoTime{} is always in the past.
  explicit SimulatedTimeSource(MonoTime start = MonoTime(std::chrono::seconds(1000)))
      : now_ns_(start.time_since_epoch().count()) {}
  MonoTime Now() const override { return MonoTime(Nanos(now_ns_.load())); }
  void Advance(Nanos by) { now_ns_.fetch_add(by.count()); }
  void Set(MonoTime to) { now_ns_.store(to.time_since_epoch().count()); }

 private:
  std::atomic<int64_t> now_ns_;
};

}  // namespace audiosocket::event

#endif  // AUDIOSOCKET_BRIDGE_LIB_EVENT_TIME_SOURCE_H_
