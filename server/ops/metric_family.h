#ifndef AUDIOSOCKET_BRIDGE_SERVER_OPS_METRIC_FAMILY_H_
#define AUDIOSOCKET_BRIDGE_SERVER_OPS_METRIC_FAMILY_H_

// Building prometheus-cpp metric families by hand, for collectors that read
// their values at scrape time (server/ops/metrics.cc, server/ops/process_metrics.cc).

#include <prometheus/metric_family.h>

#include <string>
#include <utility>
#include <vector>

namespace audiosocket::metrics {

inline prometheus::MetricFamily Family(const std::string& name, const std::string& help,
                                       prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  return family;
}

// Adds one sample: a counter or a gauge value, by the family's type.
inline void Add(prometheus::MetricFamily* family, double value,
                std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  if (family->type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family->metric.push_back(std::move(metric));
}

}  // namespace audiosocket::metrics

#endif  // AUDIOSOCKET_BRIDGE_SERVER_OPS_METRIC_FAMILY_H_
