#ifndef AUDIOSOCKET_BRIDGE_SERVER_OPS_MUTEX_WAITS_H_
#define AUDIOSOCKET_BRIDGE_SERVER_OPS_MUTEX_WAITS_H_

// Counts lock contention in the process: every absl::Mutex release that
// woke a thread put to sleep waiting for the lock (Abseil's profiler hook),
// which covers the bridge's own locks and any library's built on
// absl::Mutex. A lock shared by all calls on the per-frame path shows here
// as waits growing with calls and loops; on the path as built there is
// none. Contention resolved by spinning, without a sleep, is not counted.
//
// Thread-safe. Process-wide: the hook is global, so the counts are too.

#include <cstdint>

namespace audiosocket::mutex_waits {

// Registers the hook; later calls do nothing. Counting starts here.
void Install();

// Waits so far.
uint64_t Count();

}  // namespace audiosocket::mutex_waits

#endif  // AUDIOSOCKET_BRIDGE_SERVER_OPS_MUTEX_WAITS_H_
