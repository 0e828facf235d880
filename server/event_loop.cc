#include "server/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/log.h"

namespace audiosocket {
namespace {

// epoll user data for the loop's own descriptors; handlers use their pointer.
constexpr uint64_t kWakeTag = 1;
constexpr uint64_t kTimerTag = 2;
// Posted tasks run per loop round; the rest waits for the next round.
constexpr size_t kMaxTasksPerRound = 256;

void DieIf(bool failed, const char* what) {
  if (failed) {
    log::Error("event_loop_failed", {{"call", what}, {"error", std::strerror(errno)}});
    std::abort();
  }
}

}  // namespace

EventLoop::EventLoop() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  DieIf(epoll_fd_ < 0, "epoll_create1");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  DieIf(wake_fd_ < 0, "eventfd");
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  DieIf(timer_fd_ < 0, "timerfd_create");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeTag;
  DieIf(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev) != 0, "epoll_ctl wake");
  ev.data.u64 = kTimerTag;
  DieIf(epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev) != 0, "epoll_ctl timer");
  thread_id_ = std::this_thread::get_id();
}

EventLoop::~EventLoop() {
  Stop();
  Join();
  close(timer_fd_);
  close(wake_fd_);
  close(epoll_fd_);
}

void EventLoop::StartThread() {
  thread_ = std::thread([this] { Run(); });
}

void EventLoop::Join() {
  if (thread_.joinable()) thread_.join();
}

void EventLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void EventLoop::Post(Task task) {
  bool wake;
  {
    absl::MutexLock lock(&mu_);
    // Only the first task of a batch writes the eventfd: while tasks_ is
    // not empty the loop has been woken and has not yet taken the batch
    // (DrainTasks reads the eventfd before it swaps the queue out), so it
    // will run this task too. Saves a system call per cross-thread message.
    wake = tasks_.empty();
    tasks_.push_back(std::move(task));
  }
  if (!wake) return;
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

absl::Status EventLoop::Watch(int fd, FdHandler* handler, bool writable) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (writable ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl add: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status EventLoop::SetWritable(int fd, FdHandler* handler, bool writable) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP | (writable ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl mod: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

void EventLoop::Unwatch(int fd) { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

EventLoop::TimerId EventLoop::RunAt(MonoTime when, Task task) {
  const TimerId id = next_timer_id_++;
  timers_.emplace(id, std::move(task));
  timer_heap_.push(TimerEntry{when, id});
  // While timers fire, FireTimers arms the timerfd once at the end.
  if (when < armed_for_ && !firing_timers_) ArmTimerFd();
  return id;
}

void EventLoop::CancelTimer(TimerId id) { timers_.erase(id); }

void EventLoop::ArmTimerFd() {
  // Drop cancelled entries so the timerfd is armed for a live deadline.
  while (!timer_heap_.empty() && !timers_.contains(timer_heap_.top().id)) timer_heap_.pop();
  itimerspec spec{};
  if (timer_heap_.empty()) {
    armed_for_ = MonoTime::max();
  } else {
    armed_for_ = timer_heap_.top().when;
    const auto ns = std::chrono::duration_cast<Nanos>(armed_for_.time_since_epoch()).count();
    // steady_clock is CLOCK_MONOTONIC on Linux. 0 would disarm: use 1 ns.
    spec.it_value.tv_sec = ns / 1000000000;
    spec.it_value.tv_nsec = ns % 1000000000;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

void EventLoop::FireTimers() {
  uint64_t expirations;
  (void)!read(timer_fd_, &expirations, sizeof(expirations));
  const MonoTime now = Now();
  // Collect first: a timer task may schedule new timers due now, which
  // must wait for the next round so one timer cannot starve the loop.
  std::vector<Task> due;
  while (!timer_heap_.empty() && timer_heap_.top().when <= now) {
    const TimerId id = timer_heap_.top().id;
    timer_heap_.pop();
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;
    due.push_back(std::move(it->second));
    timers_.erase(it);
  }
  armed_for_ = MonoTime::max();
  // Tasks re-arm their own timers (every playout tick schedules the next):
  // one timerfd_settime for the whole round instead of one per task.
  firing_timers_ = true;
  for (Task& task : due) task();
  firing_timers_ = false;
  ArmTimerFd();
}

void EventLoop::DrainTasks() {
  // Read before taking the queue (see Post): a task posted after the read
  // either is taken below or writes the eventfd again.
  uint64_t count;
  (void)!read(wake_fd_, &count, sizeof(count));
  std::vector<Task> tasks;
  bool more = false;
  {
    absl::MutexLock lock(&mu_);
    if (tasks_.size() <= kMaxTasksPerRound) {
      tasks.swap(tasks_);
    } else {
      // A burst (a backend flooding commands) is run a slice per round, so
      // the playout timers of every call on this loop run between slices.
      tasks.assign(std::make_move_iterator(tasks_.begin()),
                   std::make_move_iterator(tasks_.begin() + kMaxTasksPerRound));
      tasks_.erase(tasks_.begin(), tasks_.begin() + kMaxTasksPerRound);
      more = true;
    }
  }
  if (more) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));  // the rest next round
  }
  for (Task& task : tasks) task();
}

void EventLoop::Run() {
  thread_id_ = std::this_thread::get_id();
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_ && tasks_.empty()) break;
    }
    const int n = epoll_wait(epoll_fd_, events, kMaxEvents, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      DieIf(true, "epoll_wait");
    }
    bool timers_due = false;
    bool tasks_due = false;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kWakeTag) {
        tasks_due = true;
      } else if (events[i].data.u64 == kTimerTag) {
        timers_due = true;
      }
    }
    // Timers first: pacing deadlines matter more than socket input.
    if (timers_due) FireTimers();
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kWakeTag || tag == kTimerTag) continue;
      auto* handler = static_cast<FdHandler*>(events[i].data.ptr);
      const uint32_t e = events[i].events;
      if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) handler->OnReadable();
      // A handler may have closed itself in OnReadable; handlers defer their
      // destruction to a posted task, so the pointer stays valid here.
      if (e & EPOLLOUT) handler->OnWritable();
    }
    if (tasks_due) DrainTasks();
  }
}

}  // namespace audiosocket
