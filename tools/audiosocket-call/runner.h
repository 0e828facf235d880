#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_RUNNER_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_RUNNER_H_

// Runs N emulated calls on one event loop: starts them at the ramp rate
// (evenly or as Poisson arrivals, see arrivals.h),
// waits for all to end, and gathers the run-wide statistics and results.
//
// Thread-safety: single-threaded (the dispatcher thread). Ownership: the
// Runner owns its calls and the recorder; it borrows the dispatcher, whose
// time source is the run's clock (simulated in tests).

#include <memory>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/status/status.h"
#include "lib/event/epoll_dispatcher.h"
#include "tools/audiosocket-call/call.h"
#include "tools/audiosocket-call/nanos.h"
#include "tools/audiosocket-call/options.h"
#include "tools/audiosocket-call/summary.h"
#include "tools/audiosocket-call/wav.h"

namespace audiosocket::call {

class Runner final {
 public:
  // `config` must be validated (Validate) and its source loaded.
  Runner(const RunConfig& config, event::EpollDispatcher* dispatcher);
  ~Runner();

  // Schedules the calls' starts (the first starts now).
  void Start();
  // Runs the loop until every call has ended (or Interrupt()ed calls ended).
  void Run();
  // One dispatcher round; for tests in simulated time. `max_wait` bounds
  // the real wait for socket events.
  void Poll(Nanos max_wait) { loop_->RunOnce(std::chrono::nanoseconds(max_wait)); }
  // Ends all running calls as --end says and starts no more.
  void Interrupt();

  bool done() const { return finished_ == static_cast<int>(calls_.size()) && started_all_; }
  int finished() const { return finished_; }
  const Call& call(int i) const { return *calls_[static_cast<size_t>(i)]; }
  const RunStats& stats() const { return stats_; }
  std::vector<CallResult> Results() const;
  std::string SummaryJson(const std::vector<std::string>& run_errors) const;

 private:
  Nanos Now() const { return ToNanos(loop_->Now()); }
  void OnTimer();
  void StartDue();

  const RunConfig& config_;
  event::EpollDispatcher* loop_;
  RunStats stats_;
  WavWriter recorder_;
  absl::BitGen bitgen_;
  std::vector<std::unique_ptr<Call>> calls_;
  std::vector<Nanos> start_offsets_;  // since began_, one per call
  int next_to_start_ = 0;
  bool started_all_ = false;
  int finished_ = 0;
  Nanos began_ = 0;
  Nanos ended_ = 0;
  event::Dispatcher::TimerId timer_ = 0;
  bool timer_set_ = false;
};

// A random version 4 UUID.
wire::CallUuid RandomUuid(absl::BitGen& gen);

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_RUNNER_H_
