#ifndef AUDIOSOCKET_BRIDGE_SERVER_EVENT_LOOP_H_
#define AUDIOSOCKET_BRIDGE_SERVER_EVENT_LOOP_H_

// One thread's event loop: epoll for sockets, a timerfd for absolute
// monotonic deadlines (microsecond precision, unlike epoll_wait's
// millisecond timeout), and a task queue other threads post to.
//
// Threads: Run() owns the calling thread. Post() and Stop() may be called
// from any thread; every other method only from the loop's own thread (or
// before Run starts). Handlers and timers run on the loop thread.

#include <cstdint>
#include <functional>
#include <map>
#include <queue>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "server/clock.h"

namespace audiosocket {

// Receives readiness of one file descriptor.
class FdHandler {
 public:
  virtual ~FdHandler() = default;
  virtual void OnReadable() = 0;
  virtual void OnWritable() = 0;
};

class EventLoop {
 public:
  using TimerId = uint64_t;
  using Task = std::function<void()>;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs until Stop(). Tasks posted before Stop() still run.
  void Run();
  // Starts Run() on a new thread; Join() waits for it.
  void StartThread();
  void Join();
  void Stop();

  // Runs `task` on the loop thread soon. Thread-safe.
  void Post(Task task);

  bool InLoopThread() const { return std::this_thread::get_id() == thread_id_; }

  // Registers `handler` for `fd`; `writable` also asks for EPOLLOUT.
  absl::Status Watch(int fd, FdHandler* handler, bool writable);
  absl::Status SetWritable(int fd, FdHandler* handler, bool writable);
  void Unwatch(int fd);

  // Runs `task` at `when` (or at once if it has passed). Returns an id for
  // CancelTimer. Timers never fire after cancellation.
  TimerId RunAt(MonoTime when, Task task);
  void CancelTimer(TimerId id);

  MonoTime Now() const { return MonoClock::now(); }

 private:
  void DrainTasks();
  void FireTimers();
  void ArmTimerFd();

  int epoll_fd_ = -1;
  int wake_fd_ = -1;   // eventfd: Post() wakes the loop
  int timer_fd_ = -1;  // timerfd at the earliest deadline
  std::thread thread_;
  std::thread::id thread_id_;

  absl::Mutex mu_;
  std::vector<Task> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  // Loop-thread state.
  struct TimerEntry {
    MonoTime when;
    TimerId id;
    bool operator>(const TimerEntry& o) const { return when != o.when ? when > o.when : id > o.id; }
  };
  std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<TimerEntry>> timer_heap_;
  absl::flat_hash_map<TimerId, Task> timers_;
  TimerId next_timer_id_ = 1;
  MonoTime armed_for_ = MonoTime::max();
  bool firing_timers_ = false;  // in FireTimers: RunAt leaves arming to it
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_EVENT_LOOP_H_
