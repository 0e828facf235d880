#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_CLOCK_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_CLOCK_H_

// Time for the call engine: integer nanoseconds on a monotonic clock, and a
// Clock seam so that pacing is tested with a fake clock instead of sleeps.

#include <time.h>

#include <cstdint>

#include "absl/time/time.h"

namespace audiosocket::call {

// Nanoseconds since an arbitrary epoch (CLOCK_MONOTONIC for the real clock).
using Nanos = int64_t;
inline constexpr Nanos kMicrosecond = 1000;
inline constexpr Nanos kMillisecond = 1000 * kMicrosecond;
inline constexpr Nanos kSecond = 1000 * kMillisecond;

inline Nanos ToNanos(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }
inline double ToMillis(Nanos n) { return static_cast<double>(n) / kMillisecond; }

// Thread-safety: implementations are safe to call from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual Nanos Now() const = 0;
  // True when Now() reads CLOCK_MONOTONIC, so deadlines can arm a timerfd.
  virtual bool IsSystemMonotonic() const { return false; }
};

// CLOCK_MONOTONIC: never jumps with wall-clock changes.
class MonotonicClock final : public Clock {
 public:
  Nanos Now() const override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<Nanos>(ts.tv_sec) * kSecond + ts.tv_nsec;
  }
  bool IsSystemMonotonic() const override { return true; }
};

// A clock that moves only when told. Single-threaded use (the test thread that
// also runs the event loop).
class FakeClock final : public Clock {
 public:
  explicit FakeClock(Nanos start = kSecond) : now_(start) {}
  Nanos Now() const override { return now_; }
  void Set(Nanos now) { now_ = now; }
  void Advance(Nanos by) { now_ += by; }

 private:
  Nanos now_;
};

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_CLOCK_H_
