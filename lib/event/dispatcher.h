#ifndef AUDIOSOCKET_BRIDGE_LIB_EVENT_DISPATCHER_H_
#define AUDIOSOCKET_BRIDGE_LIB_EVENT_DISPATCHER_H_

// One thread's event dispatcher: file-descriptor readiness, timers at
// absolute monotonic deadlines, and tasks posted from other threads. Code
// that runs on a dispatcher depends on this interface only, so it can run
// on the epoll implementation (epoll_dispatcher.h) with real or simulated
// time.
//
// Threads: Post() may be called from any thread; every other method only
// from the dispatcher's own thread (or before it starts running). Handlers,
// timers and posted tasks run on that thread. Ownership: the dispatcher
// borrows handlers (see FdHandler) and owns pending tasks and timers.

#include <cstdint>
#include <functional>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "lib/event/time_source.h"

namespace audiosocket::event {

// Receives readiness of one file descriptor. A handler must Unwatch its fd
// before closing it, and must stay alive until the dispatcher round in
// which it did so has ended (events already collected for that round may
// still be delivered): destroy it from a posted task.
class FdHandler {
 public:
  virtual ~FdHandler() = default;
  // Input, end of input, hang-up or error.
  virtual void OnReadable() = 0;
  // Only while watched with `writable`.
  virtual void OnWritable() = 0;
};

class Dispatcher {
 public:
  using TimerId = uint64_t;
  // Move-only, and closures up to two pointers (a shared_ptr or weak_ptr
  // capture) are kept inline: std::function allocates for any capture that
  // is not trivially copyable, which on the per-frame path is one
  // allocation per posted task.
  using Task = absl::AnyInvocable<void()>;
  // Returns when to run next, or MonoTime::max() for never again.
  using RepeatingTask = absl::AnyInvocable<MonoTime()>;

  virtual ~Dispatcher() = default;

  // Runs `task` on the dispatcher's thread soon, in posting order.
  // Thread-safe.
  virtual void Post(Task task) = 0;
  // True on the thread that runs the dispatcher.
  virtual bool InDispatcherThread() const = 0;

  // Reports readiness of `fd` to `handler`; `writable` also asks for
  // OnWritable.
  virtual absl::Status Watch(int fd, FdHandler* handler, bool writable) = 0;
  virtual absl::Status SetWritable(int fd, FdHandler* handler, bool writable) = 0;
  // Stops reporting `fd`; call before closing it.
  virtual void Unwatch(int fd) = 0;

  // Runs `task` once, at `when` on time_source() (at once if it has
  // passed). Timers due at the same time run in the order they were set.
  // Returns an id for CancelTimer.
  virtual TimerId RunAt(MonoTime when, Task task) = 0;
  // Runs `task` at `first`, then again at each time it returns, until it
  // returns MonoTime::max() or is cancelled (from inside it too), under one
  // id. For a timer that fires every few milliseconds for a long time (a
  // call's playout tick): it is stored once instead of once per firing. A
  // time it returns that has already passed runs in the next round, as
  // RunAt's do when set by a timer.
  virtual TimerId RunRepeating(MonoTime first, RepeatingTask task) = 0;
  // A cancelled timer never runs; harmless for fired or unknown ids.
  virtual void CancelTimer(TimerId id) = 0;

  // Runs `task` on the dispatcher's thread once the current round's timers,
  // handlers and posted tasks have run, before the loop waits again; tasks
  // it adds run in the same round. For work that many handlers of a round
  // contribute to and that is done best once: one write of every stream's
  // frames to a shared connection. Dispatcher thread only.
  virtual void RunAfterRound(Task task) = 0;

  // True when a timer's time has come and it has not run yet. A handler
  // with much more input to take (a shared connection carrying hundreds of
  // calls' frames) stops there: the timers run first, and epoll reports the
  // rest of its input in the next round. Dispatcher thread only.
  virtual bool TimerDue() = 0;

  virtual const TimeSource& time_source() const = 0;
  MonoTime Now() const { return time_source().Now(); }
};

}  // namespace audiosocket::event

#endif  // AUDIOSOCKET_BRIDGE_LIB_EVENT_DISPATCHER_H_
