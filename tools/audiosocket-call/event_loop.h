#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_EVENT_LOOP_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_EVENT_LOOP_H_

// A single-threaded epoll event loop with one-shot timers.
//
// Timers live in a min-heap keyed by deadline, so thousands of calls cost
// O(log n) per timer. With the real monotonic clock the loop sleeps on a
// timerfd armed (TFD_TIMER_ABSTIME) at the earliest deadline: nanosecond
// resolution, unlike epoll_wait's millisecond timeout. With a fake clock,
// tests call RunOnce() and move the clock themselves.
//
// Thread-safety: everything runs on the thread that calls Run/RunOnce; no
// method may be called from another thread. Ownership: the loop does not own
// handlers; a handler must remove its fd (RemoveFd) and cancel its timer
// before it is destroyed, and must stay alive until the current RunOnce
// returns (stale events of a removed fd are dropped by the loop).

#include <sys/epoll.h>

#include <cstdint>
#include <queue>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "tools/audiosocket-call/clock.h"

namespace audiosocket::call {

class EventLoop {
 public:
  class FdHandler {
   public:
    virtual ~FdHandler() = default;
    // `events` is the EPOLL* mask reported for the fd.
    virtual void OnFdEvents(int fd, uint32_t events) = 0;
  };
  class TimerHandler {
   public:
    virtual ~TimerHandler() = default;
    virtual void OnTimer() = 0;
  };
  using TimerId = uint64_t;

  explicit EventLoop(const Clock* clock);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Creates the epoll and timer descriptors. Call once before anything else.
  absl::Status Init();

  absl::Status AddFd(int fd, uint32_t events, FdHandler* handler);
  absl::Status ModifyFd(int fd, uint32_t events);
  // Stops reporting `fd` (call before closing it).
  void RemoveFd(int fd);

  // Calls handler->OnTimer() once, at or after `deadline` (clock time).
  TimerId Schedule(Nanos deadline, TimerHandler* handler);
  // Cancels a pending timer; harmless for fired or unknown ids.
  void Cancel(TimerId id);
  size_t pending_timers() const { return timers_.size(); }
  // The earliest pending deadline, or -1 when there is none.
  Nanos NextDeadline();

  // One iteration: waits for fd events (at most `max_wait`, less when a
  // timer is due sooner and the clock is the system one; -1 = no limit),
  // dispatches them, then fires every timer whose deadline has passed.
  void RunOnce(Nanos max_wait);
  // Runs until Stop() is called.
  void Run();
  void Stop() { stopped_ = true; }
  bool stopped() const { return stopped_; }

  // Wake-ups so far (epoll_wait returns); for benchmarks.
  uint64_t wakeups() const { return wakeups_; }

 private:
  struct Entry {
    Nanos deadline;
    TimerId id;
    bool operator>(const Entry& other) const {
      return deadline != other.deadline ? deadline > other.deadline : id > other.id;
    }
  };
  void FireDueTimers();
  void ArmTimerFd(Nanos deadline);

  const Clock* clock_;
  int epoll_fd_ = -1;
  int timer_fd_ = -1;
  Nanos armed_deadline_ = -1;
  bool stopped_ = false;
  uint64_t wakeups_ = 0;
  TimerId next_id_ = 1;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap_;
  absl::flat_hash_map<TimerId, TimerHandler*> timers_;
  absl::flat_hash_map<int, FdHandler*> fds_;
  std::vector<epoll_event> events_;
};

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_EVENT_LOOP_H_
