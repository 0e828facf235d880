#ifndef AUDIOSOCKET_BRIDGE_SERVER_OPS_PROCESS_METRICS_H_
#define AUDIOSOCKET_BRIDGE_SERVER_OPS_PROCESS_METRICS_H_

// The process's own figures, read at scrape time: the standard Prometheus
// process_* metrics that other client libraries export by default (resident
// memory, open descriptors, CPU seconds, start time) and glibc's heap
// accounting. The heap pair tells a leak (in-use grows) from memory the
// allocator keeps for reuse (free grows, in-use flat) when RSS rises.
//
// Thread-safe: Collect reads /proc/self and mallinfo2, no state of its own.

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

namespace audiosocket {

class ProcessCollector final : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_OPS_PROCESS_METRICS_H_
