#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_STATS_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_STATS_H_

// Statistics for the call engine:
// - Histogram: a fixed-size log-linear histogram of durations (exact to the
//   microsecond below 4.096 ms, then 256 sub-buckets per power of two, i.e.
//   within 0.4%), so millions of samples from thousands of calls cost no
//   allocation and percentiles merge across calls.
// - EchoMatcher: round-trip latency measured by matching the content of
//   received frames against frames sent recently. Never guessed: a payload
//   sent more than once within the window is ambiguous and never matched.
//
// Thread-safety: value types with one owner (the event-loop thread).

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/types/span.h"
#include "tools/audiosocket-call/nanos.h"

namespace audiosocket::call {

class Histogram {
 public:
  Histogram();

  // Negative values count as 0.
  void Add(Nanos value);
  void Merge(const Histogram& other);

  uint64_t count() const { return count_; }
  Nanos max() const { return max_; }
  // The value below which a fraction `q` (0..1) of samples fall, to the
  // histogram's resolution; 0 when empty. q = 1 returns the exact max.
  Nanos Percentile(double q) const;

 private:
  static size_t BucketOf(uint64_t micros);
  static uint64_t LowerBoundOf(size_t bucket);

  std::vector<uint64_t> buckets_;
  uint64_t count_ = 0;
  Nanos max_ = 0;
};

class EchoMatcher {
 public:
  // Remembers `window` frames (e.g. 500 frames = 10 s of 20 ms frames).
  explicit EchoMatcher(size_t window = 500) : window_(window) {}

  void OnSent(absl::Span<const uint8_t> payload, Nanos at);
  // The round-trip time when `payload` matches exactly one frame sent within
  // the window (that frame is then forgotten, so a second echo of it does
  // not count); nullopt otherwise.
  std::optional<Nanos> OnReceived(absl::Span<const uint8_t> payload, Nanos at);

  uint64_t matched() const { return matched_; }
  // Received frames whose content was sent more than once in the window.
  uint64_t ambiguous() const { return ambiguous_; }

  static uint64_t HashOf(absl::Span<const uint8_t> payload);

 private:
  struct Sent {
    Nanos at = 0;
    uint32_t copies = 0;  // live copies of this content in the window
  };
  size_t window_;
  std::deque<uint64_t> order_;
  absl::flat_hash_map<uint64_t, Sent> sent_;
  uint64_t matched_ = 0;
  uint64_t ambiguous_ = 0;
};

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_STATS_H_
