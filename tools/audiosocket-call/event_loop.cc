#include "tools/audiosocket-call/event_loop.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace audiosocket::call {
namespace {

absl::Status ErrnoStatus(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", std::strerror(errno)));
}

}  // namespace

EventLoop::EventLoop(const Clock* clock) : clock_(clock), events_(1024) {}

EventLoop::~EventLoop() {
  if (timer_fd_ >= 0) close(timer_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::Status EventLoop::Init() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return ErrnoStatus("epoll_create1");
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (timer_fd_ < 0) return ErrnoStatus("timerfd_create");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = timer_fd_;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, timer_fd_, &ev) != 0) return ErrnoStatus("epoll_ctl");
  return absl::OkStatus();
}

absl::Status EventLoop::AddFd(int fd, uint32_t events, FdHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) return ErrnoStatus("epoll_ctl(ADD)");
  fds_[fd] = handler;
  return absl::OkStatus();
}

absl::Status EventLoop::ModifyFd(int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) != 0) return ErrnoStatus("epoll_ctl(MOD)");
  return absl::OkStatus();
}

void EventLoop::RemoveFd(int fd) {
  if (fds_.erase(fd) > 0) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
}

EventLoop::TimerId EventLoop::Schedule(Nanos deadline, TimerHandler* handler) {
  const TimerId id = next_id_++;
  timers_[id] = handler;
  heap_.push(Entry{deadline, id});
  return id;
}

void EventLoop::Cancel(TimerId id) { timers_.erase(id); }

Nanos EventLoop::NextDeadline() {
  while (!heap_.empty() && !timers_.contains(heap_.top().id)) heap_.pop();
  return heap_.empty() ? -1 : heap_.top().deadline;
}

void EventLoop::ArmTimerFd(Nanos deadline) {
  if (deadline == armed_deadline_) return;
  itimerspec spec{};
  if (deadline >= 0) {
    // A zero it_value disarms; a deadline of exactly 0 never occurs in practice.
    spec.it_value.tv_sec = deadline / kSecond;
    spec.it_value.tv_nsec = deadline % kSecond;
    if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
  armed_deadline_ = deadline;
}

void EventLoop::RunOnce(Nanos max_wait) {
  const Nanos next = NextDeadline();
  int timeout_ms = -1;
  if (clock_->IsSystemMonotonic()) {
    // Sleep on the timerfd for sub-millisecond precision.
    if (next >= 0 && next <= clock_->Now()) {
      timeout_ms = 0;
    } else {
      ArmTimerFd(next);
    }
  } else if (next >= 0 && next <= clock_->Now()) {
    timeout_ms = 0;
  }
  if (timeout_ms != 0 && max_wait >= 0) {
    const Nanos ms = (max_wait + kMillisecond - 1) / kMillisecond;
    timeout_ms = static_cast<int>(ms);
  }
  const int n = epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
  ++wakeups_;
  for (int i = 0; i < n; ++i) {
    const int fd = events_[i].data.fd;
    if (fd == timer_fd_) {
      uint64_t expirations;
      while (read(timer_fd_, &expirations, sizeof(expirations)) > 0) {
      }
      armed_deadline_ = -1;  // fired: a later RunOnce must re-arm
      continue;
    }
    auto it = fds_.find(fd);
    if (it == fds_.end()) continue;  // removed earlier in this batch
    it->second->OnFdEvents(fd, events_[i].events);
  }
  if (n == static_cast<int>(events_.size())) events_.resize(events_.size() * 2);
  FireDueTimers();
}

void EventLoop::FireDueTimers() {
  Nanos now = clock_->Now();
  while (!heap_.empty()) {
    const Entry top = heap_.top();
    if (top.deadline > now) {
      // Handlers take time; look at the clock again before sleeping.
      now = clock_->Now();
      if (top.deadline > now) break;
    }
    heap_.pop();
    auto it = timers_.find(top.id);
    if (it == timers_.end()) continue;
    TimerHandler* handler = it->second;
    timers_.erase(it);
    handler->OnTimer();
  }
}

void EventLoop::Run() {
  while (!stopped_) RunOnce(-1);
}

}  // namespace audiosocket::call
