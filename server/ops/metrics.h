#ifndef AUDIOSOCKET_BRIDGE_SERVER_OPS_METRICS_H_
#define AUDIOSOCKET_BRIDGE_SERVER_OPS_METRICS_H_

// Prometheus metrics on an HTTP port (prometheus-cpp's exposer). Counters
// live in BridgeCounters as atomics (one per event loop) and are summed at
// scrape time; the latency histograms are LatencyHistograms, observed
// from any thread without a lock and read at scrape time.
// docs/OPERATIONS.md lists every metric.

#include <prometheus/exposer.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "server/backend/claim_dispatcher.h"
#include "server/ops/counters.h"
#include "server/ops/latency_histogram.h"
#include "server/ops/process_metrics.h"

namespace audiosocket {

class Metrics {
 public:
  Metrics(CounterSet counters, const ClaimDispatcher* dispatcher);
  ~Metrics();

  // Serves /metrics on `address` ("host:port"; port 0 picks one).
  absl::Status Serve(const std::string& address);
  int port() const { return port_; }

  // Seconds from the UUID to the backend's accept or claim.
  LatencyHistogram& accept_latency() { return *accept_latency_; }
  // Seconds from a caller frame being handed to the backend stream to gRPC
  // taking it (queueing plus flow control).
  LatencyHistogram& inbound_latency() { return *inbound_latency_; }
  // Seconds each playout tick ran after its deadline.
  LatencyHistogram& tick_lateness() { return *tick_lateness_; }
  // Seconds each round of an I/O loop took, from its wake-up to its last
  // task.
  LatencyHistogram& loop_rounds() { return *loop_rounds_; }

 private:
  class CounterCollector;
  class HistogramCollector;

  std::shared_ptr<ProcessCollector> process_ = std::make_shared<ProcessCollector>();
  std::shared_ptr<CounterCollector> collector_;
  // Shared with the collector, which reads them at scrape time.
  std::shared_ptr<LatencyHistogram> accept_latency_;
  std::shared_ptr<LatencyHistogram> inbound_latency_;
  std::shared_ptr<LatencyHistogram> tick_lateness_;
  std::shared_ptr<LatencyHistogram> loop_rounds_;
  std::shared_ptr<HistogramCollector> histograms_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_OPS_METRICS_H_
