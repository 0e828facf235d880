#include "server/ops/latency_histogram.h"

#include <limits>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket {
namespace {

using ::testing::ElementsAre;

TEST(LatencyHistogramTest, EachValueLandsInTheFirstBucketWhoseBoundHoldsIt) {
  LatencyHistogram histogram({0.001, 0.01, 0.1});
  histogram.Observe(0.0005);
  histogram.Observe(0.001);  // on a bound: that bound's bucket ("le")
  histogram.Observe(0.002);
  histogram.Observe(0.05);
  histogram.Observe(0.1);
  histogram.Observe(3);
  const LatencyHistogram::Snapshot s = histogram.Read();
  EXPECT_THAT(s.counts, ElementsAre(2, 1, 2, 1));
  EXPECT_EQ(s.count, 6u);
  EXPECT_NEAR(s.sum_seconds, 3.1535, 1e-9);
}

TEST(LatencyHistogramTest, NegativeAndNanCountAsNoDelay) {
  LatencyHistogram histogram({0.001});
  histogram.Observe(-0.5);
  histogram.Observe(std::numeric_limits<double>::quiet_NaN());
  const LatencyHistogram::Snapshot s = histogram.Read();
  EXPECT_THAT(s.counts, ElementsAre(2, 0));
  EXPECT_EQ(s.sum_seconds, 0);
}

TEST(LatencyHistogramTest, DurationsLandWhereTheSameSecondsDo) {
  using std::chrono::microseconds;
  using std::chrono::nanoseconds;
  LatencyHistogram histogram({0.001, 0.01, 0.1});
  histogram.Observe(microseconds(500));
  histogram.Observe(microseconds(1000));  // on a bound: that bound's bucket
  histogram.Observe(nanoseconds(1000001));
  histogram.Observe(microseconds(100000));
  histogram.Observe(nanoseconds(-7));  // a clock step: no delay
  histogram.Observe(std::chrono::seconds(3));
  const LatencyHistogram::Snapshot s = histogram.Read();
  EXPECT_THAT(s.counts, ElementsAre(3, 1, 1, 1));
  EXPECT_EQ(s.count, 6u);
  EXPECT_NEAR(s.sum_seconds, 3.102500001, 1e-12);
}

TEST(LatencyHistogramTest, AnInfiniteDelayIsCountedAboveTheLastBound) {
  LatencyHistogram histogram({0.001});
  histogram.Observe(std::numeric_limits<double>::infinity());
  EXPECT_THAT(histogram.Read().counts, ElementsAre(0, 1));
}

TEST(LatencyHistogramTest, ManyBoundsSpanSeveralCacheLines) {
  std::vector<double> bounds;
  for (int i = 1; i <= 40; ++i) bounds.push_back(i);
  LatencyHistogram histogram(bounds);
  for (int i = 0; i <= 41; ++i) histogram.Observe(i);
  const LatencyHistogram::Snapshot s = histogram.Read();
  ASSERT_EQ(s.counts.size(), 41u);
  EXPECT_EQ(s.counts[0], 2u);   // 0 and 1
  EXPECT_EQ(s.counts[39], 1u);  // 40
  EXPECT_EQ(s.counts[40], 1u);  // 41: +Inf
  EXPECT_EQ(s.count, 42u);
  EXPECT_NEAR(s.sum_seconds, 41 * 42 / 2, 1e-6);
}

// Observations from many threads at once are all counted (each thread
// writes its own shard; the read sums them).
TEST(LatencyHistogramTest, ObservationsFromManyThreadsAreAllCounted) {
  LatencyHistogram histogram({0.001, 0.01});
  constexpr int kThreads = 12;  // more than the shards: some share one
  constexpr int kEach = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&histogram, t] {
      for (int i = 0; i < kEach; ++i) histogram.Observe(t % 3 == 0 ? 0.0005 : 0.005);
    });
  }
  for (auto& t : threads) t.join();
  const LatencyHistogram::Snapshot s = histogram.Read();
  EXPECT_THAT(s.counts, ElementsAre(4 * kEach, 8 * kEach, 0));
  EXPECT_EQ(s.count, static_cast<uint64_t>(kThreads * kEach));
  EXPECT_NEAR(s.sum_seconds, kEach * (4 * 0.0005 + 8 * 0.005), 1e-6);
}

}  // namespace
}  // namespace audiosocket
