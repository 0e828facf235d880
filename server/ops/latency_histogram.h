#ifndef AUDIOSOCKET_BRIDGE_SERVER_OPS_LATENCY_HISTOGRAM_H_
#define AUDIOSOCKET_BRIDGE_SERVER_OPS_LATENCY_HISTOGRAM_H_

// A histogram of durations that any thread observes without taking a lock.
// Every caller frame of every call is observed in one (the time from being
// queued for the backend to gRPC taking it); prometheus-cpp's Histogram
// takes a mutex per observation, which made it one lock shared by all calls
// on the per-frame path. Here the counts are relaxed atomics kept in
// shards a cache line apart, each thread writing the shard it was given on
// its first observation, so threads on different cores rarely touch the same
// line; a scrape sums the shards.
//
// A read racing observations may count an observation in its bucket but
// not yet in the sum (or the reverse); the next read is exact. Prometheus
// tolerates that, as it does for its own client libraries' lock-free
// histograms.
//
// Thread-safe: Observe and Read from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace audiosocket {

class LatencyHistogram {
 public:
  // `bounds`: the buckets' upper bounds in seconds, ascending; a last
  // bucket (+Inf) holds everything above them.
  explicit LatencyHistogram(std::vector<double> bounds);

  void Observe(double seconds);
  // The same for a duration, on the per-frame paths: integer compares and
  // sums, no conversion to seconds and back.
  void Observe(std::chrono::nanoseconds elapsed);

  struct Snapshot {
    std::vector<uint64_t> counts;  // per bucket, not cumulative; the last is +Inf
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  Snapshot Read() const;

  const std::vector<double>& bounds() const { return bounds_; }

 private:
  static constexpr int kShards = 8;
  // One cache line of counters. A shard is the bucket counts then the sum
  // in nanoseconds, rounded up to whole lines.
  struct alignas(64) Line {
    std::atomic<uint64_t> slots[8] = {};
  };
  std::atomic<uint64_t>& Slot(int shard, size_t index) const {
    return lines_[static_cast<size_t>(shard) * lines_per_shard_ + index / 8].slots[index % 8];
  }

  const std::vector<double> bounds_;
  const std::vector<int64_t> bounds_ns_;  // bounds_ in nanoseconds, rounded
  const size_t sum_slot_;                 // after the buckets, +Inf included
  const size_t lines_per_shard_;
  const std::unique_ptr<Line[]> lines_;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_OPS_LATENCY_HISTOGRAM_H_
