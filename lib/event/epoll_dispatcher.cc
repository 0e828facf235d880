#include "lib/event/epoll_dispatcher.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace audiosocket::event {
namespace {

// epoll user data for the dispatcher's own descriptors; handlers use their
// pointer, which is never 1 or 2.
constexpr uint64_t kWakeTag = 1;
constexpr uint64_t kTimerTag = 2;
// Posted tasks run per round; the rest waits for the next round.
constexpr size_t kMaxTasksPerRound = 256;
constexpr size_t kInitialEvents = 256;

void DieIf(bool failed, const char* what) {
  if (!failed) return;
  // The same shape as the bridge's JSON log lines; lib/ cannot use its logger.
  std::fprintf(
      stderr,
      "{\"level\":\"error\",\"event\":\"event_loop_failed\",\"call\":\"%s\",\"error\":\"%s\"}\n",
      what, std::strerror(errno));
  std::abort();
}

uint32_t EpollMask(bool writable) {
  return EPOLLIN | EPOLLRDHUP | (writable ? static_cast<uint32_t>(EPOLLOUT) : 0u);
}

}  // namespace

EpollDispatcher::EpollDispatcher(const TimeSource* time_source)
    : time_source_(time_source),
      use_timer_fd_(time_source->IsSystemMonotonic()),
      events_(kInitialEvents) {
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

EpollDispatcher::~EpollDispatcher() {
  Stop();
  Join();
  close(timer_fd_);
  close(wake_fd_);
  close(epoll_fd_);
}

void EpollDispatcher::StartThread() {
  thread_ = std::thread([this] { Run(); });
  // Before returning, not only once Run starts: code that asks
  // InDispatcherThread right after must not take its own thread for the
  // loop's.
  thread_id_ = thread_.get_id();
}

void EpollDispatcher::Join() {
  if (thread_.joinable()) thread_.join();
}

void EpollDispatcher::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  Wake();
}

void EpollDispatcher::Wake() {
  const uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof(one));
}

void EpollDispatcher::Post(Task task) {
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
  if (wake) Wake();
}

absl::Status EpollDispatcher::Watch(int fd, FdHandler* handler, bool writable) {
  epoll_event ev{};
  ev.events = EpollMask(writable);
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl add: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status EpollDispatcher::SetWritable(int fd, FdHandler* handler, bool writable) {
  epoll_event ev{};
  ev.events = EpollMask(writable);
  ev.data.ptr = handler;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) {
    return absl::InternalError(absl::StrCat("epoll_ctl mod: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

void EpollDispatcher::Unwatch(int fd) { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

EpollDispatcher::TimerId EpollDispatcher::RunAt(MonoTime when, Task task) {
  return AddTimer(when, Timer{std::move(task), nullptr});
}

EpollDispatcher::TimerId EpollDispatcher::RunRepeating(MonoTime first, RepeatingTask task) {
  return AddTimer(first, Timer{nullptr, std::move(task)});
}

EpollDispatcher::TimerId EpollDispatcher::AddTimer(MonoTime when, Timer timer) {
  uint32_t index;
  if (free_timer_slots_.empty()) {
    index = static_cast<uint32_t>(timer_slots_.size());
    timer_slots_.emplace_back();
  } else {
    index = free_timer_slots_.back();
    free_timer_slots_.pop_back();
  }
  TimerSlot& slot = timer_slots_[index];
  slot.timer = std::move(timer);
  slot.live = true;
  ++live_timers_;
  const TimerId id = (static_cast<TimerId>(slot.generation) << 32) | (index + 1);
  timer_heap_.push(TimerEntry{when, next_timer_order_++, id});
  // While timers fire, FireTimers arms the timerfd once at the end.
  if (when < armed_for_ && !firing_timers_) ArmTimerFd();
  return id;
}

EpollDispatcher::TimerSlot* EpollDispatcher::FindTimer(TimerId id) {
  const uint64_t index = (id & 0xffffffffu) - 1;  // 0 (no timer) wraps past the end
  if (index >= timer_slots_.size()) return nullptr;
  TimerSlot& slot = timer_slots_[index];
  if (!slot.live || slot.generation != static_cast<uint32_t>(id >> 32)) return nullptr;
  return &slot;
}

void EpollDispatcher::ReleaseTimer(TimerId id) {
  TimerSlot* slot = FindTimer(id);
  if (slot == nullptr) return;
  slot->live = false;
  ++slot->generation;
  --live_timers_;
  free_timer_slots_.push_back(static_cast<uint32_t>((id & 0xffffffffu) - 1));
  // Last: the task may own what destroys it, and may not touch the slots.
  Timer gone = std::move(slot->timer);
  slot->timer = Timer{};
}

void EpollDispatcher::CancelTimer(TimerId id) { ReleaseTimer(id); }

bool EpollDispatcher::TimerDue() {
  // armed_for_ is the earliest deadline (max() while timers fire, which
  // must not yield to themselves).
  return armed_for_ <= Now();
}

MonoTime EpollDispatcher::NextDeadline() {
  while (!timer_heap_.empty() && FindTimer(timer_heap_.top().id) == nullptr) timer_heap_.pop();
  return timer_heap_.empty() ? MonoTime::max() : timer_heap_.top().when;
}

void EpollDispatcher::ArmTimerFd() {
  // Drop cancelled entries so the timerfd is armed for a live deadline.
  armed_for_ = NextDeadline();
  if (!use_timer_fd_) return;  // simulated time: RunOnce looks at the heap
  itimerspec spec{};
  if (armed_for_ != MonoTime::max()) {
    const int64_t ns = std::chrono::duration_cast<Nanos>(armed_for_.time_since_epoch()).count();
    // steady_clock is CLOCK_MONOTONIC on Linux. 0 would disarm: use 1 ns.
    spec.it_value.tv_sec = ns / 1000000000;
    spec.it_value.tv_nsec = ns % 1000000000;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

void EpollDispatcher::FireTimers() {
  if (use_timer_fd_) {
    uint64_t expirations;
    (void)!read(timer_fd_, &expirations, sizeof(expirations));
  }
  const MonoTime now = Now();
  // Collect first: a timer task may schedule new timers due now, which
  // must wait for the next round so one timer cannot starve the loop.
  due_.clear();
  // (Cancelled ones too: each is looked up once, below, whatever it is.)
  while (!timer_heap_.empty() && timer_heap_.top().when <= now) {
    due_.push_back(timer_heap_.top().id);
    timer_heap_.pop();
  }
  armed_for_ = MonoTime::max();
  // Tasks re-arm their own timers (every playout tick schedules the next):
  // one timerfd_settime for the whole round instead of one per task.
  firing_timers_ = true;
  for (TimerId id : due_) {
    // Looked up now, not when collected: a timer cancelled by an earlier
    // one of this round (a call that ended) must not run.
    TimerSlot* slot = FindTimer(id);
    if (slot == nullptr) continue;
    // Moved out before it runs: a task that sets timers may grow the slots
    // under it. Moving a std::function moves a pointer; nothing allocates.
    Timer timer = std::move(slot->timer);
    if (timer.once) {
      ReleaseTimer(id);
      timer.once();
      continue;
    }
    const MonoTime next = timer.repeating();
    slot = FindTimer(id);  // gone if the task cancelled itself
    if (slot == nullptr) continue;
    if (next == MonoTime::max()) {
      ReleaseTimer(id);
      continue;
    }
    slot->timer = std::move(timer);
    timer_heap_.push(TimerEntry{next, next_timer_order_++, id});
  }
  firing_timers_ = false;
  ArmTimerFd();
}

void EpollDispatcher::FireTimersIfDueAt(size_t work_done) {
  if (work_done > 0 && work_done % kWorkPerTimerCheck == 0 && TimerDue()) FireTimers();
}

void EpollDispatcher::DrainTasks() {
  // Read before taking the queue (see Post): a task posted after the read
  // either is taken below or writes the eventfd again.
  uint64_t count;
  (void)!read(wake_fd_, &count, sizeof(count));
  std::vector<Task>& tasks = drained_;  // empty: cleared after the last round
  bool more = false;
  {
    absl::MutexLock lock(&mu_);
    if (tasks_.size() <= kMaxTasksPerRound) {
      tasks.swap(tasks_);
    } else {
      // A burst (a backend flooding commands) is run a slice per round, so
      // the timers of everything on this dispatcher run between slices.
      tasks.assign(std::make_move_iterator(tasks_.begin()),
                   std::make_move_iterator(tasks_.begin() + kMaxTasksPerRound));
      tasks_.erase(tasks_.begin(), tasks_.begin() + kMaxTasksPerRound);
      more = true;
    }
  }
  if (more) Wake();  // the rest next round
  for (size_t i = 0; i < tasks.size(); ++i) {
    FireTimersIfDueAt(i);
    tasks[i]();
  }
  tasks.clear();
}

bool EpollDispatcher::RunOnce(Nanos max_wait) {
  int timeout_ms = -1;
  if (max_wait >= Nanos(0)) {
    timeout_ms = static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(max_wait).count());
  }
  // Simulated time: nothing in the kernel knows a deadline has passed.
  if (!use_timer_fd_ && NextDeadline() <= Now()) timeout_ms = 0;
  const int n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
  ++wakeups_;
  const bool timed = round_window_ > Nanos(0) || round_observer_ != nullptr;
  const MonoTime woke = timed ? Now() : MonoTime{};
  if (round_window_ > Nanos(0)) round_started_ = woke;
  if (n < 0) {
    DieIf(errno != EINTR, "epoll_wait");
    RunAfterRoundTasks();
    return false;
  }
  in_round_ = true;
  bool timers_due = !use_timer_fd_;
  bool tasks_due = false;
  for (int i = 0; i < n; ++i) {
    if (events_[i].data.u64 == kWakeTag) {
      tasks_due = true;
    } else if (events_[i].data.u64 == kTimerTag) {
      timers_due = true;
    }
  }
  // Timers first: pacing deadlines matter more than socket input.
  if (timers_due) FireTimers();
  bool handled = false;
  for (int i = 0; i < n; ++i) {
    // A round with input from hundreds of descriptors (a caller that
    // sends in bursts) takes long enough for the next playout slot to come
    // due inside it: every few handlers, timers that came due go first, so
    // a tick waits for a few handlers, not for the whole round.
    FireTimersIfDueAt(static_cast<size_t>(i));
    const uint64_t tag = events_[i].data.u64;
    if (tag == kWakeTag || tag == kTimerTag) continue;
    handled = true;
    auto* handler = static_cast<FdHandler*>(events_[i].data.ptr);
    const uint32_t e = events_[i].events;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) handler->OnReadable();
    // A handler may have closed itself in OnReadable; handlers defer their
    // destruction past this round (FdHandler), so the pointer stays valid.
    if (e & EPOLLOUT) handler->OnWritable();
  }
  // Thousands of descriptors ready at once: take more per round next time.
  const bool full = n == static_cast<int>(events_.size());
  if (full) events_.resize(events_.size() * 2);
  // Before the round's closing work (posted tasks, the flushes of shared
  // connections), as between handlers. (Not in a round of timers alone: a
  // timer set by a timer for a time already passed runs next round.)
  if (handled && TimerDue()) FireTimers();
  if (tasks_due) DrainTasks();
  RunAfterRoundTasks();
  if (round_observer_ != nullptr) round_observer_(Now() - woke);
  return full;
}

void EpollDispatcher::RunAfterRound(Task task) {
  after_round_.push_back(std::move(task));
  // Outside a round (before the loop runs, or from a test driving it): the
  // next round must come at once rather than when something else wakes it.
  if (!in_round_ && after_round_.size() == 1) Wake();
}

void EpollDispatcher::RunAfterRoundTasks() {
  // Tasks may add more (a flush that frees room for another stream's
  // data); each batch is run until none is left. The two vectors trade
  // places, so their capacity stays and a round allocates nothing.
  // A burst of input leaves work for hundreds of calls here (their backend
  // messages, the flushes of shared connections): a tick slot that comes
  // due meanwhile goes first, as between handlers.
  size_t done = 0;
  while (!after_round_.empty()) {
    after_round_batch_.swap(after_round_);
    for (Task& task : after_round_batch_) {
      FireTimersIfDueAt(done++);
      task();
    }
    after_round_batch_.clear();
  }
  in_round_ = false;
}

void EpollDispatcher::Run() {
  thread_id_ = std::this_thread::get_id();
  const bool windowed = round_window_ > Nanos(0) && use_timer_fd_;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_ && tasks_.empty()) break;
    }
    if (windowed) {
      const MonoTime until = std::min(round_started_ + round_window_, NextDeadline());
      if (until > Now()) {
        const int64_t ns = std::chrono::duration_cast<Nanos>(until.time_since_epoch()).count();
        const timespec wake_at{static_cast<time_t>(ns / 1000000000),
                               static_cast<long>(ns % 1000000000)};
        // steady_clock is CLOCK_MONOTONIC on Linux; EINTR only ends it early.
        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake_at, nullptr);
      }
    }
    RunOnce(Nanos(-1));
  }
}

}  // namespace audiosocket::event
