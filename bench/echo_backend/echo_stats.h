#ifndef AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_ECHO_STATS_H_
#define AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_ECHO_STATS_H_

// What echo-backend measures of the caller audio it receives, shared by its
// gRPC C++ reactors and its event-loop worker (loop_slots.h): chunk and
// call counts, gaps in offset_samples, and the latency from
// audiosocket-call's send stamp to this process receiving the chunk.
//
// Thread-safety: atomics only; any thread.

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "proto/audiosocket/bridge/v1/bridge.pb.h"

namespace audiosocket::echo_backend {

// The monotonic clock audiosocket-call stamps its frames with, in ns.
int64_t NowNanos();

// The stamp audiosocket-call --stamp_frames writes; 0 when too short.
int64_t ReadStamp(const std::string& pcm);

// Latency histogram: 10 us buckets up to 100 ms, then one overflow bucket.
class LatencyHistogram {
 public:
  static constexpr int64_t kBucketNanos = 10000;
  static constexpr size_t kBuckets = 10000;

  void Add(int64_t nanos);
  uint64_t count() const { return count_.load(); }
  double max_ms() const { return static_cast<double>(max_.load()) / 1e6; }
  // Upper edge of the bucket holding quantile q, in ms.
  double PercentileMs(double q) const;

 private:
  std::array<std::atomic<uint64_t>, kBuckets + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> max_{0};
};

struct Stats {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> calls_ended{0};
  std::atomic<uint64_t> chunks{0};
  std::atomic<uint64_t> gap_samples{0};  // offset jumps: audio the bridge dropped
  std::atomic<uint64_t> unstamped{0};
  std::atomic<uint64_t> streams_failed{0};
  // Events other than audio (playout notices, results, marks...): the
  // messages per frame beyond the audio itself.
  std::atomic<uint64_t> other_events{0};
  LatencyHistogram latency;
};

// The process's figures, printed when it stops.
extern Stats g_stats;

// Per-call receive logic shared by every mode: counts `audio` and its
// latency and gap (`next_offset` is the call's, advanced here), and fills
// the PlayAudio echo unless `echo` is null.
void OnAudio(const bridge::v1::AudioChunk& audio, uint64_t* next_offset,
             bridge::v1::CallCommand* echo);

}  // namespace audiosocket::echo_backend

#endif  // AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_ECHO_STATS_H_
