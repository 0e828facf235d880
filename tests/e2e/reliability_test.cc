// Reliability under faults and bad input (docs/RELIABILITY.md): the
// real bridge binary, the real audiosocket-call emulator for healthy and
// faulty callers, scripted backends in both modes. Every case asserts the
// faulty call's reason and counters and that calls beside it lose nothing.
// Outcomes and counts are asserted, never timings (the machine is loaded).

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/audio/wav.h"
#include "tests/support/bridge_fixture.h"
#include "tests/support/bridge_process.h"
#include "tests/support/fake_asterisk.h"
#include "tests/support/loopback.h"
#include "tests/support/test_backends.h"

namespace audiosocket::testing {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::audiosocket::bridge::v1;

constexpr char kUuid2[] = "9b2f1c3e-7d4a-4e5b-8c6d-0123456789ab";

// Under ThreadSanitizer or AddressSanitizer (SUITES="asan tsan") every
// process runs several times slower: the 2-core machine cannot carry 50
// real-time calls plus a synchronous test backend, so the healthy load is
// smaller there and pacing (frames received per 20 ms) is not asserted;
// counts still are. The cpp suite asserts the full load and the pacing.
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
constexpr int Load(int calls) { return kSanitized ? std::max(2, calls / 10) : calls; }
// The test's own backend shares the machine with the bridge and the callers:
// slowed by a sanitizer, or starved on a loaded machine, it falls behind in
// bursts of more than the default second of queued caller audio. The bridge
// may queue 10 s toward it here, so "nothing lost" keeps meaning the bridge
// lost nothing.
constexpr const char* kBackendQueueFlag = "--backend_queue_ms=10000";

// A number field of audiosocket-call's JSON summary, or -1.
int64_t Field(const std::string& json, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + name + "\":(\\d+)"))) return -1;
  return std::stoll(m[1]);
}

std::string StringField(const std::string& json, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + name + "\":\"([^\"]*)\""))) return "";
  return m[1];
}

// Resident set size of a process in kB (VmRSS), or -1.
int64_t RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

int CountLines(const BridgeProcess& bridge, const std::string& a, const std::string& b) {
  int n = 0;
  std::istringstream in(bridge.Output());
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(a) != std::string::npos && line.find(b) != std::string::npos) ++n;
  }
  return n;
}

// audiosocket-call as a child process; the summary goes to a file.
class Caller {
 public:
  Caller(int port, const std::string& name, std::vector<std::string> flags)
      : summary_(TempPath(name + ".json")) {
    std::vector<std::string> argv = {RunfilePath("tools/audiosocket-call/audiosocket-call"),
                                     absl::StrCat("--target=127.0.0.1:", port),
                                     "--summary=" + summary_, "--log_messages=false"};
    argv.insert(argv.end(), flags.begin(), flags.end());
    process_ = std::make_unique<Subprocess>(argv);
  }
  // Waits for the exit; the summary ("" on timeout).
  std::string Finish(absl::Duration timeout) {
    if (!process_->Wait(timeout).has_value()) return "";
    return ReadFile(summary_);
  }
  std::string Output() const { return process_->Output(); }

 private:
  std::string summary_;
  std::unique_ptr<Subprocess> process_;
};

// A push backend that accepts every call and hands it, with its
// CallStarted, to `serve` on a thread of its own. Its owner declares it
// last: destroyed first, it stops and joins those threads before the state
// `serve` uses goes away.
class AcceptingBackend {
 public:
  using Serve =
      std::function<void(std::shared_ptr<BackendCall> call, const v1::CallStarted& started)>;

  explicit AcceptingBackend(Serve serve) : serve_(std::move(serve)), acceptor_([this] { Run(); }) {}
  ~AcceptingBackend() {
    stop_ = true;
    acceptor_.join();
    for (auto& t : workers_) t.join();
  }
  std::string target() const { return backend_.target(); }
  int accepted() const { return accepted_.load(); }
  // Set once the backend is being destroyed: `serve` should return.
  bool stopping() const { return stop_.load(); }

 private:
  void Run() {
    while (!stop_) {
      auto call = backend_.NextCall(absl::Milliseconds(100));
      if (call != nullptr) workers_.emplace_back([this, call] { Accept(call); });
    }
  }
  void Accept(std::shared_ptr<BackendCall> call) {
    auto started = call->Next(kWait);
    if (!started.has_value() || !started->has_started() || !call->Accept()) return;
    accepted_++;
    serve_(std::move(call), started->started());
  }

  const Serve serve_;
  PushBackend backend_;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::vector<std::thread> workers_;  // acceptor thread only, then the destructor
  std::thread acceptor_;
};

// A push backend that accepts every call, reads everything and counts the
// caller audio per call and the reasons calls ended with.
class CountingBackend {
 public:
  std::string target() const { return backend_.target(); }
  int accepted() const { return backend_.accepted(); }
  int ended() const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(reasons_.size());
  }
  uint64_t samples() const { return samples_.load(); }
  int ended_with(v1::CallEndReason reason) const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(std::count(reasons_.begin(), reasons_.end(), reason));
  }
  // Caller audio samples of the calls that ended with this detail.
  uint64_t samples_of_calls_ended(const std::string& detail) const {
    absl::MutexLock lock(&mu_);
    uint64_t total = 0;
    for (const auto& [d, n] : samples_by_detail_) total += d == detail ? n : 0;
    return total;
  }
  bool WaitAccepted(int n, absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (accepted() < n && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
    return accepted() >= n;
  }
  bool WaitEnded(int n, absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (ended() < n && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
    return ended() >= n;
  }

 private:
  void Serve(BackendCall& call) {
    uint64_t call_samples = 0;
    while (true) {
      auto event = call.Next(absl::Milliseconds(200));
      if (!event.has_value()) {
        if (backend_.stopping() || call.stream_ended()) return;
        continue;
      }
      if (event->has_audio()) {
        samples_ += event->audio().pcm().size() / 2;
        call_samples += event->audio().pcm().size() / 2;
      }
      if (event->has_ended()) {
        {
          absl::MutexLock lock(&mu_);
          reasons_.push_back(event->ended().reason());
          samples_by_detail_.emplace_back(event->ended().detail(), call_samples);
        }
        call.CloseWrites();  // as a real backend: the stream is over
        return;
      }
    }
  }

  std::atomic<uint64_t> samples_{0};
  mutable absl::Mutex mu_;
  std::vector<v1::CallEndReason> reasons_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<std::string, uint64_t>> samples_by_detail_ ABSL_GUARDED_BY(mu_);
  AcceptingBackend backend_{
      [this](std::shared_ptr<BackendCall> call, const v1::CallStarted&) { Serve(*call); }};
};

// Healthy calls beside a fault: every call ended as asked, every frame sent
// reached the backend, and the caller received one frame per 20 ms (the
// bridge's silence), within a few frames at the start and end of each call.
constexpr char kHangupDetail[] = "Asterisk sent hangup (0x00)";

// Sum of `field` (frames_in, frames_out) over the bridge's call_ended lines
// with this detail.
int64_t SumOfCallsEnded(const BridgeProcess& bridge, const std::string& detail,
                        const std::string& field) {
  int64_t total = 0;
  std::istringstream in(bridge.Output());
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"call_ended\"") == std::string::npos ||
        line.find("\"detail\":\"" + detail + "\"") == std::string::npos) {
      continue;
    }
    total += std::max<int64_t>(0, Field(line, field));
  }
  return total;
}

void ExpectHealthy(const std::string& summary, int calls, const CountingBackend& backend,
                   BridgeProcess& bridge, int other_hung_up = 0) {
  ASSERT_FALSE(summary.empty()) << "healthy callers did not finish";
  EXPECT_EQ(Field(summary, "calls"), calls) << summary;
  EXPECT_EQ(Field(summary, "ok"), calls) << summary;
  EXPECT_EQ(Field(summary, "failed"), 0) << summary;
  EXPECT_EQ(StringField(summary, "ended"), "hangup_sent") << summary;
  const int64_t sent = Field(summary, "frames_sent");
  const int64_t received = Field(summary, "frames_received");
  EXPECT_GT(sent, calls * 50) << summary;  // at least a second each
  const absl::Time deadline = absl::Now() + kWait;
  while (backend.ended_with(v1::CALL_END_REASON_CALLER_HUNG_UP) < calls + other_hung_up &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(backend.ended_with(v1::CALL_END_REASON_CALLER_HUNG_UP), calls + other_hung_up);
  // The bridge logs each end before its backend hears of it, but the test
  // reads the log through a pipe, which a loaded machine may leave behind.
  EXPECT_TRUE(bridge.process().WaitForLines(absl::StrCat("\"detail\":\"", kHangupDetail, "\""),
                                            calls, kWait));
  // Not a frame lost: every frame the healthy callers sent reached the
  // bridge and, as 160 samples, the backend.
  EXPECT_EQ(SumOfCallsEnded(bridge, kHangupDetail, "frames_in"), sent);
  // Every frame the bridge wrote reached the caller, but for the few in
  // flight when each caller hung up. How many the bridge wrote depends on
  // the machine keeping its 20 ms ticks (a starved loop skips late ticks
  // rather than bursting): that is measured by the benchmarks, so here
  // only a bridge that stopped pacing altogether fails.
  const int64_t written = SumOfCallsEnded(bridge, kHangupDetail, "frames_out");
  EXPECT_GE(written, received) << summary;
  EXPECT_LE(written - received, calls * 5) << summary;
  EXPECT_GT(received, sent / 2) << summary;

  EXPECT_EQ(backend.samples_of_calls_ended(kHangupDetail), static_cast<uint64_t>(sent) * 160);
  std::cout << "figures: healthy calls " << calls << ", frames sent " << sent << ", received "
            << received << ", at the backend "
            << backend.samples_of_calls_ended(kHangupDetail) / 160 << "\n";
}

// ------------------------------------------------------ AudioSocket faults

struct FaultCase {
  std::string fault;   // audiosocket-call --fault, or "abrupt_close"
  std::string event;   // bridge log event of the faulty connection
  std::string needle;  // what the log line names
  std::string metric;  // the counter that moves by one
};

void PrintTo(const FaultCase& c, std::ostream* os) { *os << c.fault; }

class AudioSocketFaultTest : public ::testing::TestWithParam<FaultCase> {};

std::string CaseName(const ::testing::TestParamInfo<FaultCase>& info) {
  std::string name = info.param.fault;
  name.erase(std::remove(name.begin(), name.end(), '_'), name.end());
  return name;
}

constexpr char kProtocolErrors[] = "audiosocket_bridge_protocol_errors_total";
constexpr char kRejectedProtocol[] =
    "audiosocket_bridge_connections_rejected_total{reason=\"protocol_error\"}";

INSTANTIATE_TEST_SUITE_P(
    Faults, AudioSocketFaultTest,
    ::testing::Values(
        FaultCase{"truncated_header", "call_ended", "PROTOCOL_ERROR", kProtocolErrors},
        FaultCase{"short_payload", "call_ended", "PROTOCOL_ERROR", kProtocolErrors},
        FaultCase{"oversized_length", "call_ended", "PROTOCOL_ERROR", kProtocolErrors},
        FaultCase{"garbage", "call_ended", "PROTOCOL_ERROR", kProtocolErrors},
        FaultCase{"no_uuid", "connection_closed", "uuid_timeout",
                  "audiosocket_bridge_connections_rejected_total{reason=\"uuid_timeout\"}"},
        FaultCase{"bad_uuid_length", "connection_closed", "protocol_error", kRejectedProtocol},
        FaultCase{"odd_audio", "call_ended", "PROTOCOL_ERROR", kProtocolErrors},
        FaultCase{"flood", "call_ended", "PROTOCOL_ERROR", kProtocolErrors},
        FaultCase{"abrupt_close", "call_ended", "CALLER_HUNG_UP",
                  "audiosocket_bridge_calls_ended_total{reason=\"caller_hung_up\"}"}),
    CaseName);

TEST_P(AudioSocketFaultTest, FaultyCallEndsAndFiftyHealthyCallsLoseNothing) {
  const FaultCase& c = GetParam();
  constexpr int kHealthy = Load(50);
  CountingBackend backend;
  BridgeProcess bridge({"--backend=" + backend.target(), "--listen=127.0.0.1:0",
                        "--first_audio_wait=100ms", "--uuid_timeout=1s", kBackendQueueFlag});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  Caller healthy(bridge.audiosocket_port(), "healthy",
                 {absl::StrCat("--calls=", kHealthy), "--ramp=100", "--duration=4s"});
  ASSERT_TRUE(backend.WaitAccepted(kHealthy, kWait)) << bridge.Output();
  const double before = std::max(0.0, bridge.Metric(c.metric));
  std::vector<std::string> flags = {"--duration=2s", "--linger=3s"};
  if (c.fault == "abrupt_close") {
    flags.push_back("--end=close");
    flags.push_back("--duration=500ms");
  } else {
    flags.push_back("--fault=" + c.fault);
  }
  Caller faulty(bridge.audiosocket_port(), "faulty", flags);
  const std::string fault_summary = faulty.Finish(absl::Seconds(20));
  ASSERT_FALSE(fault_summary.empty()) << faulty.Output();
  auto line = bridge.WaitForEvent(c.event, c.needle);
  ASSERT_TRUE(line.has_value()) << bridge.Output();
  if (c.needle == "PROTOCOL_ERROR") {
    EXPECT_THAT(*line, HasSubstr("\"detail\"")) << *line;
  }
  // The connection was closed by the bridge (or by the caller, abrupt_close).
  const std::string ended = StringField(fault_summary, "ended");
  if (c.fault == "abrupt_close") {
    EXPECT_EQ(ended, "closed") << fault_summary;
  } else if (kSanitized && ended == "timeout") {
    // Too slow to tell here; the log line and the counter above hold.
  } else if (ended == "closed") {
    // It half-closed first (truncated_header, short_payload): the bridge
    // answered with its hang-up and closed well before the 3 s linger.
    EXPECT_LT(Field(fault_summary, "wall_time_ms"), 3000) << fault_summary;
    EXPECT_GT(Field(fault_summary, "bytes_received"), 0) << fault_summary;
  } else {
    EXPECT_TRUE(ended == "remote_closed" || ended == "remote_hangup") << fault_summary;
  }
  EXPECT_EQ(bridge.Metric(c.metric), before + 1) << c.metric;

  ExpectHealthy(healthy.Finish(absl::Seconds(30)), kHealthy, backend, bridge,
                c.fault == "abrupt_close" ? 1 : 0);
  // Nothing was dropped toward the healthy callers (the flood's own audio
  // may have been dropped inbound before it was cut off).
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_dropped_frames_total{direction=\"out\"}"), 0);
  if (c.fault != "flood") {
    EXPECT_EQ(bridge.Metric("audiosocket_bridge_dropped_frames_total{direction=\"in\"}"), 0);
  }
}

// ---------------------------------------------------------- backend faults

// One bridge; a faulty call and a bystander call on the same bridge.
class BackendFaultTest : public ModeTest {
 protected:
  // The bystander: a second call that must not notice the fault.
  void StartBystander() {
    bystander_ = Connect(bystander_caller_, kUuid2);
    ASSERT_NE(bystander_, nullptr);
  }
  void ExpectBystanderUntouched() {
    ASSERT_NE(bystander_, nullptr);
    for (int i = 1; i <= 10; ++i) bystander_caller_.SendAudio(NumberedFrame(i));
    int frames = 0;
    while (frames < 10) {
      auto audio =
          bystander_->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
      ASSERT_TRUE(audio.has_value()) << "bystander lost audio after " << frames;
      frames += static_cast<int>(audio->audio().pcm().size() / 320);
    }
    ASSERT_TRUE(bystander_->Play(std::vector<int16_t>(800, 777)));
    int heard = 0;
    const absl::Time deadline = absl::Now() + kWait;
    while (heard < 800 && absl::Now() < deadline) {
      auto message = bystander_caller_.Read(deadline - absl::Now());
      ASSERT_TRUE(message.has_value()) << "bystander closed";
      if (message->is_audio()) {
        for (int16_t s : message->samples()) heard += s == 777;
      }
    }
    EXPECT_EQ(heard, 800);
    EXPECT_FALSE(bystander_caller_.closed());
    for (const CallEvent& e : bystander_->History()) EXPECT_FALSE(e.has_ended());
  }

  FakeAsterisk bystander_caller_;
  std::shared_ptr<BackendCall> bystander_;
};

INSTANTIATE_TEST_SUITE_P(Modes, BackendFaultTest, ::testing::Values(Mode::kPush, Mode::kPull),
                         ModeName);

std::string FallbackWav() {
  const std::string wav = TempPath("fallback.wav");
  WriteFile(wav, audio::EncodeWav(8000, std::vector<int16_t>(1600, 1234)));  // 0.2 s
  return wav;
}

// Expects the caller to hear the fallback (when configured) then the hangup.
void ExpectFallbackThenHangup(FakeAsterisk& caller, bool fallback) {
  EXPECT_TRUE(caller.WaitClosed(kWait));
  EXPECT_EQ(std::count(caller.audio().begin(), caller.audio().end(), 1234), fallback ? 1600 : 0);
  ASSERT_FALSE(caller.others().empty());
  EXPECT_EQ(caller.others().back().kind, 0x00);
}

TEST_P(BackendFaultTest, UnreachableAtCallStart) {
  for (bool fallback : {false, true}) {
    SCOPED_TRACE(fallback ? "fallback" : "hangup");
    std::vector<std::string> flags = {"--first_audio_wait=50ms", "--claim_timeout=300ms"};
    if (fallback) flags.push_back("--fallback_wav=" + FallbackWav());
    std::string reason;
    if (GetParam() == Mode::kPush) {
      int dead_port;
      {
        PushBackend gone;
        dead_port = gone.port();
      }
      flags.push_back(absl::StrCat("--backend=ipv4:127.0.0.1:", dead_port));
      reason = "ALL_BACKENDS_REJECTED";
    } else {
      flags.push_back("--mode=pull");  // no worker: nobody claims
      reason = "CLAIM_TIMEOUT";
    }
    flags.push_back("--listen=127.0.0.1:0");
    BridgeProcess bridge(flags);
    ASSERT_TRUE(bridge.ok()) << bridge.Output();
    FakeAsterisk caller;
    ASSERT_TRUE(caller.Dial(bridge.audiosocket_port(), kUuid));
    ExpectFallbackThenHangup(caller, fallback);
    EXPECT_TRUE(bridge.WaitForEvent("call_ended", reason).has_value()) << bridge.Output();
  }
}

// Push only: a pull worker's claim is its acceptance, and it has no reject.
class PushBackendFaultTest : public BackendFaultTest {};
INSTANTIATE_TEST_SUITE_P(Push, PushBackendFaultTest, ::testing::Values(Mode::kPush), ModeName);

TEST_P(PushBackendFaultTest, RejectEndsTheCallOthersUntouched) {
  StartBridge({"--backend_attempts=1", "--fallback_wav=" + FallbackWav()});
  FakeAsterisk caller;
  auto call = Connect(caller, kUuid, /*listener=*/0, /*accept=*/false);
  ASSERT_NE(call, nullptr);
  StartBystander();
  v1::RejectCall reject;
  reject.set_reason(v1::REJECT_REASON_BUSY);
  ASSERT_TRUE(call->SendReject(reject));
  ExpectFallbackThenHangup(caller, true);
  EXPECT_TRUE(bridge_->WaitForEvent("call_ended", "ALL_BACKENDS_REJECTED").has_value());
  ExpectBystanderUntouched();
}

TEST_P(BackendFaultTest, StalledBackendKeepsMemoryBoundedAndOthersUntouched) {
  // The caller bursts 60 s of audio: the flood limit is off here.
  StartBridge({"--backend_queue_ms=200", "--max_audio_ahead_ms=0"});
  FakeAsterisk caller;
  auto call = Connect(caller, kUuid);
  ASSERT_NE(call, nullptr);
  StartBystander();
  call->PauseReading();
  const pid_t pid = bridge_->process().pid();
  // 60 s of audio as fast as the socket takes it, in two halves: RSS after
  // the second half is no more than after the first (plus slack).
  int64_t rss_half = 0;
  for (int half = 0; half < 2; ++half) {
    for (int i = 0; i < 1500; ++i) caller.SendAudio(NumberedFrame(i));
    absl::SleepFor(absl::Milliseconds(300));
    if (half == 0) rss_half = RssKb(pid);
  }
  const int64_t rss_end = RssKb(pid);
  std::cout << "figures: bridge RSS " << rss_half
            << " kB after 30 s of audio to a stalled backend, " << rss_end << " kB after 60 s\n";
  EXPECT_LT(rss_end, rss_half + 8 * 1024) << "grew from " << rss_half << " kB";
  ExpectBystanderUntouched();
  EXPECT_FALSE(caller.closed());
  call->ResumeReading();
  // The backend sees the loss as a jump in the offsets.
  uint64_t expected = 0;
  bool gap = false;
  for (int i = 0; i < 200 && !gap; ++i) {
    auto audio = call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
    ASSERT_TRUE(audio.has_value());
    gap = audio->audio().offset_samples() > expected;
    expected = audio->audio().offset_samples() + audio->audio().pcm().size() / 2;
  }
  EXPECT_TRUE(gap) << "the backend is told what it lost";
  caller.SendHangup();
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_CALLER_HUNG_UP);
}

// A backend that keeps sending commands but stops reading what they cause:
// the results the bridge may not drop pile up until their bound (8 MiB),
// then its stream is ended and the call with it; other calls go on.
TEST_P(BackendFaultTest, BackendThatStopsReadingItsResultsIsEndedAtTheirBound) {
  StartBridge({});
  FakeAsterisk caller;
  auto call = Connect(caller, kUuid);
  ASSERT_NE(call, nullptr);
  StartBystander();
  call->PauseReading();
  // Each is refused with a result echoing its 1 KB id: 64 MiB unread. What
  // the backend's gRPC library takes in while its application reads nothing
  // is not the bridge's to hold, and gRPC C++ grows its receive window with
  // its estimate of the bandwidth-delay product: on a loaded machine, 12 MiB
  // of results left the bridge short of its 8 MiB bound.
  CallCommand refused;
  refused.set_command_id(std::string(1024, 'x'));
  refused.mutable_send_dtmf()->set_digits("Z");
  for (int i = 0; i < 64 * 1024 && !call->stream_ended(); ++i) call->Send(refused);
  auto line = bridge_->WaitForEvent("call_ended", "stopped reading its events", kWait);
  ASSERT_TRUE(line.has_value()) << bridge_->Output();
  EXPECT_THAT(*line, HasSubstr("BACKEND_LOST"));
  call->ResumeReading();
  ExpectBystanderUntouched();
}

TEST_P(BackendFaultTest, GarbageCommandsAreAnsweredAndTheCallGoesOn) {
  StartBridge();
  FakeAsterisk caller;
  auto call = Connect(caller, kUuid, /*listener=*/0, /*accept=*/false);
  ASSERT_NE(call, nullptr);
  StartBystander();
  if (GetParam() == Mode::kPush) {
    // A command before accept.
    CallCommand early;
    early.set_command_id("early");
    early.mutable_play()->set_pcm(std::string(320, '\0'));
    auto result = SendForResult(*call, early);
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->result().code(), v1::RESULT_CODE_FAILED_PRECONDITION);
    ASSERT_TRUE(call->Accept());
  }
  // An unknown oneof member (a field number this version does not know).
  CallCommand unknown;
  unknown.set_command_id("unknown");
  unknown.GetReflection()->MutableUnknownFields(&unknown)->AddLengthDelimited(999, "future");
  auto result = SendForResult(*call, unknown);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_INVALID_ARGUMENT);
  // Audio of odd length.
  CallCommand odd;
  odd.set_command_id("odd");
  odd.mutable_play()->set_pcm(std::string(321, '\1'));
  result = SendForResult(*call, odd);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_INVALID_ARGUMENT);
  // Absurd sample rates.
  for (uint32_t rate : {1u, 7u, 4000000000u}) {
    CallCommand absurd;
    absurd.set_command_id(absl::StrCat("rate", rate));
    absurd.mutable_play()->set_pcm(std::string(320, '\0'));
    absurd.mutable_play()->set_sample_rate_hz(rate);
    ASSERT_TRUE(call->Send(absurd));
    result = call->NextResult(absurd.command_id(), kWait);
    ASSERT_TRUE(result.has_value()) << rate;
    EXPECT_NE(result->result().code(), v1::RESULT_CODE_OK) << rate;
  }
  // The faulty call itself still works.
  caller.SendAudio(NumberedFrame(7));
  auto audio = call->NextMatching(
      [](const CallEvent& e) {
        return e.has_audio() && e.audio().pcm().size() >= 2 &&
               std::memcmp(e.audio().pcm().data(), NumberedFrame(7).data(), 2) == 0;
      },
      kWait);
  EXPECT_TRUE(audio.has_value());
  EXPECT_FALSE(caller.closed());
  for (const CallEvent& e : call->History()) EXPECT_FALSE(e.has_ended());
  EXPECT_GE(bridge_->Metric("audiosocket_bridge_command_errors_total"), 5);
  ExpectBystanderUntouched();
}

TEST_P(BackendFaultTest, StreamResetMidCallIsBackendLostWithFallback) {
  StartBridge({"--fallback_wav=" + FallbackWav()});
  FakeAsterisk caller;
  auto call = Connect(caller, kUuid);
  ASSERT_NE(call, nullptr);
  StartBystander();
  call->Cancel();
  ExpectFallbackThenHangup(caller, true);
  EXPECT_TRUE(bridge_->WaitForEvent("call_ended", "BACKEND_LOST").has_value());
  ExpectBystanderUntouched();
}

TEST_P(BackendFaultTest, BackendExitingMidCallIsBackendLost) {
  StartBridge();
  FakeAsterisk caller;
  auto call = Connect(caller, kUuid);
  ASSERT_NE(call, nullptr);
  if (GetParam() == Mode::kPush) {
    call.reset();
    push_.reset();  // the backend's server goes away with its streams
  } else {
    StartBystander();
    call.reset();
    workers_.erase(workers_.begin());  // the worker's stream and channel go away
  }
  EXPECT_TRUE(caller.WaitClosed(kWait));
  EXPECT_TRUE(bridge_->WaitForEvent("call_ended", "BACKEND_LOST").has_value()) << bridge_->Output();
  if (GetParam() == Mode::kPull) ExpectBystanderUntouched();
}

// ------------------------------------------------------ Asterisk-side faults

// A raw client socket with a tiny receive buffer that sends the UUID and
// one frame and then never reads: the half-open caller.
int HalfOpenCaller(int port, int index) {
  const int fd = ConnectLoopback(port, /*receive_buffer=*/2048);
  if (fd < 0) return -1;
  std::vector<uint8_t> bytes = {0x01, 0x00, 0x10};
  for (int i = 0; i < 16; ++i) bytes.push_back(static_cast<uint8_t>(0x40 + i + 16 * index));
  bytes[3 + 6] = 0x4a;  // version nibble 4
  bytes[3 + 8] = 0x8b;  // variant
  bytes.push_back(0x10);
  bytes.push_back(0x01);
  bytes.push_back(0x40);
  bytes.resize(bytes.size() + 320, 0);
  EXPECT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  return fd;
}

TEST(AsteriskFaultTest, HalfOpenCallerEndsUnresponsiveWithoutBlockingOthers) {
  constexpr int kHealthy = Load(20);
  CountingBackend backend;
  BridgeProcess bridge({"--backend=" + backend.target(), "--listen=127.0.0.1:0",
                        "--first_audio_wait=50ms", "--write_stall_timeout=1s",
                        "--max_unsent_ms=500", kBackendQueueFlag});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  std::vector<int> stuck;
  for (int i = 0; i < 3; ++i) stuck.push_back(HalfOpenCaller(bridge.audiosocket_port(), i));
  ASSERT_TRUE(backend.WaitAccepted(3, kWait));
  Caller healthy(bridge.audiosocket_port(), "healthy",
                 {absl::StrCat("--calls=", kHealthy), "--ramp=100", "--duration=5s"});
  // Each half-open call ends within a bound: buffers fill at 16 kB/s of
  // silence, then the stall limit applies.
  const absl::Time stuck_at = absl::Now();
  EXPECT_TRUE(bridge.process().WaitForLines("CALLER_UNRESPONSIVE", 3, absl::Seconds(60)))
      << bridge.Output();
  std::cout << "figures: 3 half-open calls ended CALLER_UNRESPONSIVE within "
            << absl::FormatDuration(absl::Now() - stuck_at) << "\n";
  ExpectHealthy(healthy.Finish(absl::Seconds(60)), kHealthy, backend, bridge);
  // The bridge logs the end before the backend has read its CallEnded.
  const absl::Time deadline = absl::Now() + kWait;
  while (backend.ended_with(v1::CALL_END_REASON_CALLER_UNRESPONSIVE) < 3 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(backend.ended_with(v1::CALL_END_REASON_CALLER_UNRESPONSIVE), 3);
  for (int fd : stuck) close(fd);
}

TEST(AsteriskFaultTest, ConnectionFloodBeyondTheLimitIsRefusedAndCounted) {
  constexpr int kHealthy = Load(15);
  constexpr int kLimit = 20;
  constexpr int kFlood = 40;
  CountingBackend backend;
  BridgeProcess bridge({"--backend=" + backend.target(), "--listen=127.0.0.1:0",
                        "--first_audio_wait=50ms", absl::StrCat("--max_calls=", kLimit),
                        "--uuid_timeout=30s", kBackendQueueFlag});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  Caller healthy(bridge.audiosocket_port(), "healthy",
                 {absl::StrCat("--calls=", kHealthy), "--ramp=100", "--duration=4s"});
  ASSERT_TRUE(backend.WaitAccepted(kHealthy, kWait));
  std::vector<std::unique_ptr<FakeAsterisk>> flood;
  for (int i = 0; i < kFlood; ++i) {
    flood.push_back(std::make_unique<FakeAsterisk>());
    ASSERT_TRUE(flood.back()->Connect(bridge.audiosocket_port()));
  }
  int closed = 0;
  for (auto& f : flood) closed += f->WaitClosed(absl::Milliseconds(200));
  EXPECT_EQ(closed, kFlood - (kLimit - kHealthy));
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_connections_rejected_total{reason=\"call_limit\"}"),
            kFlood - (kLimit - kHealthy));
  ExpectHealthy(healthy.Finish(absl::Seconds(30)), kHealthy, backend, bridge);
}

TEST(AsteriskFaultTest, SlowlorisWithoutUuidIsClosedAtTheUuidTimeout) {
  constexpr int kHealthy = Load(20);
  constexpr int kSlow = 20;
  CountingBackend backend;
  BridgeProcess bridge({"--backend=" + backend.target(), "--listen=127.0.0.1:0",
                        "--first_audio_wait=50ms", "--uuid_timeout=1s", kBackendQueueFlag});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  Caller healthy(bridge.audiosocket_port(), "healthy",
                 {absl::StrCat("--calls=", kHealthy), "--ramp=100", "--duration=4s"});
  std::vector<std::unique_ptr<FakeAsterisk>> slow;
  for (int i = 0; i < kSlow; ++i) {
    slow.push_back(std::make_unique<FakeAsterisk>());
    ASSERT_TRUE(slow.back()->Connect(bridge.audiosocket_port()));
  }
  // One byte of a UUID header every 300 ms: never a whole message in time.
  for (int step = 0; step < 2; ++step) {
    for (auto& s : slow) s->SendRaw({static_cast<uint8_t>(step == 0 ? 0x01 : 0x00)});
    absl::SleepFor(absl::Milliseconds(300));
  }
  int closed = 0;
  for (auto& s : slow) closed += s->WaitClosed(kWait);
  EXPECT_EQ(closed, kSlow);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_connections_rejected_total{reason=\"uuid_timeout\"}"),
            kSlow);
  ExpectHealthy(healthy.Finish(absl::Seconds(30)), kHealthy, backend, bridge);
}

// ------------------------------------------------------- shutdown under load

TEST(ShutdownTest, SigtermWithTwoHundredCallsDrainsAndEndsEveryCall) {
  // Under ThreadSanitizer the test's own backend reads 200 streams' last
  // events slower than the bridge's bounded flush (5 s) allows: fewer calls.
  constexpr int kCalls = Load(200);
  CountingBackend backend;
  BridgeProcess bridge({"--backend=" + backend.target(), "--listen=127.0.0.1:0",
                        "--first_audio_wait=50ms", "--drain_timeout=2s", kBackendQueueFlag});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  Caller callers(bridge.audiosocket_port(), "load",
                 {absl::StrCat("--calls=", kCalls), "--ramp=200", "--end=wait", "--duration=60s"});
  ASSERT_TRUE(backend.WaitAccepted(kCalls, absl::Seconds(30))) << backend.accepted();
  const absl::Time signalled = absl::Now();
  bridge.process().Signal(SIGTERM);
  auto status = bridge.process().Wait(absl::Seconds(30));
  std::cout << "figures: SIGTERM with " << kCalls << " calls, drain_timeout 2s, exited after "
            << absl::FormatDuration(absl::Now() - signalled) << "\n";
  ASSERT_TRUE(status.has_value()) << "the bridge hung in shutdown";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << bridge.Output();
  EXPECT_EQ(CountLines(bridge, "\"call_ended\"", "SHUTDOWN"), kCalls);
  EXPECT_TRUE(backend.WaitEnded(kCalls, kWait));
  EXPECT_EQ(backend.ended_with(v1::CALL_END_REASON_SHUTDOWN), kCalls);
  const std::string summary = callers.Finish(absl::Seconds(30));
  ASSERT_FALSE(summary.empty()) << "callers hung";
  EXPECT_EQ(Field(summary, "calls"), kCalls);
  // Each caller saw the bridge hang up (0x00) or close.
  EXPECT_EQ(std::max<int64_t>(0, Field(summary, "remote_hangup")) +
                std::max<int64_t>(0, Field(summary, "remote_closed")),
            kCalls)
      << summary;
}

// A push backend that accepts every call and then reads nothing until
// released, through a small HTTP/2 window (no BDP probing): the bridge's
// writes toward it stop within seconds, and whatever the bridge queues
// after that (each call's CallEnded) waits until it reads again.
class StalledBackend final : public v1::CallHandlerService::Service {
 public:
  StalledBackend() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_BDP_PROBE, 0);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_STREAM_LOOKAHEAD_BYTES, 16 * 1024);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~StalledBackend() override {
    Release();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
  }
  std::string target() const { return absl::StrCat("ipv4:127.0.0.1:", port_); }
  void Release() {
    absl::MutexLock lock(&mu_);
    released_ = true;
  }
  int accepted() const {
    absl::MutexLock lock(&mu_);
    return accepted_;
  }
  int ended_with(v1::CallEndReason reason) const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(std::count(reasons_.begin(), reasons_.end(), reason));
  }
  bool WaitEnded(int n, absl::Duration timeout) const {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return static_cast<int>(reasons_.size()) >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }

  grpc::Status HandleCall(
      grpc::ServerContext* /*context*/,
      grpc::ServerReaderWriter<v1::HandleCallResponse, v1::HandleCallRequest>* stream) override {
    v1::HandleCallRequest request;
    if (!stream->Read(&request) || !request.event().has_started()) return grpc::Status::OK;
    v1::HandleCallResponse accept;
    accept.mutable_accept();
    if (!stream->Write(accept)) return grpc::Status::OK;
    {
      absl::MutexLock lock(&mu_);
      ++accepted_;
      mu_.Await(absl::Condition(&released_));
    }
    while (stream->Read(&request)) {
      if (!request.event().has_ended()) continue;
      absl::MutexLock lock(&mu_);
      reasons_.push_back(request.event().ended().reason());
    }
    return grpc::Status::OK;  // the bridge half-closed after CallEnded
  }

 private:
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  int accepted_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::CallEndReason> reasons_ ABSL_GUARDED_BY(mu_);
};

// The bridge exits only once the backends have every call's last event,
// even when they read slowly: the backends stop reading until their
// streams are full, so each CallEnded waits behind a full HTTP/2 window
// when SIGTERM comes, and they read again only after the calls ended.
TEST(ShutdownTest, StalledBackendsStillGetEveryCallEnded) {
  // The full count under sanitizers too: stalled backends cost nothing, and
  // a slowed bridge is where the last events used to be lost.
  constexpr int kCalls = 20;
  StalledBackend backend;
  BridgeProcess bridge({"--backend=" + backend.target(), "--listen=127.0.0.1:0",
                        "--first_audio_wait=50ms", "--drain_timeout=1s", "--backend_queue_ms=200"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  Caller callers(bridge.audiosocket_port(), "stalled",
                 {absl::StrCat("--calls=", kCalls), "--ramp=100", "--end=wait", "--duration=60s"});
  const absl::Time accepted_by = absl::Now() + absl::Seconds(30);
  while (backend.accepted() < kCalls && absl::Now() < accepted_by) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(backend.accepted(), kCalls);
  // 16 KiB windows hold about a second of each call's audio (16.5 kB/s with
  // framing); give them several to fill. Not a timing assertion: a stream
  // that is not full yet only makes this run a weaker check.
  absl::SleepFor(absl::Seconds(4));
  const absl::Time signalled = absl::Now();
  bridge.process().Signal(SIGTERM);
  ASSERT_TRUE(bridge.WaitForEvent("shutting_down", "", absl::Seconds(30)).has_value());
  EXPECT_TRUE(bridge.process().WaitForLines("\"call_ended\"", kCalls, absl::Seconds(30)));
  // Every call ended on the bridge's side; their CallEnded are still queued.
  absl::SleepFor(absl::Milliseconds(500));
  std::optional<int> status = bridge.process().Wait(absl::ZeroDuration());
  EXPECT_FALSE(status.has_value()) << "the bridge exited with its backends' last events unsent";
  backend.Release();
  if (!status.has_value()) status = bridge.process().Wait(absl::Seconds(30));
  std::cout << "figures: " << kCalls << " calls, stalled backends, exited "
            << absl::FormatDuration(absl::Now() - signalled) << " after SIGTERM\n";
  ASSERT_TRUE(status.has_value()) << "the bridge hung in shutdown";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << bridge.Output();
  EXPECT_TRUE(backend.WaitEnded(kCalls, kWait));
  EXPECT_EQ(backend.ended_with(v1::CALL_END_REASON_SHUTDOWN), kCalls);
  EXPECT_EQ(CountLines(bridge, "streams_abandoned", ""), 0) << bridge.Output();
  callers.Finish(absl::Seconds(30));
}

// ------------------------------------------------------- noisy neighbour

// A push backend that accepts every call. Calls whose id the test names are
// handed to the test (which reads their events); the others are read to
// their end and their end reason kept.
class SortingBackend {
 public:
  explicit SortingBackend(std::vector<std::string> named) : named_(std::move(named)) {}
  std::string target() const { return backend_.target(); }
  std::shared_ptr<BackendCall> Named(const std::string& id, absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto find = [this, &id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return std::find_if(named_calls_.begin(), named_calls_.end(),
                          [&id](const auto& entry) { return entry.first == id; });
    };
    auto found = [this, &find]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return find() != named_calls_.end(); };
    mu_.AwaitWithTimeout(absl::Condition(&found), timeout);
    auto it = find();
    return it == named_calls_.end() ? nullptr : it->second;
  }
  int ended_with(v1::CallEndReason reason) const {
    absl::MutexLock lock(&mu_);
    return static_cast<int>(std::count(reasons_.begin(), reasons_.end(), reason));
  }
  int accepted() const { return backend_.accepted(); }

 private:
  void Serve(std::shared_ptr<BackendCall> call, const v1::CallStarted& started) {
    const std::string id = started.call_id();
    if (std::find(named_.begin(), named_.end(), id) != named_.end()) {
      absl::MutexLock lock(&mu_);
      named_calls_.emplace_back(id, call);
      return;
    }
    while (!backend_.stopping()) {
      auto event = call->Next(absl::Milliseconds(200));
      if (!event.has_value()) {
        if (call->stream_ended()) return;
        continue;
      }
      if (event->has_ended()) {
        absl::MutexLock lock(&mu_);
        reasons_.push_back(event->ended().reason());
        call->CloseWrites();
        return;
      }
    }
  }

  const std::vector<std::string> named_;
  mutable absl::Mutex mu_;
  std::vector<std::pair<std::string, std::shared_ptr<BackendCall>>> named_calls_
      ABSL_GUARDED_BY(mu_);
  std::vector<v1::CallEndReason> reasons_ ABSL_GUARDED_BY(mu_);
  AcceptingBackend backend_{[this](std::shared_ptr<BackendCall> call,
                                   const v1::CallStarted& started) { Serve(call, started); }};
};

// A caller that sends its UUID, then `after` bytes, then nothing, and never
// reads; `receive_buffer` sets SO_RCVBUF before connecting (0: default).
int SilentCaller(int port, const std::string& uuid, const std::vector<uint8_t>& after,
                 int receive_buffer) {
  const int fd = ConnectLoopback(port, receive_buffer);
  if (fd < 0) return -1;
  std::vector<uint8_t> bytes = {0x01, 0x00, 0x10};
  std::string hex;
  for (char c : uuid) {
    if (c != '-') hex += c;
  }
  for (size_t i = 0; i < 32; i += 2) {
    bytes.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  bytes.insert(bytes.end(), after.begin(), after.end());
  EXPECT_EQ(send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  return fd;
}

// The longest gap between two frames a caller received, from its summary.
double WorstGapMs(const std::string& summary) {
  std::smatch m;
  if (!std::regex_search(summary, m, std::regex("\"recv_jitter_ms\":\\{[^}]*\"max\":([0-9.]+)"))) {
    ADD_FAILURE() << "no recv_jitter_ms.max in " << summary;
    return 0;
  }
  return std::stod(m[1]) + 20;
}

// Counts the results with `code` among the events of `call` until `total`
// results arrived (or a wait of 10 s passed without one).
int CountResults(BackendCall& call, int total, v1::ResultCode code) {
  int seen = 0;
  int matching = 0;
  while (seen < total) {
    auto event = call.NextMatching([](const CallEvent& e) { return e.has_result(); }, kWait);
    if (!event.has_value()) break;
    ++seen;
    matching += event->result().code() == code;
  }
  return matching;
}

// The abuses the bridge must refuse cheaply, all at once on one event loop
// beside good calls: a 4 MB PlayAudio at 8 kHz to a 192 kHz call (250 s of
// audio, 48 M samples once converted), 192 kHz audio far faster than real
// time and a flood of SendDtmf and Mark to an 8 kHz call, a caller silent
// after its UUID, one that stops inside a message, and one that never reads
// with a 4 MB receive buffer. The good calls' callers must receive their
// frames as well as the same calls on a bridge of their own, run alongside.
TEST(NoisyNeighbourTest, AbusiveBackendAndCallersDoNotDelayGoodCalls) {
  constexpr int kGood = Load(10);
  constexpr char kAbuse192[] = "c0ffee00-0000-4000-8000-000000000192";
  constexpr char kAbuse8[] = "c0ffee00-0000-4000-8000-000000000008";
  SortingBackend backend({kAbuse192, kAbuse8});
  BridgeProcess bridge({"--backend=" + backend.target(), "--listen=127.0.0.1:0", "--io_threads=1",
                        "--first_audio_wait=50ms", "--caller_idle_timeout=2s", kBackendQueueFlag});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  // The control: the same good calls on a bridge of their own, at the same
  // time, so that what the machine's load costs them is known.
  SortingBackend control_backend({});
  BridgeProcess control_bridge({"--backend=" + control_backend.target(), "--listen=127.0.0.1:0",
                                "--io_threads=1", "--first_audio_wait=50ms",
                                "--caller_idle_timeout=2s", kBackendQueueFlag});
  ASSERT_TRUE(control_bridge.ok()) << control_bridge.Output();
  const std::vector<std::string> good_flags = {absl::StrCat("--calls=", kGood), "--ramp=100",
                                               "--duration=8s"};
  Caller good(bridge.audiosocket_port(), "good", good_flags);
  Caller control(control_bridge.audiosocket_port(), "control", good_flags);

  FakeAsterisk caller192;
  ASSERT_TRUE(caller192.Dial(bridge.audiosocket_port(), kAbuse192));
  caller192.SendAudio(std::vector<int16_t>(3840, 0), 192000);  // the call is at 192 kHz
  FakeAsterisk caller8;
  ASSERT_TRUE(caller8.Dial(bridge.audiosocket_port(), kAbuse8));
  caller8.SendAudio(NumberedFrame(0));
  // Both keep sending audio as Asterisk does (their backend is the abuser).
  std::atomic<bool> stop_audio{false};
  std::thread audio([&] {
    for (int i = 1; !stop_audio; ++i) {
      caller192.SendAudio(std::vector<int16_t>(3840, 0), 192000);
      caller8.SendAudio(NumberedFrame(i));
      absl::SleepFor(absl::Milliseconds(20));
    }
  });
  // However the test leaves: a failed ASSERT returning with the thread
  // still joinable would abort the whole binary.
  absl::Cleanup stop_and_join_audio = [&] {
    stop_audio = true;
    audio.join();
  };
  auto call192 = backend.Named(kAbuse192, kWait);
  auto call8 = backend.Named(kAbuse8, kWait);
  ASSERT_NE(call192, nullptr);
  ASSERT_NE(call8, nullptr);

  // Abusive callers: silent after the UUID; a header and no payload; and
  // one that never reads, with a receive buffer minutes of audio long.
  std::vector<uint8_t> frame = {0x10, 0x01, 0x40};
  frame.resize(3 + 320, 0);
  std::vector<int> silent = {
      SilentCaller(bridge.audiosocket_port(), "c0ffee00-0000-4000-8000-00000000a001", {}, 0),
      SilentCaller(bridge.audiosocket_port(), "c0ffee00-0000-4000-8000-00000000a002",
                   {0x10, 0x01, 0x40}, 0),
      SilentCaller(bridge.audiosocket_port(), "c0ffee00-0000-4000-8000-00000000a003", frame,
                   4 << 20)};

  // One message of 4 MB at 8 kHz to the 192 kHz call: refused at once.
  const absl::Time before = absl::Now();
  ASSERT_TRUE(call192->Play(std::vector<int16_t>(2000000, 1000), "huge", "huge", 8000));
  auto huge = call192->NextResult("huge", kWait);
  const absl::Duration huge_answer = absl::Now() - before;
  ASSERT_TRUE(huge.has_value());
  EXPECT_EQ(huge->result().code(), v1::RESULT_CODE_RESOURCE_EXHAUSTED) << huge->DebugString();
  // 100 s of it fits (19.2 M samples at 192 kHz): taken, converted only as
  // it plays.
  ASSERT_TRUE(call192->Play(std::vector<int16_t>(800000, 1000), "long", "long", 8000));
  auto fits = call192->NextResult("long", kWait);
  ASSERT_TRUE(fits.has_value());
  EXPECT_EQ(fits->result().code(), v1::RESULT_CODE_OK) << fits->DebugString();

  // The 8 kHz call: DTMF beyond the playout bound, then 192 kHz audio at
  // hundreds of times real time, then marks beyond their byte bound.
  constexpr int kDtmf = 2000;  // 10 digits of 150 ms each: 1.5 s per command
  for (int i = 0; i < kDtmf; ++i) {
    CallCommand dtmf;
    dtmf.mutable_send_dtmf()->set_digits("1234567890");
    ASSERT_TRUE(call8->Send(dtmf));
  }
  const int dtmf_refused = CountResults(*call8, kDtmf - 80, v1::RESULT_CODE_RESOURCE_EXHAUSTED);
  EXPECT_GE(dtmf_refused, kDtmf - 80);  // 120 s of the playout bound holds 80
  constexpr int kFast = 100;            // 1 s each at 192 kHz
  for (int i = 0; i < kFast; ++i) {
    ASSERT_TRUE(call8->Play(std::vector<int16_t>(192000, 1000), "fast", "", 192000));
  }
  // Playout goes on meanwhile: on a slow machine (a sanitizer build) the
  // tones played by then free room for a few seconds more.
  EXPECT_GE(CountResults(*call8, kFast, v1::RESULT_CODE_RESOURCE_EXHAUSTED), kFast - 10);
  constexpr int kMarks = 40000;
  for (int i = 0; i < kMarks; ++i) {
    CallCommand mark;
    mark.mutable_mark()->set_name(absl::StrCat("mark-", i, "-with-a-name-forty-bytes-long-"));
    ASSERT_TRUE(call8->Send(mark));
  }
  // 4 MiB of marks hold fewer than 25,000 of these: the rest are refused,
  // and only refusals are answered (no command_id).
  const int marks_refused = CountResults(*call8, 10000, v1::RESULT_CODE_RESOURCE_EXHAUSTED);
  EXPECT_EQ(marks_refused, 10000);

  // The silent callers end CALLER_IDLE at the idle timeout (or the bound
  // on an incomplete message), whatever their receive buffer.
  EXPECT_TRUE(bridge.process().WaitForLines("CALLER_IDLE", 3, absl::Seconds(20)))
      << bridge.Output();
  // The bridge logs the end as it queues the CallEnded; the backend reads
  // it a moment later.
  const absl::Time idle_deadline = absl::Now() + kWait;
  while (backend.ended_with(v1::CALL_END_REASON_CALLER_IDLE) < 3 && absl::Now() < idle_deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(backend.ended_with(v1::CALL_END_REASON_CALLER_IDLE), 3);

  const std::string summary = good.Finish(absl::Seconds(60));
  ASSERT_FALSE(summary.empty()) << good.Output();
  const std::string control_summary = control.Finish(absl::Seconds(60));
  ASSERT_FALSE(control_summary.empty()) << control.Output();
  EXPECT_EQ(Field(summary, "ok"), kGood) << summary;
  const int64_t sent = Field(summary, "frames_sent");
  const int64_t received = Field(summary, "frames_received");
  const int64_t control_received = Field(control_summary, "frames_received");
  // The abuses this guards against took good calls down to 7 % and 53 % of
  // their frames, with gaps of 6.5 s. A machine loaded by other work costs
  // frames too, whatever the abusers do (the playout skips ticks its loop
  // reached late): 67 % of frames with 300 ms gaps at a load of 6 on 2
  // cores. So the good calls are held to what the control calls, beside
  // them on the same machine, received: a tenth of the frames fewer at most,
  // and no gap more than half a second longer. The figures print exact.
  EXPECT_GE(received, control_received - sent / 10) << summary << "\ncontrol: " << control_summary;
  const double worst_gap_ms = WorstGapMs(summary);
  const double control_gap_ms = WorstGapMs(control_summary);
  if (!kSanitized) {
    EXPECT_LT(worst_gap_ms, control_gap_ms + 500) << summary << "\ncontrol: " << control_summary;
  }
  std::cout << "figures: 4 MB PlayAudio to a 192 kHz call answered in "
            << absl::FormatDuration(huge_answer) << "; " << dtmf_refused << " of " << kDtmf
            << " SendDtmf and " << marks_refused << " of " << kMarks
            << " marks refused; good calls: " << received << " of " << sent
            << " frames received, longest gap " << worst_gap_ms
            << " ms (control: " << control_received << " frames, " << control_gap_ms
            << " ms); bridge RSS " << RssKb(bridge.process().pid()) << " kB\n";
  for (int fd : silent) close(fd);
}

}  // namespace
}  // namespace audiosocket::testing
