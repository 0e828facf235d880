#ifndef AUDIOSOCKET_BRIDGE_SERVER_OPS_COUNTERS_H_
#define AUDIOSOCKET_BRIDGE_SERVER_OPS_COUNTERS_H_

// The bridge's counters, updated lock-free and exported as Prometheus
// metrics (docs/OPERATIONS.md lists them). The bridge keeps one
// BridgeCounters per event loop, which only that loop's calls update (the
// per-frame counts of one loop never share a cache line with another's),
// and one for everything else (listeners, gRPC threads); a CounterSet sums
// them when read.

#include <atomic>
#include <cstdint>
#include <utility>
#include <vector>

#include "audiosocket/bridge/v1/bridge.pb.h"

namespace audiosocket {

struct BridgeCounters {
  static constexpr int kReasons = bridge::v1::CallEndReason_ARRAYSIZE;

  std::atomic<int64_t> active_calls{0};
  // Every connection accept() returned. Each ends in exactly one counted
  // outcome: calls_started, or one connections_rejected_* below, so at rest
  // accepted == calls_started + the sum of connections_rejected_*.
  std::atomic<uint64_t> connections_accepted{0};
  // Closed before becoming a call: no UUID in time, first message not a
  // UUID (or a bad or duplicate one), over the call limit, not on the
  // allowlist, arrived while draining, closed by the caller before its
  // UUID, open at shutdown before its UUID, or a failure of our own.
  std::atomic<uint64_t> connections_rejected_uuid_timeout{0};
  std::atomic<uint64_t> connections_rejected_limit{0};
  std::atomic<uint64_t> connections_rejected_allowlist{0};
  std::atomic<uint64_t> connections_rejected_protocol{0};
  std::atomic<uint64_t> connections_rejected_draining{0};
  std::atomic<uint64_t> connections_rejected_caller_closed{0};
  std::atomic<uint64_t> connections_rejected_shutdown{0};
  std::atomic<uint64_t> connections_rejected_internal{0};
  std::atomic<int64_t> open_connections{0};
  std::atomic<int64_t> pull_streams{0};
  std::atomic<uint64_t> pull_streams_rejected{0};
  // ClaimCall streams ended because of what the worker sent: a message
  // that does not parse or inflate, or a first message that is not a claim.
  std::atomic<uint64_t> pull_stream_errors{0};
  std::atomic<uint64_t> calls_started{0};
  std::atomic<uint64_t> calls_ended[kReasons] = {};
  std::atomic<uint64_t> protocol_errors{0};
  std::atomic<uint64_t> frames_in{0};
  std::atomic<uint64_t> bytes_in{0};
  std::atomic<uint64_t> frames_out{0};
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> silence_frames_out{0};
  std::atomic<uint64_t> inbound_dropped_samples{0};
  std::atomic<uint64_t> inbound_dropped_frames{0};
  std::atomic<uint64_t> outbound_dropped_frames{0};
  std::atomic<uint64_t> playout_underruns{0};
  std::atomic<uint64_t> playout_late_ticks{0};
  std::atomic<uint64_t> backend_connect_failures{0};
  std::atomic<uint64_t> backend_rejects{0};
  std::atomic<uint64_t> command_errors{0};
};

// Sums a field over several BridgeCounters. Thread-safe; the counters
// outlive the set.
class CounterSet {
 public:
  CounterSet() = default;
  explicit CounterSet(std::vector<const BridgeCounters*> members) : members_(std::move(members)) {}
  void Add(const BridgeCounters* counters) { members_.push_back(counters); }

  template <typename T>
  T Sum(const std::atomic<T> BridgeCounters::*field) const {
    T total = 0;
    for (const BridgeCounters* c : members_) total += (c->*field).load(std::memory_order_relaxed);
    return total;
  }
  uint64_t EndedFor(int reason) const {
    uint64_t total = 0;
    for (const BridgeCounters* c : members_) {
      total += c->calls_ended[reason].load(std::memory_order_relaxed);
    }
    return total;
  }

 private:
  std::vector<const BridgeCounters*> members_;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_OPS_COUNTERS_H_
