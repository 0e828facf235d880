#include "bench/echo_backend/echo_stats.h"

#include <chrono>

#include "lib/event/time_source.h"

namespace audiosocket::echo_backend {

Stats g_stats;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             event::RealTimeSource::Get()->Now().time_since_epoch())
      .count();
}

int64_t ReadStamp(const std::string& pcm) {
  if (pcm.size() < 2 * 96) return 0;
  uint64_t bits = 0;
  for (size_t i = 0; i < 64; ++i) {
    bits |= static_cast<uint64_t>(static_cast<uint8_t>(pcm[2 * (32 + i)]) & 1) << i;
  }
  return static_cast<int64_t>(bits);
}

void LatencyHistogram::Add(int64_t nanos) {
  const size_t b = static_cast<size_t>(nanos / kBucketNanos);
  buckets_[b < kBuckets ? b : kBuckets].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  int64_t m = max_.load(std::memory_order_relaxed);
  while (nanos > m && !max_.compare_exchange_weak(m, nanos, std::memory_order_relaxed)) {
  }
}

double LatencyHistogram::PercentileMs(double q) const {
  const uint64_t n = count_.load();
  if (n == 0) return 0;
  const uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(n - 1)) + 1;
  uint64_t seen = 0;
  for (size_t b = 0; b <= kBuckets; ++b) {
    seen += buckets_[b].load();
    if (seen >= rank) return static_cast<double>((b + 1) * kBucketNanos) / 1e6;
  }
  return max_ms();
}

void OnAudio(const bridge::v1::AudioChunk& audio, uint64_t* next_offset,
             bridge::v1::CallCommand* echo) {
  const int64_t now = NowNanos();
  g_stats.chunks.fetch_add(1, std::memory_order_relaxed);
  const int64_t stamp = ReadStamp(audio.pcm());
  if (stamp > 0 && now >= stamp && now - stamp < 10'000'000'000) {
    g_stats.latency.Add(now - stamp);
  } else {
    g_stats.unstamped.fetch_add(1, std::memory_order_relaxed);
  }
  if (audio.offset_samples() > *next_offset) {
    g_stats.gap_samples.fetch_add(audio.offset_samples() - *next_offset, std::memory_order_relaxed);
  }
  *next_offset = audio.offset_samples() + audio.pcm().size() / 2;
  if (echo != nullptr) echo->mutable_play()->set_pcm(audio.pcm());
}

}  // namespace audiosocket::echo_backend
