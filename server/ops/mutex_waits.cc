#include "server/ops/mutex_waits.h"

#include <atomic>

#include "absl/base/call_once.h"
#include "absl/synchronization/mutex.h"

namespace audiosocket::mutex_waits {
namespace {

// Written only on contention, which is rare by design: one shared line is
// cheaper here than per-thread shards.
std::atomic<uint64_t> waits{0};

// Abseil passes a wait time whose meaning has changed between its
// releases; only the event is used.
void OnContendedRelease(int64_t /*wait*/) { waits.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

void Install() {
  static absl::once_flag once;
  absl::call_once(once, [] { absl::RegisterMutexProfiler(&OnContendedRelease); });
}

uint64_t Count() { return waits.load(std::memory_order_relaxed); }

}  // namespace audiosocket::mutex_waits
