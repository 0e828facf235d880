#include "tests/fuzz/call_harness.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "lib/event/epoll_dispatcher.h"
#include "server/backend/backend_link.h"
#include "server/call/call.h"
#include "server/call/call_registry.h"
#include "server/call/testing/push_call_services.h"
#include "server/ops/counters.h"
#include "server/ops/log.h"

namespace audiosocket::fuzz {

namespace v1 = ::audiosocket::bridge::v1;

// The backend's end: records what the call sends.
class FakeLink final : public BackendLink {
 public:
  void SendEvent(v1::CallEvent&& event) override {
    absl::MutexLock lock(&mu_);
    if (ended_) after_end_++;
    if (event.has_ended()) ended_++;
  }
  void ExtendAudioQueue(uint64_t) override {}
  void CloseAfterQueued() override {}
  void Abort() override {}
  uint64_t dropped_audio_samples() const override { return 0; }
  uint64_t dropped_audio_events() const override { return 0; }

  int ended() const {
    absl::MutexLock lock(&mu_);
    return ended_;
  }
  int after_end() const {
    absl::MutexLock lock(&mu_);
    return after_end_;
  }

 private:
  mutable absl::Mutex mu_;
  int ended_ ABSL_GUARDED_BY(mu_) = 0;
  int after_end_ ABSL_GUARDED_BY(mu_) = 0;
};

struct HarnessServices : PushCallServices {
  HarnessServices()
      : PushCallServices([this](uint64_t link_id, std::weak_ptr<LinkObserver>) {
          auto link = std::make_shared<FakeLink>();
          links.push_back(link);
          link_ids.push_back(link_id);
          return link;
        }) {}

  // Written on the loop thread by the link factory, read after RunOnLoop.
  std::vector<std::shared_ptr<FakeLink>> links;
  std::vector<uint64_t> link_ids;
};

namespace {

// One loop for every input: a thread per input would dominate the cost.
event::EpollDispatcher* SharedLoop() {
  static event::EpollDispatcher* loop = [] {
    log::SetMinLevel(log::Level::kError);  // a log line per call is noise here
    auto* l = new event::EpollDispatcher();
    l->StartThread();
    return l;
  }();
  return loop;
}

}  // namespace

CallHarness::CallHarness(uint8_t options) : services_(std::make_unique<HarnessServices>()) {
  HarnessServices& s = *services_;
  s.config.first_audio_wait = absl::ZeroDuration();  // dial at once after the UUID
  s.config.uuid_timeout = absl::Seconds(30);
  s.config.accept_timeout = absl::Seconds(30);
  s.config.write_stall_timeout = absl::Seconds(30);
  s.config.max_playout_ms = 10000;  // bounds memory per input
  s.listener.name = "fuzz";
  s.listener.dialect = (options & 1) ? wire::Dialect::kExtended : wire::Dialect::kAsterisk;
  switch ((options >> 1) & 3) {
    case 1:
      s.listener.encoding = v1::AUDIO_ENCODING_MULAW;
      break;
    case 2:
      s.listener.encoding = v1::AUDIO_ENCODING_ALAW;
      break;
    default:
      s.listener.encoding = v1::AUDIO_ENCODING_LINEAR16;
  }
  s.listener.detect_inband_dtmf = (options & 8) != 0;
  s.config.listeners = {s.listener};

  // Reads what the bridge writes as Asterisk does: every audio kind is
  // signed linear at its rate, whatever the listener's encoding.
  decoder_ = std::make_unique<wire::Decoder>(
      wire::DecoderOptions{.dialect = s.listener.dialect,
                           .unknown_kinds = wire::UnknownKindPolicy::kReject,
                           .audio_bytes_per_sample = 2});

  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    Fail(absl::StrCat("socketpair: ", std::strerror(errno)));
    return;
  }
  caller_fd_ = fds[0];
  const int call_fd = fds[1];
  RunOnLoop([this, call_fd] {
    call_ = std::make_shared<Call>(SharedLoop(), call_fd, &services_->listener, "fuzz",
                                   &services_->services);
    call_->Start();
  });
}

CallHarness::~CallHarness() {
  Finish();
  if (caller_fd_ >= 0) ::close(caller_fd_);
  // The services die with the harness: wait until the call (which keeps
  // itself alive until its socket closes) is gone, so none of its timers or
  // tasks runs against them afterwards.
  std::weak_ptr<Call> gone = call_;
  RunOnLoop([this] { call_.reset(); });
  const absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (!gone.expired() && absl::Now() < deadline) RunOnLoop([] {});
}

wire::Dialect CallHarness::dialect() const { return services_->listener.dialect; }
bool CallHarness::linear() const {
  return services_->listener.encoding == v1::AUDIO_ENCODING_LINEAR16;
}

void CallHarness::RunOnLoop(std::function<void()> task) {
  absl::Notification done;
  SharedLoop()->Post([&] {
    task();
    done.Notify();
  });
  done.WaitForNotification();
}

void CallHarness::Fail(std::string what) {
  if (failure_.empty()) failure_ = std::move(what);
}

void CallHarness::SendFromCaller(absl::Span<const uint8_t> bytes) {
  if (finished_ || call_ == nullptr) return;
  size_t offset = 0;
  // Bounded: a call that stops reading (it closed) ends the loop.
  for (int round = 0; round < 64 && offset < bytes.size(); ++round) {
    const ssize_t n =
        ::send(caller_fd_, bytes.data() + offset, bytes.size() - offset, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;  // closed
    if (n > 0) offset += static_cast<size_t>(n);
    RunOnLoop([this] { call_->ReadCallerNowForTesting(); });
    Drain();
  }
  // Commands the call posted to itself (e.g. after a protocol error) run.
  RunOnLoop([] {});
}

void CallHarness::Command(const v1::CallCommand& command) {
  v1::HandleCallResponse message;
  *message.mutable_command() = command;
  Command(message);
}

void CallHarness::Command(const v1::HandleCallResponse& message) {
  if (finished_ || services_->link_ids.empty()) return;
  const uint64_t link_id = services_->link_ids.back();
  call_->OnBackendCommand(link_id, message);  // posts to the loop, as a link does
  RunOnLoop([] {});
  RunOnLoop([] {});
  Drain();
}

void CallHarness::CommandBytes(absl::string_view bytes) {
  if (finished_ || services_->link_ids.empty()) return;
  const uint64_t link_id = services_->link_ids.back();
  // Bytes that are no HandleCallResponse are refused, and a link would end
  // its stream: nothing for the call to do.
  RunOnLoop([&] {
    call_->OnBackendCommandBytes(link_id, BackendMessageKind::kHandleCallResponse, bytes);
  });
  RunOnLoop([] {});
  Drain();
}

bool CallHarness::has_link() const { return !services_->link_ids.empty(); }

void CallHarness::Wait(int ms) {
  const absl::Time until = absl::Now() + absl::Milliseconds(std::min(ms, 100));
  while (absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(5));
    Drain();
  }
  RunOnLoop([] {});
  Drain();
}

void CallHarness::Drain() {
  if (caller_fd_ < 0) return;
  for (int round = 0; round < 1024; ++round) {
    absl::Span<uint8_t> space = decoder_->PrepareWrite(65536);
    const ssize_t n = ::read(caller_fd_, space.data(), space.size());
    if (n <= 0) return;
    decoder_->Commit(static_cast<size_t>(n));
    while (true) {
      absl::StatusOr<std::optional<wire::Message>> next = decoder_->Next();
      if (!next.ok()) {
        Fail(absl::StrCat("the bridge wrote bytes Asterisk cannot decode: ",
                          next.status().message()));
        return;
      }
      if (!next->has_value()) break;
      const wire::Message& message = **next;
      if (hangup_seen_) Fail("the bridge wrote after its hang-up");
      const uint8_t kind = static_cast<uint8_t>(wire::KindOf(message));
      if (std::holds_alternative<wire::Hangup>(message)) {
        hangup_seen_ = true;
      } else if (const auto* audio = std::get_if<wire::Audio>(&message)) {
        const size_t frame = static_cast<size_t>(audio->sample_rate_hz / 50) * 2;
        if (audio->payload.size() != frame) {
          Fail(absl::StrCat("audio frame of ", audio->payload.size(), " bytes at ",
                            audio->sample_rate_hz, " Hz is not 20 ms"));
        }
        if (audio_kind_ >= 0 && audio_kind_ != kind) {
          // A rate learned from the first audio restarts playout once.
          if (++kind_changes_ > 1) Fail("the audio rate toward Asterisk changed twice");
        }
        audio_kind_ = kind;
      } else if (dialect() == wire::Dialect::kAsterisk) {
        Fail(absl::StrCat("the bridge sent kind ", static_cast<int>(kind),
                          " to stock Asterisk (only audio and hangup)"));
      }
    }
  }
}

void CallHarness::Finish() {
  if (finished_) return;
  finished_ = true;
  if (call_ == nullptr) return;
  Drain();
  ::shutdown(caller_fd_, SHUT_WR);  // EOF toward the call
  RunOnLoop([this] { call_->ReadCallerNowForTesting(); });
  RunOnLoop([] {});
  Drain();
  if (services_->counters.active_calls.load() != 0) {
    Fail(absl::StrCat("active calls is ", services_->counters.active_calls.load(),
                      " after the caller left"));
  }
  if (!services_->registry.List("").empty()) Fail("the call is still registered");
  for (const auto& link : services_->links) {
    if (link->ended() > 1) Fail("the backend got CallEnded twice");
    if (link->after_end() > 0) Fail("the backend got events after CallEnded");
  }
  if (!services_->links.empty() && services_->links.back()->ended() != 1) {
    Fail("the backend's link never got CallEnded");
  }
  // The call closed its socket: reading the caller's end reaches EOF.
  uint8_t byte;
  const ssize_t n = ::read(caller_fd_, &byte, 1);
  if (n != 0) Fail("the call did not close its connection after the caller left");
}

std::vector<uint8_t> UuidMessage(uint8_t seed) {
  std::vector<uint8_t> out = {0x01, 0x00, 0x10};
  for (int i = 0; i < 16; ++i) out.push_back(static_cast<uint8_t>(seed * 31 + i * 17 + 1));
  return out;
}

std::vector<uint8_t> AudioMessage(const CallHarness& harness, int16_t level) {
  const size_t bytes = harness.linear() ? 320 : 160;
  std::vector<uint8_t> out = {0x10, static_cast<uint8_t>(bytes >> 8),
                              static_cast<uint8_t>(bytes & 0xff)};
  for (size_t i = 0; i < bytes; i += harness.linear() ? 2 : 1) {
    out.push_back(static_cast<uint8_t>(level & 0xff));
    if (harness.linear()) out.push_back(static_cast<uint8_t>((level >> 8) & 0xff));
  }
  return out;
}

}  // namespace audiosocket::fuzz
