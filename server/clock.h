#ifndef AUDIOSOCKET_BRIDGE_SERVER_CLOCK_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CLOCK_H_

// Monotonic time for pacing and timeouts. Wall-clock time (absl::Now) is
// only for logs and timestamps shown to users.

#include <chrono>

namespace audiosocket {

using MonoClock = std::chrono::steady_clock;
using MonoTime = MonoClock::time_point;
using Nanos = std::chrono::nanoseconds;

// A seam so pacing logic can be tested without sleeping.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual MonoTime Now() const = 0;
};

class RealClock final : public Clock {
 public:
  MonoTime Now() const override { return MonoClock::now(); }
  static RealClock* Get() {
    static RealClock clock;
    return &clock;
  }
};

// Time moves only when the test says so. Not thread-safe.
class FakeClock final : public Clock {
 public:
  MonoTime Now() const override { return now_; }
  void Advance(Nanos d) { now_ += d; }
  void Set(MonoTime t) { now_ = t; }

 private:
  MonoTime now_{std::chrono::seconds(1000)};
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CLOCK_H_
