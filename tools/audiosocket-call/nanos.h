#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_NANOS_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_NANOS_H_

// The emulator's unit of time: integer nanoseconds on the dispatcher's
// monotonic time (lib/event). Options, schedules, statistics and the send
// times stamped into frames are all kept in it; ToNanos/ToMonoTime convert
// at the dispatcher and the pacer.
//
// Thread-safety: constants and pure functions.

#include <chrono>
#include <cstdint>

#include "absl/time/time.h"
#include "lib/event/time_source.h"

namespace audiosocket::call {

// Nanoseconds since the monotonic clock's epoch (CLOCK_MONOTONIC for real
// time), or a duration.
using Nanos = int64_t;
inline constexpr Nanos kMicrosecond = 1000;
inline constexpr Nanos kMillisecond = 1000 * kMicrosecond;
inline constexpr Nanos kSecond = 1000 * kMillisecond;

inline Nanos ToNanos(absl::Duration d) { return absl::ToInt64Nanoseconds(d); }
inline double ToMillis(Nanos n) { return static_cast<double>(n) / kMillisecond; }

inline Nanos ToNanos(event::MonoTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline event::MonoTime ToMonoTime(Nanos n) {
  return event::MonoTime(
      std::chrono::duration_cast<event::MonoClock::duration>(std::chrono::nanoseconds(n)));
}

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_NANOS_H_
