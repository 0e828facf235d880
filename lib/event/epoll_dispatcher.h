#ifndef AUDIOSOCKET_BRIDGE_LIB_EVENT_EPOLL_DISPATCHER_H_
#define AUDIOSOCKET_BRIDGE_LIB_EVENT_EPOLL_DISPATCHER_H_

// The Dispatcher on Linux: epoll for descriptors, a timerfd armed at the
// earliest absolute deadline (nanosecond precision, unlike epoll_wait's
// millisecond timeout), and an eventfd that posted tasks wake it with.
//
// With simulated time the timerfd is not used: a test moves the time source
// and calls RunOnce(), which fires every timer due by then.
//
// Threads: Run() (or RunOnce) owns the calling thread, StartThread() a new
// one. Post() and Stop() may be called from any thread; every other method
// only from the dispatcher's thread, or before it starts. Ownership: the
// time source is borrowed and must outlive the dispatcher.

#include <sys/epoll.h>

#include <atomic>
#include <cstdint>
#include <queue>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "lib/event/dispatcher.h"
#include "lib/event/time_source.h"

namespace audiosocket::event {

class EpollDispatcher final : public Dispatcher {
 public:
  // Aborts if the kernel refuses an epoll, timerfd or eventfd descriptor:
  // a process without them cannot do anything useful.
  explicit EpollDispatcher(const TimeSource* time_source = RealTimeSource::Get());
  ~EpollDispatcher() override;
  EpollDispatcher(const EpollDispatcher&) = delete;
  EpollDispatcher& operator=(const EpollDispatcher&) = delete;

  // Rounds start at most this often (0, the default: as soon as anything
  // is ready). Under load, input of many calls arrives microseconds apart
  // and each arrival would wake the loop for a round of its own: a context
  // switch and an epoll_wait per frame. Waiting out the rest of the window
  // lets one round take all of it. Timers still fire on time (the wait
  // ends at the next deadline); descriptor input and posted tasks wait at
  // most `window`. A loop whose rounds are farther apart never waits.
  // Before Run().
  void set_round_window(Nanos window) { round_window_ = window; }

  // Called on the loop's thread after each round that ran (timers,
  // handlers, tasks and after-round tasks) with how long it took from the
  // wake-up: how busy the loop is, and whether a late timer waited for a
  // long round or for a loop that was not running at all. Before Run().
  void set_round_observer(absl::AnyInvocable<void(Nanos)> observer) {
    round_observer_ = std::move(observer);
  }

  // Runs until Stop(). Tasks posted before Stop() still run.
  void Run();
  // Starts Run() on a new thread; Join() waits for it.
  void StartThread();
  void Join();
  void Stop();
  // One round: waits for readiness, a due timer or a posted task (at most
  // `max_wait`; negative waits without limit), then runs due timers,
  // descriptor handlers and posted tasks, in that order. Returns true when
  // the round was full, i.e. more descriptors may be ready already (a caller
  // that polls on its own schedule looks again at once).
  bool RunOnce(Nanos max_wait);

  // Rounds so far (epoll_wait returns); for benchmarks.
  uint64_t wakeups() const { return wakeups_; }
  size_t pending_timers() const { return live_timers_; }

  // Dispatcher
  void Post(Task task) override;
  bool InDispatcherThread() const override {
    return std::this_thread::get_id() == thread_id_.load(std::memory_order_relaxed);
  }
  absl::Status Watch(int fd, FdHandler* handler, bool writable) override;
  absl::Status SetWritable(int fd, FdHandler* handler, bool writable) override;
  void Unwatch(int fd) override;
  TimerId RunAt(MonoTime when, Task task) override;
  TimerId RunRepeating(MonoTime first, RepeatingTask task) override;
  void CancelTimer(TimerId id) override;
  void RunAfterRound(Task task) override;
  bool TimerDue() override;
  const TimeSource& time_source() const override { return *time_source_; }

 private:
  // How many descriptor handlers, posted tasks or after-round tasks run
  // between looks at the clock for timers that came due during a round. A
  // look is one clock read; a handler (reading one call's frame) or a task
  // (one call's backend messages, one connection's flush) takes a few
  // microseconds.
  static constexpr size_t kWorkPerTimerCheck = 16;

  struct TimerEntry {
    MonoTime when;
    uint64_t order;  // timers due at once fire in the order they were set
    TimerId id;
    bool operator>(const TimerEntry& o) const {
      return when != o.when ? when > o.when : order > o.order;
    }
  };

  // A timer's task: one-shot or repeating (exactly one is set).
  struct Timer {
    Task once;
    RepeatingTask repeating;
  };
  // Timers live in slots found by index, not in a hash map: every playout
  // tick of every call looks its timer up twice. A TimerId is the slot's
  // index plus one, with the slot's generation above: a cancelled timer's
  // id (and its entry left in the heap) no longer matches once the slot is
  // reused.
  struct TimerSlot {
    Timer timer;
    uint32_t generation = 0;
    bool live = false;
  };

  TimerId AddTimer(MonoTime when, Timer timer);
  // The live timer `id` names, or nullptr.
  TimerSlot* FindTimer(TimerId id);
  // Frees a live timer's slot (its task destroyed now).
  void ReleaseTimer(TimerId id);
  void Wake();
  void DrainTasks();
  void FireTimers();
  // Every kWorkPerTimerCheck-th piece of a round's work (counting from 0),
  // timers that came due go first.
  void FireTimersIfDueAt(size_t work_done);
  void RunAfterRoundTasks();
  void ArmTimerFd();
  // The earliest live deadline (cancelled entries dropped), or max().
  MonoTime NextDeadline();

  const TimeSource* const time_source_;
  const bool use_timer_fd_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;   // eventfd: Post() wakes the loop
  int timer_fd_ = -1;  // timerfd at the earliest deadline
  std::thread thread_;
  // Atomic: other threads ask InDispatcherThread while Run sets it. Only
  // equality with the asking thread's own id matters, so relaxed suffices.
  std::atomic<std::thread::id> thread_id_{};
  uint64_t wakeups_ = 0;
  std::vector<epoll_event> events_;  // grows when a round fills it

  absl::Mutex mu_;
  std::vector<Task> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  // Dispatcher-thread state.
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<TimerEntry>> timer_heap_;
  std::vector<TimerSlot> timer_slots_;
  std::vector<uint32_t> free_timer_slots_;
  size_t live_timers_ = 0;
  uint64_t next_timer_order_ = 0;
  std::vector<TimerId> due_;  // FireTimers' round, kept for its capacity
  MonoTime armed_for_ = MonoTime::max();
  bool firing_timers_ = false;  // in FireTimers: RunAt leaves arming to it
  bool in_round_ = false;       // between epoll_wait's return and the round's end
  Nanos round_window_{0};
  MonoTime round_started_ = MonoTime::min();  // with a window: when the last round began
  absl::AnyInvocable<void(Nanos)> round_observer_;
  std::vector<Task> after_round_;
  std::vector<Task> after_round_batch_;  // the batch being run; kept for its capacity
  std::vector<Task> drained_;            // DrainTasks' batch; kept for its capacity
};

}  // namespace audiosocket::event

#endif  // AUDIOSOCKET_BRIDGE_LIB_EVENT_EPOLL_DISPATCHER_H_
