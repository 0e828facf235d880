#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_COMMAND_BUDGET_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_COMMAND_BUDGET_H_

// Bounds the bytes of backend commands handed to a call's event loop and
// not yet acted on. A gRPC stream keeps reading while the loop works, so a
// backend sending faster than its call can act would otherwise queue
// without limit in the loop's posted tasks.
//
// Thread-safe: reserved on gRPC threads as commands arrive, released on
// the call's loop once each was handled.

#include <atomic>
#include <cstdint>

namespace audiosocket {

class CommandBudget {
 public:
  explicit CommandBudget(uint64_t max_bytes) : max_bytes_(max_bytes) {}

  // Reserves `bytes`. False, reserving nothing, when that would pass the
  // bound.
  bool TryReserve(uint64_t bytes) {
    uint64_t used = used_.load(std::memory_order_relaxed);
    do {
      if (bytes > max_bytes_ - used) return false;
    } while (!used_.compare_exchange_weak(used, used + bytes, std::memory_order_relaxed));
    return true;
  }
  void Release(uint64_t bytes) { used_.fetch_sub(bytes, std::memory_order_relaxed); }

  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t max_bytes() const { return max_bytes_; }

 private:
  const uint64_t max_bytes_;
  std::atomic<uint64_t> used_{0};
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_COMMAND_BUDGET_H_
