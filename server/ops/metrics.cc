#include "server/ops/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <cctype>
#include <exception>
#include <limits>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/net/net.h"
#include "server/ops/metric_family.h"
#include "server/ops/mutex_waits.h"

namespace audiosocket {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

using metrics::Add;
using metrics::Family;

std::string ReasonLabel(int reason) {
  std::string name = bridge::v1::CallEndReason_Name(static_cast<bridge::v1::CallEndReason>(reason));
  constexpr absl::string_view kPrefix = "CALL_END_REASON_";
  if (absl::StartsWith(name, kPrefix)) name = name.substr(kPrefix.size());
  return absl::AsciiStrToLower(name);
}

std::vector<double> LatencyBuckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,     2.5,   5,    10};
}

}  // namespace

// Reads the counters at scrape time, summed over the loops.
class Metrics::CounterCollector final : public prometheus::Collectable {
 public:
  CounterCollector(CounterSet counters, const ClaimDispatcher* dispatcher)
      : c_(std::move(counters)), dispatcher_(dispatcher) {}

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> out;
    const auto counter = [&](const std::string& name, const std::string& help, double value) {
      MetricFamily f = Family(name, help, MetricType::Counter);
      Add(&f, value);
      out.push_back(std::move(f));
    };
    MetricFamily active =
        Family("audiosocket_bridge_active_calls",
               "Calls in progress (UUID received, not yet ended).", MetricType::Gauge);
    Add(&active, static_cast<double>(c_.Sum(&BridgeCounters::active_calls)));
    out.push_back(std::move(active));
    MetricFamily connections =
        Family("audiosocket_bridge_open_connections",
               "AudioSocket connections open, calls or not yet.", MetricType::Gauge);
    Add(&connections, static_cast<double>(c_.Sum(&BridgeCounters::open_connections)));
    out.push_back(std::move(connections));
    counter("audiosocket_bridge_connections_accepted_total", "AudioSocket connections accepted.",
            c_.Sum(&BridgeCounters::connections_accepted));
    MetricFamily rejected = Family(
        "audiosocket_bridge_connections_rejected_total",
        "Connections closed before becoming a call, by reason (with calls_started_total, one "
        "outcome per accepted connection).",
        MetricType::Counter);
    Add(&rejected, c_.Sum(&BridgeCounters::connections_rejected_uuid_timeout),
        {{"reason", "uuid_timeout"}});
    Add(&rejected, c_.Sum(&BridgeCounters::connections_rejected_limit), {{"reason", "call_limit"}});
    Add(&rejected, c_.Sum(&BridgeCounters::connections_rejected_allowlist),
        {{"reason", "allowlist"}});
    Add(&rejected, c_.Sum(&BridgeCounters::connections_rejected_protocol),
        {{"reason", "protocol_error"}});
    Add(&rejected, c_.Sum(&BridgeCounters::connections_rejected_draining),
        {{"reason", "draining"}});
    Add(&rejected, c_.Sum(&BridgeCounters::connections_rejected_caller_closed),
        {{"reason", "caller_closed"}});
    Add(&rejected, c_.Sum(&BridgeCounters::connections_rejected_shutdown),
        {{"reason", "shutdown"}});
    Add(&rejected, c_.Sum(&BridgeCounters::connections_rejected_internal),
        {{"reason", "internal_error"}});
    out.push_back(std::move(rejected));
    counter("audiosocket_bridge_calls_started_total", "Calls started (UUID received).",
            c_.Sum(&BridgeCounters::calls_started));
    MetricFamily ended = Family("audiosocket_bridge_calls_ended_total", "Calls ended, by reason.",
                                MetricType::Counter);
    for (int reason = 1; reason < BridgeCounters::kReasons; ++reason) {
      Add(&ended, c_.EndedFor(reason), {{"reason", ReasonLabel(reason)}});
    }
    out.push_back(std::move(ended));
    MetricFamily frames =
        Family("audiosocket_bridge_frames_total", "Audio frames, by direction (in: from Asterisk).",
               MetricType::Counter);
    Add(&frames, c_.Sum(&BridgeCounters::frames_in), {{"direction", "in"}});
    Add(&frames, c_.Sum(&BridgeCounters::frames_out), {{"direction", "out"}});
    out.push_back(std::move(frames));
    MetricFamily bytes = Family("audiosocket_bridge_bytes_total",
                                "AudioSocket bytes, by direction.", MetricType::Counter);
    Add(&bytes, c_.Sum(&BridgeCounters::bytes_in), {{"direction", "in"}});
    Add(&bytes, c_.Sum(&BridgeCounters::bytes_out), {{"direction", "out"}});
    out.push_back(std::move(bytes));
    MetricFamily dropped = Family(
        "audiosocket_bridge_dropped_frames_total",
        "Audio frames dropped: in, caller audio a slow backend missed; out, frames Asterisk did "
        "not read in time.",
        MetricType::Counter);
    Add(&dropped, c_.Sum(&BridgeCounters::inbound_dropped_frames), {{"direction", "in"}});
    Add(&dropped, c_.Sum(&BridgeCounters::outbound_dropped_frames), {{"direction", "out"}});
    out.push_back(std::move(dropped));
    counter("audiosocket_bridge_silence_frames_total",
            "Silence frames sent because nothing was queued.",
            c_.Sum(&BridgeCounters::silence_frames_out));
    counter("audiosocket_bridge_playout_underruns_total",
            "Times a response's audio ran dry while it was playing.",
            c_.Sum(&BridgeCounters::playout_underruns));
    counter("audiosocket_bridge_playout_late_ticks_total",
            "Playout ticks more than one frame late (frames skipped, never burst).",
            c_.Sum(&BridgeCounters::playout_late_ticks));
    counter("audiosocket_bridge_protocol_errors_total",
            "Malformed input from the AudioSocket side.", c_.Sum(&BridgeCounters::protocol_errors));
    MetricFamily backend = Family("audiosocket_bridge_backend_failures_total",
                                  "Push mode: backend streams that failed before accept, and "
                                  "rejects.",
                                  MetricType::Counter);
    Add(&backend, c_.Sum(&BridgeCounters::backend_connect_failures), {{"kind", "connect"}});
    Add(&backend, c_.Sum(&BridgeCounters::backend_rejects), {{"kind", "reject"}});
    out.push_back(std::move(backend));
    counter("audiosocket_bridge_command_errors_total", "Backend commands answered with an error.",
            c_.Sum(&BridgeCounters::command_errors));
    counter("audiosocket_bridge_mutex_waits_total",
            "Lock contention: absl::Mutex releases that woke a thread put to sleep waiting for "
            "the lock (the bridge's own locks and gRPC's). Grows with traffic only if a lock is "
            "shared on the per-frame path.",
            static_cast<double>(mutex_waits::Count()));
    MetricFamily pull = Family("audiosocket_bridge_pull_streams",
                               "Pull mode: ClaimCall streams open.", MetricType::Gauge);
    Add(&pull, static_cast<double>(c_.Sum(&BridgeCounters::pull_streams)));
    out.push_back(std::move(pull));
    MetricFamily idle =
        Family("audiosocket_bridge_idle_pull_slots",
               "Pull mode: open ClaimCall streams waiting for a call.", MetricType::Gauge);
    Add(&idle, static_cast<double>(dispatcher_->idle_slots()));
    out.push_back(std::move(idle));
    MetricFamily waiting = Family("audiosocket_bridge_waiting_calls",
                                  "Pull mode: calls waiting for a worker.", MetricType::Gauge);
    Add(&waiting, static_cast<double>(dispatcher_->waiting_calls()));
    out.push_back(std::move(waiting));
    counter("audiosocket_bridge_pull_streams_rejected_total",
            "ClaimCall streams refused: over --max_pull_streams or a bad token.",
            c_.Sum(&BridgeCounters::pull_streams_rejected));
    counter("audiosocket_bridge_pull_stream_errors_total",
            "ClaimCall streams ended for what the worker sent: a message that does not parse or "
            "inflate, or a first message that is not a claim.",
            c_.Sum(&BridgeCounters::pull_stream_errors));
    return out;
  }

 private:
  const CounterSet c_;
  const ClaimDispatcher* dispatcher_;
};

// Reads the latency histograms at scrape time.
class Metrics::HistogramCollector final : public prometheus::Collectable {
 public:
  struct Entry {
    std::string name;
    std::string help;
    std::shared_ptr<const LatencyHistogram> histogram;
  };
  explicit HistogramCollector(std::vector<Entry> entries) : entries_(std::move(entries)) {}

  std::vector<MetricFamily> Collect() const override {
    std::vector<MetricFamily> out;
    for (const Entry& entry : entries_) {
      MetricFamily family = Family(entry.name, entry.help, MetricType::Histogram);
      const LatencyHistogram::Snapshot snapshot = entry.histogram->Read();
      ClientMetric metric;
      metric.histogram.sample_count = snapshot.count;
      metric.histogram.sample_sum = snapshot.sum_seconds;
      uint64_t cumulative = 0;
      const std::vector<double>& bounds = entry.histogram->bounds();
      for (size_t b = 0; b < snapshot.counts.size(); ++b) {
        cumulative += snapshot.counts[b];
        ClientMetric::Bucket bucket;
        bucket.cumulative_count = cumulative;
        bucket.upper_bound =
            b < bounds.size() ? bounds[b] : std::numeric_limits<double>::infinity();
        metric.histogram.bucket.push_back(bucket);
      }
      family.metric.push_back(std::move(metric));
      out.push_back(std::move(family));
    }
    return out;
  }

 private:
  const std::vector<Entry> entries_;
};

Metrics::Metrics(CounterSet counters, const ClaimDispatcher* dispatcher)
    : collector_(std::make_shared<CounterCollector>(std::move(counters), dispatcher)),
      accept_latency_(std::make_shared<LatencyHistogram>(LatencyBuckets())),
      inbound_latency_(std::make_shared<LatencyHistogram>(LatencyBuckets())),
      tick_lateness_(std::make_shared<LatencyHistogram>(LatencyBuckets())),
      loop_rounds_(std::make_shared<LatencyHistogram>(LatencyBuckets())),
      histograms_(std::make_shared<HistogramCollector>(std::vector<HistogramCollector::Entry>{
          {"audiosocket_bridge_accept_latency_seconds",
           "Time from the UUID to a backend's accept (push) or claim (pull).", accept_latency_},
          {"audiosocket_bridge_inbound_to_backend_latency_seconds",
           "Time from a caller frame being queued for the backend to gRPC taking it.",
           inbound_latency_},
          {"audiosocket_bridge_playout_tick_lateness_seconds",
           "How long after its deadline each playout tick ran: the pacing of frames toward "
           "Asterisk, before the network.",
           tick_lateness_},
          {"audiosocket_bridge_loop_round_seconds",
           "How long each round of an I/O loop took, from its wake-up to its last task (wall "
           "time, including any time the machine did not run the loop): how busy the loops "
           "are. A late playout tick waited for a long round, or, when no round was long, "
           "for a loop that was not woken on time.",
           loop_rounds_}})) {
  mutex_waits::Install();  // for audiosocket_bridge_mutex_waits_total
}

Metrics::~Metrics() = default;

namespace {

// Why `address` cannot be served, in the operating system's words ("bind
// 127.0.0.1:9090: Address already in use"), found by binding it ourselves:
// prometheus-cpp only says "null context when constructing CivetServer".
// `fallback` when our own bind works (the failure was something else).
std::string BindFailure(const std::string& address, absl::string_view fallback) {
  absl::StatusOr<net::HostPort> host_port = net::ParseHostPort(address);
  if (!host_port.ok()) return std::string(host_port.status().message());
  absl::StatusOr<net::SocketAddress> resolved = net::Resolve(*host_port);
  if (!resolved.ok()) return std::string(resolved.status().message());
  absl::StatusOr<int> fd = net::ListenTcp(*resolved);
  if (!fd.ok()) return std::string(fd.status().message());
  ::close(*fd);
  return std::string(fallback);
}

}  // namespace

absl::Status Metrics::Serve(const std::string& address) {
  // The exporter's threads are started by a thread of the normal policy
  // and inherit it. Run under `chrt --fifo` (docs/OPERATIONS.md), they would
  // otherwise inherit the I/O loops' real-time priority, and a loop that
  // never sleeps (a saturated core) would leave them no time at all: the
  // scrape would hang. At the normal policy they never take time from the
  // loops, and the kernel still keeps some for them (sched_rt_runtime_us).
  std::string failure;
  std::thread starter([&] {
    sched_param normal{};
    normal.sched_priority = 0;
    pthread_setschedparam(pthread_self(), SCHED_OTHER, &normal);  // lowering needs no privilege
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(address, 2);
    } catch (const std::exception& e) {
      // prometheus-cpp reports a failed bind by throwing; keep it inside.
      failure = e.what();
    }
  });
  starter.join();
  if (exposer_ == nullptr) {
    // Named as it was given, with the real cause.
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on --metrics_listen=", address,
                                               ": ", BindFailure(address, failure)));
  }
  exposer_->RegisterCollectable(histograms_);
  exposer_->RegisterCollectable(collector_);
  exposer_->RegisterCollectable(process_);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  port_ = ports.empty() ? 0 : ports[0];
  return absl::OkStatus();
}

}  // namespace audiosocket
