#ifndef AUDIOSOCKET_BRIDGE_SERVER_OPS_METRICS_H_
#define AUDIOSOCKET_BRIDGE_SERVER_OPS_METRICS_H_

// Prometheus metrics on an HTTP port (prometheus-cpp's exposer). Counters
// live in BridgeCounters as atomics (one per event loop) and are summed at
// scrape time; the two
// latency histograms are prometheus-cpp histograms, observed from any
// thread. docs/OPERATIONS.md lists every metric.

#include <prometheus/exposer.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "server/backend/claim_dispatcher.h"
#include "server/ops/counters.h"
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
  prometheus::Histogram& accept_latency() { return *accept_latency_; }
  // Seconds from a caller frame being handed to the backend stream to gRPC
  // taking it (queueing plus flow control).
  prometheus::Histogram& inbound_latency() { return *inbound_latency_; }

 private:
  class CounterCollector;

  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<ProcessCollector> process_ = std::make_shared<ProcessCollector>();
  std::shared_ptr<CounterCollector> collector_;
  prometheus::Histogram* accept_latency_ = nullptr;
  prometheus::Histogram* inbound_latency_ = nullptr;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_OPS_METRICS_H_
