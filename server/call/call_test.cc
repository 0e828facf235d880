// One real Call in simulated time: a socketpair is the caller's connection,
// a PushConnector over fake links is the backend. Time moves 1 ms at a time
// (SimulatedTimeSource::Advance, then EpollDispatcher::RunOnce), and what
// the call writes to the socket is read back after each step, so every
// frame and event carries the simulated millisecond it appeared at.

#include "server/call/call.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/time_source.h"
#include "lib/wire/wire.h"
#include "server/backend/backend_link.h"
#include "server/call/call_end_notifier.h"
#include "server/call/call_registry.h"
#include "server/call/testing/push_call_services.h"
#include "server/config/config.h"
#include "server/ops/counters.h"
#include "server/ops/log.h"
#include "tests/support/allocation_counter.h"

namespace audiosocket {
namespace {

namespace v1 = ::audiosocket::bridge::v1;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr uint8_t kUuidBytes[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0,
                                    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef};
constexpr char kUuid[] = "12345678-9abc-def0-0123-456789abcdef";

// An event the call sent its backend, and the simulated ms it was sent at.
struct SentEvent {
  int64_t at_ms;
  v1::CallEvent event;
};

// The backend's end of one attempt. The call's loop is the test's thread.
class FakeLink final : public BackendLink {
 public:
  explicit FakeLink(std::function<int64_t()> now_ms) : now_ms_(std::move(now_ms)) {}
  void SendEvent(v1::CallEvent&& event) override {
    events.push_back({now_ms_(), std::move(event)});
  }
  v1::CallEvent SpareAudioEvent() override {
    v1::CallEvent event;
    if (spare.has_value()) event = std::move(*spare);
    spare.reset();
    return event;
  }
  void ExtendAudioQueue(uint64_t audio_events) override { extended += audio_events; }
  void CloseAfterQueued() override { ++closes; }
  void Abort() override { ++aborts; }
  uint64_t dropped_audio_samples() const override { return 0; }
  uint64_t dropped_audio_events() const override { return 0; }

  std::vector<SentEvent> events;
  std::optional<v1::CallEvent> spare;  // handed out once, as a link that keeps written ones
  uint64_t extended = 0;
  int closes = 0;
  int aborts = 0;

 private:
  std::function<int64_t()> now_ms_;
};

// A message the call wrote to the caller, and when.
struct Written {
  int64_t at_ms;
  bool hangup = false;
  int rate_hz = 0;
  std::vector<int16_t> samples;
};

class CallTest : public ::testing::Test {
 protected:
  CallTest()
      : push_([this](uint64_t link_id, std::weak_ptr<LinkObserver>) {
          auto link = std::make_shared<FakeLink>([this] { return Now(); });
          links_.push_back(link);
          link_ids_.push_back(link_id);
          return link;
        }) {
    log::SetMinLevel(log::Level::kError);
    push_.listener.name = "test";
    push_.listener.dialect = wire::Dialect::kAsterisk;
    push_.listener.encoding = v1::AUDIO_ENCODING_LINEAR16;
    push_.listener.default_sample_rate_hz = 8000;
    push_.config.listeners = {push_.listener};
  }

  ~CallTest() override {
    // The caller goes away; the call closes and releases itself.
    if (caller_fd_ >= 0) ::close(caller_fd_);
    std::weak_ptr<Call> gone = call_;
    call_.reset();
    for (int i = 0; i < 100 && !gone.expired(); ++i) {
      time_.Advance(milliseconds(100));
      loop_.RunOnce(event::Nanos(0));
    }
    EXPECT_TRUE(gone.expired()) << "the call did not release itself";
  }

  int64_t Now() const {
    return std::chrono::duration_cast<milliseconds>(time_.Now() - start_).count();
  }

  void StartCall() {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    caller_fd_ = fds[0];
    call_ = std::make_shared<Call>(&loop_, fds[1], &push_.listener, "peer:1", &push_.services);
    call_->Start();
  }

  void SendRaw(const std::vector<uint8_t>& bytes) {
    ASSERT_EQ(::send(caller_fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    last_sent_ms_ = Now();
    Settle();
  }
  void SendUuid() {
    std::vector<uint8_t> bytes = {0x01, 0x00, 0x10};
    bytes.insert(bytes.end(), std::begin(kUuidBytes), std::end(kUuidBytes));
    SendRaw(bytes);
  }
  // One 20 ms frame of `value` at `rate_hz`.
  void SendAudio(int16_t value, int rate_hz = 8000) {
    const std::vector<int16_t> samples(static_cast<size_t>(rate_hz / 50), value);
    std::vector<uint8_t> bytes;
    wire::Audio audio;
    audio.sample_rate_hz = rate_hz;
    audio.payload =
        absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(samples.data()), samples.size() * 2);
    ASSERT_TRUE(wire::Encode(audio, wire::Dialect::kAsterisk, wire::Peer::kServer, &bytes).ok());
    SendRaw(bytes);
  }

  // Runs what is ready now (no time passes) and reads what the call wrote.
  void Settle() {
    for (int i = 0; i < 3; ++i) loop_.RunOnce(event::Nanos(0));
    ReadCaller();
  }
  void StepMs(int64_t ms) {
    for (int64_t i = 0; i < ms; ++i) {
      time_.Advance(milliseconds(1));
      loop_.RunOnce(event::Nanos(0));
      ReadCaller();
    }
  }

  void ReadCaller() {
    while (!caller_eof_) {
      absl::Span<uint8_t> space = decoder_.PrepareWrite(65536);
      const ssize_t n = ::read(caller_fd_, space.data(), space.size());
      if (n == 0) {
        caller_eof_ = true;
        caller_eof_ms_ = Now();
        break;
      }
      if (n < 0) {
        ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << std::strerror(errno);
        break;
      }
      decoder_.Commit(static_cast<size_t>(n));
      while (true) {
        auto next = decoder_.Next();
        ASSERT_TRUE(next.ok()) << next.status();
        if (!next->has_value()) break;
        Written w;
        w.at_ms = Now();
        if (std::holds_alternative<wire::Hangup>(**next)) {
          w.hangup = true;
        } else if (const auto* audio = std::get_if<wire::Audio>(&**next)) {
          w.rate_hz = audio->sample_rate_hz;
          w.samples.resize(audio->payload.size() / 2);
          std::memcpy(w.samples.data(), audio->payload.data(), w.samples.size() * 2);
        } else {
          ADD_FAILURE() << "unexpected kind " << int{wire::KindOf(**next)};
        }
        written_.push_back(std::move(w));
      }
    }
  }

  // How a steady frame's command reaches the call: as a parsed message, or
  // as its bytes for the call to parse (a link on the call's loop).
  enum class Handover { kMessage, kBytes };
  long SteadyFrameAllocations(int frames, bool spare, Handover handover = Handover::kMessage);

  // As a link on the call's loop hands a message over: its bytes.
  bool CommandBytes(const v1::HandleCallResponse& response) {
    return call_->OnBackendCommandBytes(link_ids_.back(), BackendMessageKind::kHandleCallResponse,
                                        response.SerializeAsString());
  }

  // UUID at 0 ms, one audio frame, the dial, and the accept.
  void Connect() {
    StartCall();
    SendUuid();
    SendAudio(7);
    ASSERT_THAT(links_, SizeIs(1));
    Command(AcceptCommand());
  }

  static v1::HandleCallResponse AcceptCommand() {
    v1::HandleCallResponse response;
    response.mutable_accept()->set_command_id("acc");
    return response;
  }

  // As the link does: from "a gRPC thread" (posts to the loop).
  void Command(const v1::HandleCallResponse& response) {
    call_->OnBackendCommand(link_ids_.back(), response);
    Settle();
  }
  void Command(const v1::CallCommand& command) {
    v1::HandleCallResponse response;
    *response.mutable_command() = command;
    Command(response);
  }

  static v1::CallCommand Play(const std::vector<int16_t>& samples, std::string id = "",
                              std::string response = "") {
    v1::CallCommand command;
    command.set_command_id(std::move(id));
    command.mutable_play()->set_pcm(
        std::string(reinterpret_cast<const char*>(samples.data()), samples.size() * 2));
    command.mutable_play()->set_response_id(std::move(response));
    return command;
  }
  // A mark command with `id`, as its link hands it over; `name_bytes` long.
  static v1::HandleCallResponse MarkResponse(std::string id, size_t name_bytes = 1) {
    v1::HandleCallResponse response;
    response.mutable_command()->set_command_id(std::move(id));
    response.mutable_command()->mutable_mark()->set_name(std::string(name_bytes, 'm'));
    return response;
  }
  static v1::CallCommand MarkCommand(std::string name) {
    v1::CallCommand command;
    command.mutable_mark()->set_name(std::move(name));
    return command;
  }

  FakeLink& link() { return *links_.back(); }
  std::vector<v1::CallEvent> EventsOf(v1::CallEvent::EventCase kind) {
    std::vector<v1::CallEvent> out;
    for (const SentEvent& sent : link().events) {
      if (sent.event.event_case() == kind) out.push_back(sent.event);
    }
    return out;
  }
  // The command ids of the results sent to the backend, and "ended" where
  // the call's end was sent, in the order sent.
  std::vector<std::string> ResultsThenEnded() {
    std::vector<std::string> order;
    for (const SentEvent& sent : link().events) {
      if (sent.event.has_result()) order.push_back(sent.event.result().command_id());
      if (sent.event.has_ended()) order.push_back("ended");
    }
    return order;
  }
  // Runs the loop until the call has sent `count` results; their command
  // ids, in order.
  std::vector<std::string> ResultIdsOnceThereAre(size_t count) {
    while (EventsOf(v1::CallEvent::kResult).size() < count) loop_.RunOnce(event::Nanos(0));
    std::vector<std::string> ids;
    for (const v1::CallEvent& event : EventsOf(v1::CallEvent::kResult)) {
      ids.push_back(event.result().command_id());
    }
    return ids;
  }
  // Runs the loop a round at a time, `done` asked after each (at most 20
  // rounds); the events of `kind` sent in each round that sent any, in
  // order.
  std::vector<std::vector<v1::CallEvent>> EventsPerRound(v1::CallEvent::EventCase kind,
                                                         const std::function<bool()>& done) {
    std::vector<std::vector<v1::CallEvent>> rounds;
    for (int round = 0; round < 20; ++round) {
      const size_t seen = link().events.size();
      loop_.RunOnce(event::Nanos(0));
      std::vector<v1::CallEvent> sent;
      for (size_t i = seen; i < link().events.size(); ++i) {
        if (link().events[i].event.event_case() == kind) sent.push_back(link().events[i].event);
      }
      if (!sent.empty()) rounds.push_back(std::move(sent));
      if (done()) break;
    }
    return rounds;
  }
  std::vector<SentEvent> Ended() {
    std::vector<SentEvent> out;
    for (const auto& l : links_) {
      for (const SentEvent& sent : l->events) {
        if (sent.event.has_ended()) out.push_back(sent);
      }
    }
    return out;
  }
  // Messages written from `from_ms` on.
  std::vector<Written> WrittenSince(int64_t from_ms) const {
    std::vector<Written> out;
    for (const Written& w : written_) {
      if (w.at_ms >= from_ms) out.push_back(w);
    }
    return out;
  }
  static bool Silent(const Written& w) {
    if (w.hangup) return false;
    for (int16_t s : w.samples) {
      if (s != 0) return false;
    }
    return true;
  }
  static bool AllAre(const Written& w, int16_t value) {
    if (w.hangup || w.samples.empty()) return false;
    for (int16_t s : w.samples) {
      if (s != value) return false;
    }
    return true;
  }

  event::SimulatedTimeSource time_;
  const event::MonoTime start_ = time_.Now();
  event::EpollDispatcher loop_{&time_};
  PushCallServices push_;
  std::vector<std::shared_ptr<FakeLink>> links_;
  std::vector<uint64_t> link_ids_;
  int caller_fd_ = -1;
  wire::Decoder decoder_{wire::DecoderOptions{.dialect = wire::Dialect::kAsterisk,
                                              .unknown_kinds = wire::UnknownKindPolicy::kReject,
                                              .audio_bytes_per_sample = 2}};
  std::vector<Written> written_;
  bool caller_eof_ = false;
  int64_t caller_eof_ms_ = -1;
  int64_t last_sent_ms_ = 0;
  std::shared_ptr<Call> call_;  // last: goes first
};

TEST_F(CallTest, AfterTheUuidSilenceEvery20Ms) {
  StartCall();
  SendUuid();
  StepMs(200);
  ASSERT_THAT(written_, SizeIs(11));
  for (size_t i = 0; i < written_.size(); ++i) {
    EXPECT_EQ(written_[i].at_ms, static_cast<int64_t>(20 * i)) << i;
    EXPECT_EQ(written_[i].rate_hz, 8000) << i;
    EXPECT_EQ(written_[i].samples.size(), 160u) << i;
    EXPECT_TRUE(Silent(written_[i])) << i;
  }
  EXPECT_EQ(push_.counters.calls_started.load(), 1u);
  ASSERT_THAT(push_.registry.List(""), SizeIs(1));
  EXPECT_EQ(push_.registry.List("")[0].call_id(), kUuid);
  EXPECT_THAT(links_, IsEmpty());  // no backend before the first audio
}

// A call plays on a slot of its loop's ticker, from the UUID to its end.
TEST_F(CallTest, ACallHoldsAPlaceInItsLoopsTickerUntilItEnds) {
  SlotTicker ticker(&loop_);
  push_.services.ticker = &ticker;
  Connect();
  StepMs(50);
  ASSERT_THAT(written_, Not(IsEmpty()));
  const size_t slot = TickSlots::SlotOf(start_ + std::chrono::milliseconds(written_[0].at_ms));
  EXPECT_EQ(ticker.slots().calls_in(slot), 1u);
  EXPECT_EQ(ticker.running_timers(), 1u);
  ASSERT_EQ(::shutdown(caller_fd_, SHUT_WR), 0);
  Settle();
  StepMs(10);
  ASSERT_THAT(Ended(), SizeIs(1));
  EXPECT_EQ(ticker.slots().calls_in(slot), 0u);
  StepMs(20);  // the emptied slot's timer stops at its next point
  EXPECT_EQ(ticker.running_timers(), 0u);
  call_.reset();
  StepMs(5000);
}

TEST_F(CallTest, WithoutAudioTheBackendIsDialledAfterTheFirstAudioWait) {
  push_.config.first_audio_wait = absl::Milliseconds(500);
  StartCall();
  SendUuid();
  StepMs(499);
  EXPECT_THAT(links_, IsEmpty());
  StepMs(1);
  ASSERT_THAT(links_, SizeIs(1));
  EXPECT_EQ(link().events[0].event.started().call_sample_rate_hz(), 8000u);
}

TEST_F(CallTest, FirstAudioDialsAndCallStartedCarriesItsRate) {
  StartCall();
  SendUuid();
  StepMs(30);
  EXPECT_THAT(links_, IsEmpty());
  SendAudio(5, 16000);
  ASSERT_THAT(links_, SizeIs(1));
  EXPECT_THAT(link_ids_, ElementsAre(1u));
  ASSERT_THAT(link().events, SizeIs(1));  // the audio is held until the accept
  const v1::CallStarted& started = link().events[0].event.started();
  EXPECT_EQ(started.call_id(), kUuid);
  EXPECT_EQ(started.listener(), "test");
  EXPECT_EQ(started.dialect(), v1::DIALECT_ASTERISK);
  EXPECT_EQ(started.peer_address(), "peer:1");
  EXPECT_EQ(started.call_sample_rate_hz(), 16000u);
  EXPECT_EQ(started.backend_sample_rate_hz(), 16000u);
  EXPECT_EQ(started.call_encoding(), v1::AUDIO_ENCODING_LINEAR16);
  // Playout moved to the call's real rate (only silence had been played).
  const int64_t from = Now() + 1;
  StepMs(40);
  for (const Written& w : WrittenSince(from)) EXPECT_EQ(w.rate_hz, 16000);
  EXPECT_THAT(WrittenSince(from), SizeIs(2));
}

TEST_F(CallTest, TheAcceptDeliversTheHeldAudioWholeThenLiveAudio) {
  StartCall();
  SendUuid();
  for (int i = 0; i < 20; ++i) {
    SendAudio(static_cast<int16_t>(100 * (i + 1)));
    StepMs(20);
  }
  ASSERT_THAT(links_, SizeIs(1));
  ASSERT_THAT(link().events, SizeIs(1));
  Command(AcceptCommand());
  SendAudio(9999);
  const auto& events = link().events;
  ASSERT_THAT(events, SizeIs(1 + 1 + 21));
  EXPECT_TRUE(events[0].event.has_started());
  const v1::CommandResult& result = events[1].event.result();
  EXPECT_EQ(result.command_id(), "acc");
  EXPECT_EQ(result.code(), v1::RESULT_CODE_OK);
  EXPECT_EQ(result.command(), v1::COMMAND_KIND_ACCEPT);
  EXPECT_EQ(result.backend_sample_rate_hz(), 8000u);
  EXPECT_EQ(link().extended, 20u);  // the held audio is promised whole
  for (int i = 0; i < 21; ++i) {
    const v1::AudioChunk& chunk = events[2 + i].event.audio();
    EXPECT_EQ(chunk.sequence_number(), static_cast<uint64_t>(i));
    EXPECT_EQ(chunk.offset_samples(), static_cast<uint64_t>(160 * i));
    EXPECT_EQ(chunk.sample_rate_hz(), 8000u);
    ASSERT_EQ(chunk.pcm().size(), 320u);
    int16_t first;
    std::memcpy(&first, chunk.pcm().data(), 2);
    EXPECT_EQ(first, i < 20 ? 100 * (i + 1) : 9999) << i;
  }
}

TEST_F(CallTest, PlayAudioIsWrittenFrameByFrameThenSilenceAndTheMarkResolvesOnItsTick) {
  Connect();
  StepMs(5);  // between two ticks
  std::vector<int16_t> first(320);
  for (size_t i = 0; i < first.size(); ++i) first[i] = i < 160 ? 1000 : 2000;
  Command(Play(first));  // no command_id: no result
  Command(Play(std::vector<int16_t>(160, 3000), "p2"));
  Command(MarkCommand("m1"));
  const int64_t queued_at = Now();
  StepMs(120);
  const std::vector<Written> after = WrittenSince(queued_at);
  ASSERT_GE(after.size(), 5u);
  // The next tick on the 20 ms grid, then one frame per tick.
  const int64_t tick = (queued_at / 20 + 1) * 20;
  EXPECT_EQ(after[0].at_ms, tick);
  EXPECT_TRUE(AllAre(after[0], 1000));
  EXPECT_EQ(after[1].at_ms, tick + 20);
  EXPECT_TRUE(AllAre(after[1], 2000));
  EXPECT_EQ(after[2].at_ms, tick + 40);
  EXPECT_TRUE(AllAre(after[2], 3000));
  for (size_t i = 3; i < after.size(); ++i) {
    EXPECT_TRUE(Silent(after[i])) << i;
    EXPECT_EQ(after[i].at_ms, tick + 20 * static_cast<int64_t>(i)) << i;
  }
  // Results: the accept's and p2's only.
  std::vector<std::string> ids;
  for (const auto& event : EventsOf(v1::CallEvent::kResult)) {
    ids.push_back(event.result().command_id());
    EXPECT_EQ(event.result().code(), v1::RESULT_CODE_OK);
  }
  EXPECT_THAT(ids, ElementsAre("acc", "p2"));
  // The mark resolves at the tick that wrote the last frame before it.
  int marks = 0;
  for (const SentEvent& sent : link().events) {
    if (!sent.event.has_mark()) continue;
    ++marks;
    EXPECT_EQ(sent.event.mark().name(), "m1");
    EXPECT_EQ(sent.event.mark().resolution(), v1::MARK_RESOLUTION_PLAYED);
    EXPECT_EQ(sent.at_ms, tick + 40);
  }
  EXPECT_EQ(marks, 1);
}

TEST_F(CallTest, ReportsOfALinkOnTheLoopAreHandledInTheOrderItMadeThem) {
  Connect();
  // All in one round, as a link on the call's loop reports from its read:
  // commands, then its close, then a command it should not have sent.
  call_->OnBackendCommand(link_ids_.back(), MarkResponse("a"));
  call_->OnBackendCommand(link_ids_.back(), MarkResponse("b"));
  call_->OnBackendClosed(link_ids_.back(), grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone"));
  call_->OnBackendCommand(link_ids_.back(), MarkResponse("c"));
  Settle();
  EXPECT_THAT(ResultsThenEnded(), ElementsAre("acc", "a", "b", "ended"));
  ASSERT_THAT(Ended(), SizeIs(1));
  EXPECT_EQ(Ended()[0].event.ended().reason(), v1::CALL_END_REASON_BACKEND_LOST);
}

// A flood of reports (a backend's window holds thousands of commands) is
// acted on a slice per loop round, in order, so the loop's other calls run
// between slices.
TEST_F(CallTest, AFloodOfCommandsIsActedOnASlicePerLoopRound) {
  Connect();
  constexpr int kCommands = 2 * kReportsPerRound + 10;
  for (int i = 0; i < kCommands; ++i) {
    call_->OnBackendCommand(link_ids_.back(), MarkResponse(absl::StrCat("m", i)));
  }
  const auto rounds = EventsPerRound(v1::CallEvent::kResult, [&] {
    return EventsOf(v1::CallEvent::kResult).size() > static_cast<size_t>(kCommands);  // and "acc"
  });
  std::vector<size_t> results_per_round;
  std::vector<std::string> ids;
  for (const auto& round : rounds) {
    results_per_round.push_back(round.size());
    for (const v1::CallEvent& event : round) ids.push_back(event.result().command_id());
  }
  EXPECT_THAT(results_per_round, ElementsAre(kReportsPerRound, kReportsPerRound, 10));
  ASSERT_THAT(ids, SizeIs(kCommands));
  for (int i = 0; i < kCommands; ++i) {
    ASSERT_EQ(ids[i], absl::StrCat("m", i));
  }
  // The queue is empty again: the next command is acted on in its round.
  call_->OnBackendCommand(link_ids_.back(), MarkResponse("next"));
  loop_.RunOnce(event::Nanos(0));
  EXPECT_EQ(link().events.back().event.result().command_id(), "next");
}

TEST_F(CallTest, CommandsPastTheBudgetEndTheCallAfterTheOnesBeforeThem) {
  Connect();
  // Reported before the loop acts on any: 4 MiB each, so the fourth passes
  // the 16 MiB budget. A small one after it fits again, but comes too late.
  const uint64_t errors_before = push_.counters.command_errors.load();
  call_->OnBackendCommand(link_ids_.back(), MarkResponse("a"));
  for (const char* id : {"h1", "h2", "h3", "h4"}) {
    call_->OnBackendCommand(link_ids_.back(), MarkResponse(id, kMaxPendingCommandBytes / 4));
  }
  call_->OnBackendCommand(link_ids_.back(), MarkResponse("b"));
  Settle();
  // h1..h3 are answered (their names pass the queue's own bound: refused);
  // h4 and b are not acted on.
  EXPECT_THAT(ResultsThenEnded(), ElementsAre("acc", "a", "h1", "h2", "h3", "ended"));
  ASSERT_THAT(Ended(), SizeIs(1));
  EXPECT_EQ(Ended()[0].event.ended().reason(), v1::CALL_END_REASON_BACKEND_LOST);
  EXPECT_THAT(Ended()[0].event.ended().detail(), ::testing::HasSubstr("more than 16 MiB"));
  EXPECT_EQ(push_.counters.command_errors.load() - errors_before, 4u);
}

// Allocations of the call's own work over `frames` steady 20 ms steps, each
// a caller frame in, one frame of a response from the backend (built
// beforehand, moved in as a link hands it over) and the tick that plays a
// frame out. With `spare`, the link hands the call an emptied audio event
// each frame, as links that keep written events do.
long CallTest::SteadyFrameAllocations(int frames, bool spare, Handover handover) {
  link().events.reserve(1000);  // the fake's own storage, not the call's
  const std::vector<int16_t> samples(160, 1234);
  std::vector<uint8_t> frame;
  wire::Audio audio;
  audio.sample_rate_hz = 8000;
  audio.payload =
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(samples.data()), samples.size() * 2);
  EXPECT_TRUE(wire::Encode(audio, wire::Dialect::kAsterisk, wire::Peer::kServer, &frame).ok());
  auto step = [&]() -> long {
    v1::HandleCallResponse response;
    *response.mutable_command() = Play(samples, "", "r");
    const std::string bytes = response.SerializeAsString();
    if (spare) {
      link().spare.emplace();
      link().spare->mutable_audio()->mutable_pcm()->reserve(320);
    }
    EXPECT_EQ(::send(caller_fd_, frame.data(), frame.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(frame.size()));
    const long before = testing::AllocationCount();
    loop_.RunOnce(event::Nanos(0));
    if (handover == Handover::kBytes) {
      EXPECT_TRUE(call_->OnBackendCommandBytes(link_ids_.back(),
                                               BackendMessageKind::kHandleCallResponse, bytes));
    } else {
      call_->OnBackendCommand(link_ids_.back(), std::move(response));
    }
    loop_.RunOnce(event::Nanos(0));
    for (int ms = 0; ms < 20; ms += 5) {
      time_.Advance(milliseconds(5));
      loop_.RunOnce(event::Nanos(0));
    }
    const long made = testing::AllocationCount() - before;
    ReadCaller();
    return made;
  };
  for (int i = 0; i < 50; ++i) step();  // queues and scratch reach their size
  const size_t frames_before = written_.size();
  const size_t events_before = EventsOf(v1::CallEvent::kAudio).size();
  long allocations = 0;
  for (int i = 0; i < frames; ++i) allocations += step();
  EXPECT_EQ(written_.size() - frames_before, static_cast<size_t>(frames));
  EXPECT_TRUE(AllAre(written_.back(), 1234));
  EXPECT_EQ(EventsOf(v1::CallEvent::kAudio).size() - events_before, static_cast<size_t>(frames));
  EXPECT_EQ(link().events.back().event.audio().pcm().size(), 320u);
  return allocations;
}

TEST_F(CallTest, ASteadyFrameEachWayAllocatesOnlyTheAudioEventSentToTheBackend) {
  Connect();
  constexpr int kFrames = 200;
  const long allocations = SteadyFrameAllocations(kFrames, /*spare=*/false);
  // Per frame: the audio event's chunk, the chunk's bytes and their string
  // (the link takes the event by value). Per four frames: the playout
  // queue's deque taking a new block (libstdc++ blocks are 512 bytes, four
  // items). Nothing else: no closure per task, no temporary string, no
  // sample vector per played item.
  EXPECT_LE(allocations, 3 * kFrames + kFrames / 4)
      << static_cast<double>(allocations) / kFrames << " allocations per frame";
}

TEST_F(CallTest, ASteadyFrameFillsTheAudioEventTheLinkHandsBack) {
  Connect();
  constexpr int kFrames = 200;
  const long allocations = SteadyFrameAllocations(kFrames, /*spare=*/true);
  // Only the playout queue's deque block per four frames.
  EXPECT_LE(allocations, kFrames / 4)
      << static_cast<double>(allocations) / kFrames << " allocations per frame";
}

TEST_F(CallTest, ASteadyFramePlayedFromBytesAllocatesNothingForItsCommand) {
  Connect();
  constexpr int kFrames = 200;
  const long allocations = SteadyFrameAllocations(kFrames, /*spare=*/true, Handover::kBytes);
  // The play is read from its bytes, copied where the call keeps them until
  // handled, not parsed into messages and strings. Only the playout queue's
  // deque block per four frames.
  EXPECT_LE(allocations, kFrames / 4)
      << static_cast<double>(allocations) / kFrames << " allocations per frame";
}

TEST_F(CallTest, PlaysHandedOverAsBytesPlayInOrderAmongTheOtherCommands) {
  Connect();
  StepMs(5);  // between two ticks
  const auto response = [](v1::CallCommand command) {
    v1::HandleCallResponse response;
    *response.mutable_command() = std::move(command);
    return response;
  };
  std::vector<int16_t> first(320);
  for (size_t i = 0; i < first.size(); ++i) first[i] = i < 160 ? 1000 : 2000;
  EXPECT_TRUE(CommandBytes(response(Play(first, "p1", "r"))));
  call_->OnBackendCommand(link_ids_.back(), MarkResponse("m"));
  EXPECT_TRUE(CommandBytes(response(Play(std::vector<int16_t>(160, 3000), "p2", "r"))));
  v1::CallCommand odd = Play({}, "odd");
  odd.mutable_play()->set_pcm("\x01");
  EXPECT_TRUE(CommandBytes(response(odd)));
  v1::CallCommand rate = Play(std::vector<int16_t>(160, 4000), "rate");
  rate.mutable_play()->set_sample_rate_hz(11025);
  EXPECT_TRUE(CommandBytes(response(rate)));
  const int64_t queued_at = Now();
  StepMs(100);
  const std::vector<Written> after = WrittenSince(queued_at);
  ASSERT_GE(after.size(), 4u);
  EXPECT_TRUE(AllAre(after[0], 1000));
  EXPECT_TRUE(AllAre(after[1], 2000));
  EXPECT_TRUE(AllAre(after[2], 3000));
  EXPECT_TRUE(Silent(after[3]));
  std::vector<std::pair<std::string, v1::ResultCode>> results;
  for (const auto& event : EventsOf(v1::CallEvent::kResult)) {
    results.emplace_back(event.result().command_id(), event.result().code());
    if (event.result().command_id() == "odd") {
      EXPECT_THAT(event.result().message(), ::testing::HasSubstr("pcm has 1 bytes"));
    }
    if (event.result().command() != v1::COMMAND_KIND_ACCEPT && event.result().command_id() != "m") {
      EXPECT_EQ(event.result().command(), v1::COMMAND_KIND_PLAY);
    }
  }
  EXPECT_THAT(results,
              ElementsAre(std::pair("acc", v1::RESULT_CODE_OK), std::pair("p1", v1::RESULT_CODE_OK),
                          std::pair("m", v1::RESULT_CODE_OK), std::pair("p2", v1::RESULT_CODE_OK),
                          std::pair("odd", v1::RESULT_CODE_INVALID_ARGUMENT),
                          std::pair("rate", v1::RESULT_CODE_INVALID_ARGUMENT)));
}

TEST_F(CallTest, APlayHandedOverAsBytesBeforeTheAcceptIsRefused) {
  StartCall();
  SendUuid();
  SendAudio(7);
  ASSERT_THAT(links_, SizeIs(1));
  v1::HandleCallResponse early;
  *early.mutable_command() = Play(std::vector<int16_t>(160, 1000), "early");
  EXPECT_TRUE(CommandBytes(early));
  Settle();
  const std::vector<v1::CallEvent> results = EventsOf(v1::CallEvent::kResult);
  ASSERT_THAT(results, SizeIs(1));
  EXPECT_EQ(results[0].result().command_id(), "early");
  EXPECT_EQ(results[0].result().command(), v1::COMMAND_KIND_PLAY);
  EXPECT_EQ(results[0].result().code(), v1::RESULT_CODE_FAILED_PRECONDITION);
}

// As CommandsKeptWaitingDoNotGrowTheArenaPastItsBound, for the copies of
// play commands read from their bytes.
TEST_F(CallTest, PlaysKeptWaitingDoNotGrowTheirCopiesPastTheBound) {
  Connect();
  constexpr int kCommands = 4000;  // 1.3 MB of plays, far more than the bound
  const std::vector<int16_t> samples(160, 1000);
  for (int i = 0; i < kCommands; ++i) {
    v1::HandleCallResponse play;
    *play.mutable_command() = Play(samples, absl::StrCat("p", i));
    ASSERT_TRUE(CommandBytes(play));
  }
  EXPECT_LE(call_->PlayBytesCapacityForTesting(), kMaxCommandArenaBytes);
  EXPECT_GT(call_->PlayBytesCapacityForTesting(), kMaxCommandArenaBytes / 2);
  const std::vector<std::string> ids = ResultIdsOnceThereAre(kCommands + 1);
  ASSERT_THAT(ids, SizeIs(kCommands + 1));
  for (int i = 0; i < kCommands; ++i) ASSERT_EQ(ids[i + 1], absl::StrCat("p", i));
  // Emptied once all were handled, and the burst's room given back.
  EXPECT_LE(call_->PlayBytesCapacityForTesting(), 4096u);
}

// Commands a link on the loop hands over as bytes are acted on in the order
// reported, among those handed over parsed; the arena they were parsed
// into is emptied between rounds and used again.
TEST_F(CallTest, CommandsHandedOverAsBytesKeepTheirPlaceAmongTheOthers) {
  Connect();
  EXPECT_TRUE(CommandBytes(MarkResponse("a")));
  call_->OnBackendCommand(link_ids_.back(), MarkResponse("b"));
  EXPECT_TRUE(CommandBytes(MarkResponse("c", 3000)));  // past the arena's first block
  Settle();
  EXPECT_TRUE(CommandBytes(MarkResponse("d")));
  Settle();
  EXPECT_THAT(ResultsThenEnded(), ElementsAre("acc", "a", "b", "c", "d"));
}

// A backend that keeps commands waiting round after round keeps the arena
// from being emptied: past its bound, commands are parsed on the heap, in
// their place among the others, and the arena stops growing.
TEST_F(CallTest, CommandsKeptWaitingDoNotGrowTheArenaPastItsBound) {
  Connect();
  constexpr int kCommands = 4000;  // far more than the bound holds
  for (int i = 0; i < kCommands; ++i) {
    ASSERT_TRUE(CommandBytes(MarkResponse(absl::StrCat("m", i), 64)));
  }
  // One message's worth over the bound at most (the last one let in).
  EXPECT_LE(call_->CommandArenaBytesForTesting(), kMaxCommandArenaBytes + 8192);
  const std::vector<std::string> ids = ResultIdsOnceThereAre(kCommands + 1);
  ASSERT_THAT(ids, SizeIs(kCommands + 1));
  for (int i = 0; i < kCommands; ++i) ASSERT_EQ(ids[i + 1], absl::StrCat("m", i));
  // Emptied once all were handled.
  EXPECT_LE(call_->CommandArenaBytesForTesting(), 1024u);
}

TEST_F(CallTest, BytesThatAreNotTheMessageAreRefusedAndLeaveTheBudgetAsItWas) {
  Connect();
  // A message cut short: its last field's length runs past the end.
  std::string broken = MarkResponse("x", 1000).SerializeAsString();
  broken.pop_back();
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(call_->OnBackendCommandBytes(link_ids_.back(),
                                              BackendMessageKind::kHandleCallResponse, broken));
  }
  // Three commands of a third of the budget each still fit: the refused
  // bytes were given back.
  for (const char* id : {"h1", "h2", "h3"}) {
    EXPECT_TRUE(CommandBytes(MarkResponse(id, kMaxPendingCommandBytes / 3 - 64)));
  }
  Settle();
  EXPECT_THAT(ResultsThenEnded(), ElementsAre("acc", "h1", "h2", "h3"));
  EXPECT_THAT(Ended(), IsEmpty());
}

TEST_F(CallTest, CommandBytesPastTheBudgetEndTheCallAfterTheOnesBeforeThem) {
  Connect();
  EXPECT_TRUE(CommandBytes(MarkResponse("a")));
  for (const char* id : {"h1", "h2", "h3", "h4"}) {
    EXPECT_TRUE(CommandBytes(MarkResponse(id, kMaxPendingCommandBytes / 4)));
  }
  EXPECT_TRUE(CommandBytes(MarkResponse("b")));
  Settle();
  EXPECT_THAT(ResultsThenEnded(), ElementsAre("acc", "a", "h1", "h2", "h3", "ended"));
  ASSERT_THAT(Ended(), SizeIs(1));
  EXPECT_EQ(Ended()[0].event.ended().reason(), v1::CALL_END_REASON_BACKEND_LOST);
  EXPECT_THAT(Ended()[0].event.ended().detail(), ::testing::HasSubstr("more than 16 MiB"));
}

TEST_F(CallTest, ClearAnswersWithClearResultThenTheMarkCleared) {
  Connect();
  StepMs(5);
  Command(Play(std::vector<int16_t>(8000, 500), "p", "r1"));  // 1 s
  Command(MarkCommand("m1"));
  const int64_t queued_at = Now();
  StepMs(100);
  v1::CallCommand clear;
  clear.set_command_id("c1");
  clear.mutable_clear();
  Command(clear);
  const int64_t cleared_at = Now();
  int played_frames = 0;
  for (const Written& w : WrittenSince(queued_at)) played_frames += AllAre(w, 500) ? 1 : 0;
  EXPECT_EQ(played_frames, 5);

  // ClearResult, then the mark it resolved.
  std::vector<const v1::CallEvent*> tail;
  for (const SentEvent& sent : link().events) {
    if (sent.event.has_cleared() || sent.event.has_mark()) tail.push_back(&sent.event);
  }
  ASSERT_THAT(tail, SizeIs(2));
  const v1::ClearResult& cleared = tail[0]->cleared();
  EXPECT_EQ(cleared.command_id(), "c1");
  ASSERT_EQ(cleared.responses_size(), 1);
  EXPECT_EQ(cleared.responses(0).response_id(), "r1");
  EXPECT_EQ(cleared.responses(0).played_ms(), static_cast<uint32_t>(20 * played_frames));
  EXPECT_EQ(cleared.responses(0).discarded_ms(), static_cast<uint32_t>(1000 - 20 * played_frames));
  EXPECT_EQ(cleared.discarded_ms(), static_cast<uint32_t>(1000 - 20 * played_frames));
  EXPECT_EQ(tail[1]->mark().name(), "m1");
  EXPECT_EQ(tail[1]->mark().resolution(), v1::MARK_RESOLUTION_CLEARED);

  StepMs(60);
  const std::vector<Written> after = WrittenSince(cleared_at + 1);
  ASSERT_THAT(after, SizeIs(3));
  for (const Written& w : after) EXPECT_TRUE(Silent(w));
}

TEST_F(CallTest, CallerEofEndsTheCallOnceAndClosesTheSocket) {
  Connect();
  StepMs(50);
  ASSERT_EQ(::shutdown(caller_fd_, SHUT_WR), 0);
  Settle();
  StepMs(10);
  ASSERT_THAT(Ended(), SizeIs(1));
  EXPECT_EQ(Ended()[0].event.ended().reason(), v1::CALL_END_REASON_CALLER_HUNG_UP);
  EXPECT_EQ(push_.counters.calls_ended[v1::CALL_END_REASON_CALLER_HUNG_UP].load(), 1u);
  EXPECT_EQ(push_.counters.active_calls.load(), 0);
  EXPECT_THAT(push_.registry.List(""), IsEmpty());
  EXPECT_EQ(link().closes, 1);
  EXPECT_TRUE(caller_eof_);  // closed, without a hang-up message
  for (const Written& w : written_) EXPECT_FALSE(w.hangup);
  // The call released itself; a backend that never finishes is abandoned.
  std::weak_ptr<Call> gone = call_;
  call_.reset();
  StepMs(5000);
  EXPECT_TRUE(gone.expired());
  EXPECT_EQ(link().aborts, 1);
  EXPECT_THAT(Ended(), SizeIs(1));
}

// Marks still queued when the call ends resolve CALL_ENDED a slice per
// loop round, in the order queued, so the loop's other calls run between
// slices; the CallEnded comes after the last, then the stream's close.
TEST_F(CallTest, MarksLeftAtTheEndResolveASlicePerLoopRoundThenCallEnded) {
  Connect();
  Command(Play(std::vector<int16_t>(8000, 500)));  // 1 s: the marks wait behind it
  constexpr int kMarks = 2 * CallEndNotifier::kPerRound + 100;
  for (int i = 0; i < kMarks; ++i) Command(MarkCommand(absl::StrCat("m", i)));
  ASSERT_THAT(EventsOf(v1::CallEvent::kMark), IsEmpty());

  ASSERT_EQ(::shutdown(caller_fd_, SHUT_WR), 0);
  const auto rounds = EventsPerRound(v1::CallEvent::kMark, [&] {
    if (!Ended().empty()) return true;
    EXPECT_EQ(link().closes, 0) << "closed before the CallEnded";
    return false;
  });
  std::vector<size_t> marks_per_round;
  std::vector<std::string> names;
  for (const auto& round : rounds) {
    marks_per_round.push_back(round.size());
    for (const v1::CallEvent& event : round) {
      names.push_back(event.mark().name());
      EXPECT_EQ(event.mark().resolution(), v1::MARK_RESOLUTION_CALL_ENDED);
    }
  }
  // The audio ahead of the marks takes one place in the first slice.
  EXPECT_THAT(marks_per_round,
              ElementsAre(CallEndNotifier::kPerRound - 1, CallEndNotifier::kPerRound, 101));
  ASSERT_THAT(names, SizeIs(kMarks));
  for (int i = 0; i < kMarks; ++i) {
    ASSERT_EQ(names[i], absl::StrCat("m", i));
  }
  ASSERT_THAT(Ended(), SizeIs(1));
  EXPECT_TRUE(link().events.back().event.has_ended());
  EXPECT_EQ(link().closes, 1);
  EXPECT_EQ(link().aborts, 0);
  StepMs(5000);
  EXPECT_EQ(link().aborts, 1);  // the backend never finished its stream
}

TEST_F(CallTest, ACallerThatSendsNothingEndsCallerIdle) {
  push_.config.caller_idle_timeout = absl::Seconds(2);
  Connect();
  const int64_t last = last_sent_ms_;
  StepMs(last + 1999 - Now());
  EXPECT_THAT(Ended(), IsEmpty());
  StepMs(2);
  ASSERT_THAT(Ended(), SizeIs(1));
  EXPECT_EQ(Ended()[0].event.ended().reason(), v1::CALL_END_REASON_CALLER_IDLE);
  EXPECT_EQ(Ended()[0].at_ms, last + 2000);
  ASSERT_FALSE(written_.empty());
  EXPECT_TRUE(written_.back().hangup);
}

TEST_F(CallTest, BackendHangupAfterPlayoutHangsUpAfterTheQueuedAudio) {
  Connect();
  StepMs(5);
  Command(Play(std::vector<int16_t>(800, 1234)));  // 5 frames
  v1::CallCommand hangup;
  hangup.mutable_hangup()->set_after_playout(true);
  Command(hangup);
  const int64_t queued_at = Now();
  StepMs(90);
  EXPECT_THAT(Ended(), IsEmpty());  // still playing
  StepMs(100);
  const std::vector<Written> after = WrittenSince(queued_at);
  ASSERT_THAT(after, SizeIs(6));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(AllAre(after[i], 1234)) << i;
  EXPECT_TRUE(after[5].hangup);
  EXPECT_EQ(after[5].at_ms, after[4].at_ms);  // right after the last frame
  ASSERT_THAT(Ended(), SizeIs(1));
  EXPECT_EQ(Ended()[0].event.ended().reason(), v1::CALL_END_REASON_BACKEND_HUNG_UP);
  EXPECT_EQ(Ended()[0].at_ms, after[4].at_ms);
  EXPECT_EQ(push_.counters.calls_ended[v1::CALL_END_REASON_BACKEND_HUNG_UP].load(), 1u);
  EXPECT_TRUE(caller_eof_);  // the call half-closed after its hang-up
}

TEST_F(CallTest, NoUuidInTimeClosesTheConnection) {
  push_.config.uuid_timeout = absl::Seconds(5);
  StartCall();
  StepMs(4999);
  EXPECT_FALSE(caller_eof_);
  EXPECT_THAT(written_, IsEmpty());
  StepMs(1);
  EXPECT_TRUE(caller_eof_);
  EXPECT_EQ(caller_eof_ms_, 5000);
  EXPECT_EQ(push_.counters.connections_rejected_uuid_timeout.load(), 1u);
  EXPECT_EQ(push_.counters.calls_started.load(), 0u);
  EXPECT_THAT(links_, IsEmpty());
  EXPECT_THAT(written_, IsEmpty());
}

}  // namespace
}  // namespace audiosocket
