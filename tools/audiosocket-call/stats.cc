#include "tools/audiosocket-call/stats.h"

#include <algorithm>
#include <bit>

#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"

namespace audiosocket::call {
namespace {

constexpr uint64_t kLinearLimit = 4096;  // microseconds kept exactly
constexpr int kSubBits = 8;              // 256 sub-buckets per power of two
constexpr int kLinearBits = 12;          // log2(kLinearLimit)
constexpr size_t kBuckets = kLinearLimit + (64 - kLinearBits) * (1u << kSubBits);

}  // namespace

Histogram::Histogram() : buckets_(kBuckets, 0) {}

size_t Histogram::BucketOf(uint64_t micros) {
  if (micros < kLinearLimit) return static_cast<size_t>(micros);
  const int exponent = 63 - std::countl_zero(micros);  // >= 12
  const uint64_t mantissa = (micros >> (exponent - kSubBits)) & ((1u << kSubBits) - 1);
  return kLinearLimit + static_cast<size_t>(exponent - kLinearBits) * (1u << kSubBits) +
         static_cast<size_t>(mantissa);
}

uint64_t Histogram::LowerBoundOf(size_t bucket) {
  if (bucket < kLinearLimit) return bucket;
  const size_t offset = bucket - kLinearLimit;
  const int exponent = static_cast<int>(offset >> kSubBits) + kLinearBits;
  const uint64_t mantissa = offset & ((1u << kSubBits) - 1);
  return (uint64_t{1} << exponent) | (mantissa << (exponent - kSubBits));
}

void Histogram::Add(Nanos value) {
  if (value < 0) value = 0;
  ++buckets_[BucketOf(static_cast<uint64_t>(value) / kMicrosecond)];
  ++count_;
  max_ = std::max(max_, value);
}

void Histogram::Merge(const Histogram& other) {
  for (size_t i = 0; i < buckets_.size(); ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  max_ = std::max(max_, other.max_);
}

Nanos Histogram::Percentile(double q) const {
  if (count_ == 0) return 0;
  if (q >= 1.0) return max_;
  // The smallest value v with at least ceil(q * count) samples <= v.
  uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(count_));
  if (static_cast<double>(rank) < q * static_cast<double>(count_)) ++rank;
  rank = std::max<uint64_t>(rank, 1);
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) {
      return std::min<Nanos>(static_cast<Nanos>(LowerBoundOf(i)) * kMicrosecond, max_);
    }
  }
  return max_;
}

uint64_t EchoMatcher::HashOf(absl::Span<const uint8_t> payload) {
  // absl::Hash reads 8 bytes at a time; a byte-wise FNV-1a over every 320-byte
  // frame was a tenth of the load generator's CPU. Values differ between
  // processes, which is fine: sent and received frames are matched in one.
  return absl::Hash<absl::string_view>{}(
      absl::string_view(reinterpret_cast<const char*>(payload.data()), payload.size()));
}

void EchoMatcher::OnSent(absl::Span<const uint8_t> payload, Nanos at) {
  const uint64_t h = HashOf(payload);
  Sent& s = sent_[h];
  s.at = at;
  ++s.copies;
  order_.push_back(h);
  while (order_.size() > window_) {
    auto it = sent_.find(order_.front());
    order_.pop_front();
    if (it == sent_.end()) continue;
    if (it->second.copies <= 1) {
      sent_.erase(it);
    } else {
      --it->second.copies;
    }
  }
}

std::optional<Nanos> EchoMatcher::OnReceived(absl::Span<const uint8_t> payload, Nanos at) {
  auto it = sent_.find(HashOf(payload));
  if (it == sent_.end() || it->second.copies == 0) return std::nullopt;
  if (it->second.copies > 1) {
    ++ambiguous_;
    return std::nullopt;
  }
  const Nanos rtt = at - it->second.at;
  // Keep the entry (the window still counts it) but mark it consumed.
  it->second.copies = 0;
  ++matched_;
  return rtt;
}

}  // namespace audiosocket::call
