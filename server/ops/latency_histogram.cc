#include "server/ops/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace audiosocket {
namespace {

// Each thread's shard: threads take the next one in turn on their first
// observation, so a loop's thread and gRPC's few threads spread out.
int ThreadShard(int shards) {
  static std::atomic<unsigned> next{0};
  thread_local const unsigned mine = next.fetch_add(1, std::memory_order_relaxed);
  return static_cast<int>(mine % static_cast<unsigned>(shards));
}

std::vector<int64_t> InNanoseconds(const std::vector<double>& seconds) {
  std::vector<int64_t> out;
  out.reserve(seconds.size());
  for (double s : seconds) out.push_back(std::llround(s * 1e9));
  return out;
}

}  // namespace

LatencyHistogram::LatencyHistogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      bounds_ns_(InNanoseconds(bounds_)),
      sum_slot_(bounds_.size() + 1),
      lines_per_shard_((sum_slot_ + 1 + 7) / 8),
      lines_(new Line[kShards * lines_per_shard_]) {}

void LatencyHistogram::Observe(double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // a clock step or NaN counts as no delay
  seconds = std::min(seconds, 1e9);  // in range of int64 nanoseconds
  Observe(std::chrono::nanoseconds(std::llround(seconds * 1e9)));
}

void LatencyHistogram::Observe(std::chrono::nanoseconds elapsed) {
  const int64_t ns = std::max<int64_t>(elapsed.count(), 0);  // a clock step: no delay
  // Prometheus buckets are "less than or equal": a value on a bound belongs
  // to that bound's bucket.
  const size_t bucket =
      std::lower_bound(bounds_ns_.begin(), bounds_ns_.end(), ns) - bounds_ns_.begin();
  const int shard = ThreadShard(kShards);
  Slot(shard, bucket).fetch_add(1, std::memory_order_relaxed);
  Slot(shard, sum_slot_).fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
}

LatencyHistogram::Snapshot LatencyHistogram::Read() const {
  Snapshot out;
  out.counts.assign(bounds_.size() + 1, 0);
  uint64_t sum_nanoseconds = 0;
  for (int s = 0; s < kShards; ++s) {
    for (size_t b = 0; b < out.counts.size(); ++b) {
      out.counts[b] += Slot(s, b).load(std::memory_order_relaxed);
    }
    sum_nanoseconds += Slot(s, sum_slot_).load(std::memory_order_relaxed);
  }
  for (uint64_t c : out.counts) out.count += c;
  out.sum_seconds = static_cast<double>(sum_nanoseconds) / 1e9;
  return out;
}

}  // namespace audiosocket
