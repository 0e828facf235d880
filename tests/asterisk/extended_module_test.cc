// End-to-end tests of the extended AudioSocket module (asterisk/,
// res_audiosocket_ext.so) in a real Asterisk: calls through
// AudioSocketExt() and Dial(AudioSocketExt/...) to the bridge's extended
// listener, answered by a scripted push backend; and calls to a raw TCP
// server that sends garbage.
//
// Needs an Asterisk built by tests/asterisk/build-asterisk.sh with the
// module installed by asterisk/build.sh, named by $ASTERISK_PREFIX; without
// it every test skips and says why.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/types/span.h"
#include "gtest/gtest.h"
#include "tests/asterisk/ari_client.h"
#include "tests/asterisk/asterisk_server.h"
#include "tests/asterisk/asterisk_suite.h"
#include "tests/asterisk/recording.h"
#include "tests/support/bridge_process.h"
#include "tests/support/test_backends.h"

namespace audiosocket::testing {
namespace {

using bridge::v1::CallEvent;

constexpr double kCallerTone = 1000;  // Hz, played by the caller

// ${UUID} and ${PORT} come from the originate (inherited by the Local
// channel's second leg through the "__" prefix).
constexpr const char* kDialplan = R"(
[ext-app]
exten => s,1,Answer()
 same => n,AudioSocketExt(${UUID},127.0.0.1:${PORT})
 same => n,UserEvent(AfterBridge,Uuid: ${UUID},Status: app,OnHold: ${CHANNEL(onhold)})
 same => n,Hangup()

[ext-chan]
exten => s,1,Dial(AudioSocketExt/127.0.0.1:${PORT}/${UUID},,g)
 same => n,UserEvent(AfterBridge,Uuid: ${UUID},Status: ${DIALSTATUS})
 same => n,Hangup()

; The caller's leg: a steady tone, and three digits of different lengths.
[caller-dtmf]
exten => s,1,Playtones(1000)
 same => n,Wait(1)
 same => n,SendDTMF(1,300,120)
 same => n,SendDTMF(5,300,250)
 same => n,SendDTMF(#,300,400)
 same => n,Wait(30)

; The caller's leg: a steady tone under two long digits.
[caller-long-dtmf]
exten => s,1,Playtones(1000)
 same => n,Wait(1)
 same => n,SendDTMF(4,400,400)
 same => n,SendDTMF(7,400,800)
 same => n,Wait(30)

; Reads the digits the backend sends, signalled.
[caller-read]
exten => s,1,Read(DIGITS,,3,,1,15)
 same => n,UserEvent(CallerRead,Uuid: ${UUID},Digits: ${DIGITS})
 same => n,Wait(30)

; Raises progress, then busy (which ends the caller's leg).
[caller-controls]
exten => s,1,Wait(1)
 same => n,Progress()
 same => n,Wait(0.5)
 same => n,Busy(2)

; Enters a Stasis application, where ARI raises hold and unhold on it.
[caller-stasis]
exten => s,1,Stasis(exthold)
 same => n,Wait(30)

[caller-silent]
exten => s,1,Wait(30)
)";

// Everything a backend got during a window: audio concatenated, DTMF and
// control events in order.
struct Observed {
  std::vector<int16_t> pcm;
  int sample_rate_hz = 0;
  std::vector<bridge::v1::DtmfEvent> dtmf;
  // For each DTMF event: how many samples of audio had arrived before it.
  std::vector<size_t> samples_before_dtmf;
  std::vector<bridge::v1::ControlEvent> controls;
};
Observed Observe(BackendCall& call, absl::Duration duration) {
  Observed seen;
  const absl::Time end = absl::Now() + duration;
  while (absl::Now() < end) {
    auto event = call.Next(end - absl::Now());
    if (!event.has_value()) break;
    if (event->has_audio()) {
      const std::string& pcm = event->audio().pcm();
      const size_t at = seen.pcm.size();
      seen.pcm.resize(at + pcm.size() / 2);
      std::memcpy(seen.pcm.data() + at, pcm.data(), pcm.size() / 2 * 2);
      seen.sample_rate_hz = static_cast<int>(event->audio().sample_rate_hz());
    } else if (event->has_dtmf()) {
      seen.dtmf.push_back(event->dtmf());
      seen.samples_before_dtmf.push_back(seen.pcm.size());
    } else if (event->has_control()) {
      seen.controls.push_back(event->control());
    } else if (event->has_ended()) {
      break;
    }
  }
  return seen;
}

// Voice kept flowing while each digit was down (stock Asterisk drops it):
// the caller's tone the backend got between a digit's BEGIN and its END
// lasts as long as the digit (±60 ms), with no silence longer than 60 ms
// in it. Frames Asterisk does not send leave no gap in the concatenated
// audio, so the samples between the two events are what is counted.
void ExpectVoiceUnderEachDigit(const Observed& seen) {
  ASSERT_GT(seen.sample_rate_hz, 0) << "no audio reached the backend";
  for (size_t i = 0; i + 1 < seen.dtmf.size(); i += 2) {
    const bridge::v1::DtmfEvent& end = seen.dtmf[i + 1];
    const size_t from = seen.samples_before_dtmf[i];
    const size_t to = seen.samples_before_dtmf[i + 1];
    const int voice_ms = static_cast<int>((to - from) * 1000 / seen.sample_rate_hz);
    const int digit_ms = static_cast<int>(end.duration_ms());
    std::cerr << "digit " << end.digit() << ": " << voice_ms << " ms of voice during its "
              << digit_ms << " ms\n";
    EXPECT_NEAR(voice_ms, digit_ms, 60)
        << "the caller's voice stopped during digit " << end.digit();
    const ToneRun tone = FindTone(absl::MakeConstSpan(seen.pcm).subspan(from, to - from),
                                  seen.sample_rate_hz, kCallerTone);
    const int blocks = voice_ms / 20;
    EXPECT_GE(tone.blocks_with_tone, blocks - 3)
        << "digit " << end.digit() << ": the audio under it is not the caller's tone";
    EXPECT_LE(tone.gap_blocks, 3) << "digit " << end.digit() << ": silence under it";
  }
}

std::string DescribeDtmf(const std::vector<bridge::v1::DtmfEvent>& events) {
  std::vector<std::string> parts;
  for (const auto& e : events) {
    parts.push_back(absl::StrCat(bridge::v1::DtmfPhase_Name(e.phase()), " ", e.digit(), " ",
                                 e.duration_ms(), "ms"));
  }
  return absl::StrJoin(parts, ", ");
}

// A TCP server on 127.0.0.1 for one connection: reads the UUID, sends
// `script`, then either sends hangup or closes; reads and discards what
// Asterisk sends meanwhile.
class GarbageServer {
 public:
  GarbageServer(std::string script, bool hangup_after) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        listen(listen_fd_, 1) != 0 ||
        getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &length) != 0) {
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, script = std::move(script), hangup_after] {
      const int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      timeval timeout{.tv_sec = 0, .tv_usec = 200000};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
      char buffer[4096];
      std::string received;
      const absl::Time uuid_deadline = absl::Now() + absl::Seconds(10);
      while (received.size() < 19 && absl::Now() < uuid_deadline) {
        const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
        if (n == 0) break;
        if (n > 0) received.append(buffer, static_cast<size_t>(n));
      }
      got_uuid_ = received.size() >= 19 && received[0] == 0x01;
      // In pieces, as a misbehaving server might.
      for (size_t at = 0; at < script.size(); at += 7) {
        (void)!send(fd, script.data() + at, std::min<size_t>(7, script.size() - at), MSG_NOSIGNAL);
      }
      // Keep reading for a while: Asterisk still sends audio.
      const absl::Time end = absl::Now() + absl::Milliseconds(800);
      while (absl::Now() < end) {
        if (recv(fd, buffer, sizeof(buffer), 0) == 0) break;
      }
      if (hangup_after) {
        const char hangup[3] = {0, 0, 0};
        (void)!send(fd, hangup, sizeof(hangup), MSG_NOSIGNAL);
        const absl::Time drain = absl::Now() + absl::Seconds(2);
        while (absl::Now() < drain) {
          if (recv(fd, buffer, sizeof(buffer), 0) == 0) break;
        }
      }
      close(fd);
    });
  }
  ~GarbageServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }
  bool got_uuid() const { return got_uuid_; }

 private:
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> got_uuid_{false};
  std::thread thread_;
};

std::string Message(uint8_t kind, const std::string& payload) {
  std::string m;
  m.push_back(static_cast<char>(kind));
  m.push_back(static_cast<char>(payload.size() >> 8));
  m.push_back(static_cast<char>(payload.size() & 0xff));
  return m + payload;
}

// Everything a server should not send, each message well framed.
std::string Garbage() {
  std::string g;
  g += Message(0x04, "");                                  // unknown kind, empty
  g += Message(0x42, std::string(300, '\x5a'));            // unknown kind, long
  g += Message(0x02, std::string("\x02\x35\0\0\0\0", 6));  // DTMF state 2
  g += Message(0x02, std::string("\x01\x45\0\0\0\0", 6));  // DTMF digit 'E'
  g += Message(0x02, std::string("\x01\x35", 2));          // DTMF short
  g += Message(0x02, std::string("\x00\x39\0\0\0\0", 6));  // DTMF stop without start
  g += Message(0x03, "");                                  // control, empty
  g += Message(0x03, "\x10\x11");                          // control, 2 bytes
  g += Message(0x03, std::string(1, '\x18'));              // T.38 parameters: needs data
  g += Message(0x03, std::string(1, '\x16'));              // connected line: needs data
  g += Message(0x03, std::string(1, '\x22'));              // masquerade notify: internal
  g += Message(0x03, std::string(1, '\xc8'));              // no such control
  g += Message(0x03, std::string(1, '\0'));                // control 0
  g += Message(0x01, std::string(16, '\x11'));             // uuid from the server
  g += Message(0x01, "\x01");                              // uuid, short
  g += Message(0x10, "");                                  // audio, empty
  g += Message(0x10, "\x01\x02\x03");                      // audio, odd
  g += Message(0xff, "\x07");                              // error
  g += Message(0xff, "");                                  // error, no code
  g += Message(0x00, "\x01");                              // hangup with a payload
  return g;
}

class ExtendedModuleTest : public AsteriskSuiteTest {
 protected:
  static void SetUpTestSuite() {
    StartAsterisk(
        "tests/asterisk/build-asterisk.sh and asterisk/build.sh",
        [](const std::string& prefix) -> absl::Status {
          if (access((prefix + "/lib/asterisk/modules/res_audiosocket_ext.so").c_str(), R_OK) !=
              0) {
            return absl::FailedPreconditionError(
                "res_audiosocket_ext.so is not installed: run asterisk/build.sh " + prefix);
          }
          auto shown = asterisk_->ami().Command("core show application AudioSocketExt");
          if (!shown.ok() || !absl::StrContains(*shown, "AudioSocketExt")) {
            return absl::FailedPreconditionError(
                "the module did not load: no AudioSocketExt application");
          }
          return asterisk_->SetDialplan(kDialplan);
        });
  }

  void StartBridge() {
    push_ = std::make_unique<PushBackend>();
    bridge_ = std::make_unique<BridgeProcess>(std::vector<std::string>{
        "--listen=127.0.0.1:0,dialect=extended,name=ext", "--backend=" + push_->target()});
    ASSERT_TRUE(bridge_->ok()) << bridge_->Output();
  }

  // Places a call whose bridge side runs `bridge_context` (ext-app or
  // ext-chan) toward `port`, and whose caller runs `caller_context`; the
  // caller's leg gets `caller_id` as its unique id when one is given. The
  // Local channel's options: n, not optimized away; m, hold passes through
  // (by default a Local channel plays music on hold itself instead).
  std::string Place(const std::string& caller_context, const std::string& bridge_context, int port,
                    const std::string& caller_id = "", const std::string& local_options = "n") {
    const std::string uuid = NewUuid();
    AsteriskServer::Originate originate;
    originate.channel = "Local/s@" + bridge_context + "/" + local_options;
    originate.context = caller_context;
    originate.channel_id = caller_id;
    originate.variables = {{"__UUID", uuid}, {"__PORT", absl::StrCat(port)}};
    const absl::Status placed = asterisk_->Place(originate);
    EXPECT_TRUE(placed.ok()) << placed;
    return uuid;
  }

  // The push backend's next call, accepted, its CallStarted checked.
  std::shared_ptr<BackendCall> Answer(const std::string& uuid) {
    std::shared_ptr<BackendCall> call = push_->NextCall(absl::Seconds(20));
    if (call == nullptr) {
      ADD_FAILURE() << "the bridge opened no backend call for " << uuid;
      return nullptr;
    }
    call->Accept();
    auto started =
        call->NextMatching([](const CallEvent& e) { return e.has_started(); }, absl::Seconds(20));
    if (!started.has_value()) {
      ADD_FAILURE() << "no CallStarted for " << uuid;
      return nullptr;
    }
    EXPECT_EQ(started->started().call_id(), uuid);
    EXPECT_EQ(started->started().dialect(), bridge::v1::DIALECT_EXTENDED);
    return call;
  }

  std::optional<AmiClient::Message> UserEvent(const std::string& name, const std::string& uuid,
                                              absl::Duration timeout = absl::Seconds(20)) {
    return asterisk_->ami().WaitForEvent(
        [&](const AmiClient::Message& m) {
          return Field(m, "Event") == "UserEvent" && Field(m, "UserEvent") == name &&
                 Field(m, "Uuid") == uuid;
        },
        timeout);
  }

  static bool Send(BackendCall& call, const std::string& id, bridge::v1::CallCommand command) {
    command.set_command_id(id);
    if (!call.Send(command)) return false;
    auto result = call.NextResult(id, absl::Seconds(10));
    EXPECT_TRUE(result.has_value()) << "no result for " << id;
    if (!result.has_value()) return false;
    EXPECT_EQ(result->result().code(), bridge::v1::RESULT_CODE_OK) << result->result().message();
    return result->result().code() == bridge::v1::RESULT_CODE_OK;
  }
  static bool SendControl(BackendCall& call, bridge::v1::ControlType type) {
    bridge::v1::CallCommand command;
    command.mutable_send_control()->set_type(type);
    return Send(call, absl::StrCat("control-", type), command);
  }

  static std::string NewUuid() {
    static std::atomic<uint32_t> counter{0};
    return absl::StrFormat("e7e1%04x-5efd-4bd3-805f-%012x", getpid() & 0xffff,
                           counter.fetch_add(1) + 1);
  }

  // Our module's warnings in the log since the test started.
  std::vector<std::string> ModuleProblems() const {
    return asterisk_->LogProblems(log_start_, "AudioSocketExt");
  }
};

class ExtendedModuleBothTest : public ExtendedModuleTest,
                               public ::testing::WithParamInterface<std::string> {};
std::string ContextName(const ::testing::TestParamInfo<std::string>& info) {
  return info.param == "ext-app" ? "App" : "Channel";
}

// ------------------------------------------------- DTMF toward the backend

// The caller's digits arrive as BEGIN then END with the duration SendDTMF
// gave, once each, and the caller's voice has no gap while a digit is down
// (stock Asterisk drops it), through the application and the channel driver.
TEST_P(ExtendedModuleBothTest, CallerDtmfArrivesAsBeginAndEndWithItsDuration) {
  StartBridge();
  const std::string uuid = Place("caller-dtmf", GetParam(), bridge_->audiosocket_port(0));
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  // The digits start about 1.1 s in and end by about 3.2 s.
  const Observed seen = Observe(*call, absl::Seconds(4));
  const std::vector<std::tuple<bridge::v1::DtmfPhase, std::string, int>> expected = {
      {bridge::v1::DTMF_PHASE_BEGIN, "1", 0}, {bridge::v1::DTMF_PHASE_END, "1", 120},
      {bridge::v1::DTMF_PHASE_BEGIN, "5", 0}, {bridge::v1::DTMF_PHASE_END, "5", 250},
      {bridge::v1::DTMF_PHASE_BEGIN, "#", 0}, {bridge::v1::DTMF_PHASE_END, "#", 400},
  };
  ASSERT_EQ(seen.dtmf.size(), expected.size()) << DescribeDtmf(seen.dtmf);
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& [phase, digit, duration_ms] = expected[i];
    EXPECT_EQ(seen.dtmf[i].phase(), phase) << i << ": " << DescribeDtmf(seen.dtmf);
    EXPECT_EQ(seen.dtmf[i].digit(), digit) << i << ": " << DescribeDtmf(seen.dtmf);
    EXPECT_EQ(seen.dtmf[i].source(), bridge::v1::DTMF_SOURCE_SIGNALLED);
    EXPECT_NEAR(static_cast<int>(seen.dtmf[i].duration_ms()), duration_ms, 20)
        << i << ": " << DescribeDtmf(seen.dtmf);
  }
  // No repeat of any digit afterwards.
  EXPECT_FALSE(call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); }, absl::Seconds(1))
                   .has_value());

  ASSERT_GT(seen.sample_rate_hz, 0) << "no audio reached the backend";
  const ToneRun tone = FindTone(seen.pcm, seen.sample_rate_hz, kCallerTone);
  EXPECT_GE(tone.blocks_with_tone, 150) << "the caller's tone did not reach the backend";
  EXPECT_EQ(tone.gap_blocks, 0);
  ExpectVoiceUnderEachDigit(seen);
  call->Hangup();
  EXPECT_TRUE(UserEvent("AfterBridge", uuid).has_value());
  EXPECT_TRUE(ModuleProblems().empty()) << absl::StrJoin(ModuleProblems(), "\n");
}

// Long digits (400 and 800 ms) with the caller's tone under them: BEGIN
// and END once each with their durations, and the tone reaches the backend
// for the whole of each digit. Through the channel driver the voice comes
// from the bridged peer channel, whose core drops it under a digit unless
// the module keeps its DTMF out of the core.
TEST_P(ExtendedModuleBothTest, CallerVoiceKeepsFlowingUnderLongDigits) {
  StartBridge();
  const std::string uuid = Place("caller-long-dtmf", GetParam(), bridge_->audiosocket_port(0));
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  // The digits start about 1 s in and end by about 2.8 s.
  const Observed seen = Observe(*call, absl::Seconds(4));
  const std::vector<std::tuple<bridge::v1::DtmfPhase, std::string, int>> expected = {
      {bridge::v1::DTMF_PHASE_BEGIN, "4", 0},
      {bridge::v1::DTMF_PHASE_END, "4", 400},
      {bridge::v1::DTMF_PHASE_BEGIN, "7", 0},
      {bridge::v1::DTMF_PHASE_END, "7", 800},
  };
  ASSERT_EQ(seen.dtmf.size(), expected.size()) << DescribeDtmf(seen.dtmf);
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto& [phase, digit, duration_ms] = expected[i];
    EXPECT_EQ(seen.dtmf[i].phase(), phase) << i << ": " << DescribeDtmf(seen.dtmf);
    EXPECT_EQ(seen.dtmf[i].digit(), digit) << i << ": " << DescribeDtmf(seen.dtmf);
    EXPECT_NEAR(static_cast<int>(seen.dtmf[i].duration_ms()), duration_ms, 20)
        << i << ": " << DescribeDtmf(seen.dtmf);
  }
  EXPECT_FALSE(call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); }, absl::Seconds(1))
                   .has_value());
  ExpectVoiceUnderEachDigit(seen);
  call->Hangup();
  EXPECT_TRUE(UserEvent("AfterBridge", uuid).has_value());
  EXPECT_TRUE(ModuleProblems().empty()) << absl::StrJoin(ModuleProblems(), "\n");
}

// ------------------------------------------------- DTMF toward the caller

// The backend's digits reach the caller's leg as signalled DTMF (Read()
// gets them; no tones), with the durations the backend asked for.
TEST_P(ExtendedModuleBothTest, BackendDtmfReachesTheCallerSignalledWithItsDuration) {
  StartBridge();
  const std::string uuid = Place("caller-read", GetParam(), bridge_->audiosocket_port(0));
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  absl::SleepFor(absl::Milliseconds(300));
  const std::vector<std::pair<std::string, int>> digits = {{"1", 120}, {"5", 250}, {"9", 400}};
  for (const auto& [digit, tone_ms] : digits) {
    bridge::v1::CallCommand dtmf;
    dtmf.mutable_send_dtmf()->set_digits(digit);
    dtmf.mutable_send_dtmf()->set_tone_ms(tone_ms);
    ASSERT_TRUE(Send(*call, "dtmf-" + digit, dtmf));
  }
  auto read = UserEvent("CallerRead", uuid);
  ASSERT_TRUE(read.has_value()) << "Read() on the caller's leg did not finish";
  EXPECT_EQ(Field(*read, "Digits"), "159");
  // The caller's leg received each digit as a DTMF frame with its length
  // (Asterisk's DTMF log).
  const std::string log = asterisk_->Log().substr(log_start_);
  for (const auto& [digit, tone_ms] : digits) {
    bool found = false;
    for (absl::string_view line : absl::StrSplit(log, '\n')) {
      if (!absl::StrContains(
              line, absl::StrCat("DTMF end '", digit, "' received on Local/s@", GetParam()))) {
        continue;
      }
      if (!absl::StrContains(line, ";1, duration ")) continue;
      found = true;
      int logged = 0;
      ASSERT_TRUE(absl::SimpleAtoi(
          absl::StripSuffix(line.substr(line.find(", duration ") + 11), " ms"), &logged))
          << line;
      EXPECT_NEAR(logged, tone_ms, 20) << line;
    }
    EXPECT_TRUE(found) << "no DTMF end '" << digit << "' on the caller's leg in the log";
  }
  call->Hangup();
  EXPECT_TRUE(UserEvent("AfterBridge", uuid).has_value());
  EXPECT_TRUE(ModuleProblems().empty()) << absl::StrJoin(ModuleProblems(), "\n");
}

// ------------------------------------------------------- control signals

// Progress() and Busy() on the caller's leg reach the backend as control
// events, in order.
TEST_P(ExtendedModuleBothTest, CallerControlsReachTheBackend) {
  StartBridge();
  const std::string uuid = Place("caller-controls", GetParam(), bridge_->audiosocket_port(0));
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  const Observed seen = Observe(*call, absl::Seconds(4));
  std::vector<bridge::v1::ControlType> relevant;
  std::vector<std::string> all;
  for (const auto& c : seen.controls) {
    all.push_back(absl::StrCat(c.raw_code()));
    if (c.type() == bridge::v1::CONTROL_TYPE_PROGRESS ||
        c.type() == bridge::v1::CONTROL_TYPE_BUSY) {
      relevant.push_back(c.type());
    }
  }
  EXPECT_EQ(relevant, (std::vector<bridge::v1::ControlType>{bridge::v1::CONTROL_TYPE_PROGRESS,
                                                            bridge::v1::CONTROL_TYPE_BUSY}))
      << "controls seen: " << absl::StrJoin(all, ", ");
  EXPECT_TRUE(ModuleProblems().empty()) << absl::StrJoin(ModuleProblems(), "\n");
}

// Hold and unhold raised on the caller's leg (by ARI: no dialplan
// application raises them) reach the backend as HOLD then UNHOLD control
// events, once each.
TEST_P(ExtendedModuleBothTest, CallerHoldAndUnholdReachTheBackend) {
  StartBridge();
  AriApplication app(asterisk_->http_port(), "exthold");
  ASSERT_TRUE(app.ok()) << "ARI event WebSocket refused: " << app.status_line();
  const std::string caller = "exthold-" + NewUuid();
  const std::string uuid =
      Place("caller-stasis", GetParam(), bridge_->audiosocket_port(0), caller, "nm");
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  const int port = asterisk_->http_port();
  // ARI holds only a channel in its Stasis application: retry until the
  // caller's leg has entered it.
  std::string held;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  do {
    held = AriRequest(port, "POST", "/ari/channels/" + caller + "/hold");
    if (AriStatus(held) == 204) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < deadline);
  ASSERT_EQ(AriStatus(held), 204) << held;
  auto is_control = [](bridge::v1::ControlType type) {
    return [type](const CallEvent& e) { return e.has_control() && e.control().type() == type; };
  };
  EXPECT_TRUE(
      call->NextMatching(is_control(bridge::v1::CONTROL_TYPE_HOLD), absl::Seconds(10)).has_value())
      << "no HOLD at the backend";
  const std::string unheld = AriRequest(port, "DELETE", "/ari/channels/" + caller + "/hold");
  ASSERT_EQ(AriStatus(unheld), 204) << unheld;
  // Only UNHOLD follows: no second HOLD before it.
  auto next = call->NextMatching(
      [](const CallEvent& e) {
        return e.has_control() && (e.control().type() == bridge::v1::CONTROL_TYPE_HOLD ||
                                   e.control().type() == bridge::v1::CONTROL_TYPE_UNHOLD);
      },
      absl::Seconds(10));
  ASSERT_TRUE(next.has_value()) << "no UNHOLD at the backend";
  EXPECT_EQ(next->control().type(), bridge::v1::CONTROL_TYPE_UNHOLD);
  EXPECT_FALSE(call->NextMatching(
                       [](const CallEvent& e) {
                         return e.has_control() &&
                                (e.control().type() == bridge::v1::CONTROL_TYPE_HOLD ||
                                 e.control().type() == bridge::v1::CONTROL_TYPE_UNHOLD);
                       },
                       absl::Seconds(1))
                   .has_value())
      << "hold or unhold repeated";
  call->Hangup();
  EXPECT_TRUE(UserEvent("AfterBridge", uuid).has_value());
  EXPECT_TRUE(ModuleProblems().empty()) << absl::StrJoin(ModuleProblems(), "\n");
}

INSTANTIATE_TEST_SUITE_P(Both, ExtendedModuleBothTest, ::testing::Values("ext-app", "ext-chan"),
                         ContextName);

// Through the application, the backend's hold is indicated on the channel:
// after the backend hangs up, CHANNEL(onhold) says so.
TEST_F(ExtendedModuleTest, BackendHoldIsIndicatedOnTheAppChannel) {
  StartBridge();
  const std::string uuid = Place("caller-silent", "ext-app", bridge_->audiosocket_port(0));
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(SendControl(*call, bridge::v1::CONTROL_TYPE_PROGRESS));
  ASSERT_TRUE(SendControl(*call, bridge::v1::CONTROL_TYPE_HOLD));
  absl::SleepFor(absl::Milliseconds(300));
  call->Hangup();
  auto after = UserEvent("AfterBridge", uuid);
  ASSERT_TRUE(after.has_value()) << "the dialplan did not continue after AudioSocketExt()";
  EXPECT_EQ(Field(*after, "Status"), "app");
  EXPECT_EQ(Field(*after, "OnHold"), "1") << "hold was not indicated on the channel";
  const std::string log = asterisk_->Log().substr(log_start_);
  EXPECT_TRUE(absl::StrContains(log, "indicates progress (14) on Local/s@ext-app")) << log;
  EXPECT_TRUE(absl::StrContains(log, "indicates hold (16) on Local/s@ext-app")) << log;
  EXPECT_TRUE(ModuleProblems().empty()) << absl::StrJoin(ModuleProblems(), "\n");
}

// Through the channel driver, the backend's hold and unhold are queued on
// the AudioSocketExt channel as a channel driver does for its far end:
// Asterisk reports them as Hold and Unhold events.
TEST_F(ExtendedModuleTest, BackendHoldAndUnholdReachTheChannelDriverChannel) {
  StartBridge();
  const std::string uuid = Place("caller-silent", "ext-chan", bridge_->audiosocket_port(0));
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(SendControl(*call, bridge::v1::CONTROL_TYPE_HOLD));
  auto on_channel = [&](const std::string& event) {
    return [&, event](const AmiClient::Message& m) {
      return Field(m, "Event") == event &&
             absl::StartsWith(Field(m, "Channel"), "AudioSocketExt/") &&
             absl::StrContains(Field(m, "Channel"), uuid);
    };
  };
  EXPECT_TRUE(asterisk_->ami().WaitForEvent(on_channel("Hold"), absl::Seconds(10)).has_value());
  ASSERT_TRUE(SendControl(*call, bridge::v1::CONTROL_TYPE_UNHOLD));
  EXPECT_TRUE(asterisk_->ami().WaitForEvent(on_channel("Unhold"), absl::Seconds(10)).has_value());
  call->Hangup();
  auto after = UserEvent("AfterBridge", uuid);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(Field(*after, "Status"), "ANSWER");
  EXPECT_TRUE(ModuleProblems().empty()) << absl::StrJoin(ModuleProblems(), "\n");
}

// ------------------------------------------------------------- robustness

// A server that sends malformed and unknown messages: each is logged and
// ignored, Asterisk stays up, and the call ends cleanly at the server's
// hangup (application) or close (channel driver).
TEST_P(ExtendedModuleBothTest, GarbageFromTheServerIsLoggedAndIgnored) {
  GarbageServer server(Garbage(), /*hangup_after=*/GetParam() == "ext-app");
  ASSERT_GT(server.port(), 0);
  const std::string uuid = Place("caller-silent", GetParam(), server.port());
  auto after = UserEvent("AfterBridge", uuid);
  ASSERT_TRUE(after.has_value()) << "the call did not end cleanly";
  EXPECT_TRUE(server.got_uuid());
  EXPECT_EQ(Field(*after, "Status"), GetParam() == "ext-app" ? "app" : "ANSWER");
  auto version = asterisk_->ami().Command("core show uptime");
  ASSERT_TRUE(version.ok()) << "Asterisk no longer answers AMI: " << version.status();
  EXPECT_TRUE(absl::StrContains(*version, "System uptime")) << *version;
  const std::vector<std::string> problems = ModuleProblems();
  // Logged, at most 10 per call.
  EXPECT_EQ(problems.size(), 10u) << absl::StrJoin(problems, "\n");
  const std::string log = asterisk_->Log().substr(log_start_);
  EXPECT_TRUE(absl::StrContains(log, "unknown kind 0x04")) << log;
  EXPECT_TRUE(absl::StrContains(log, "DTMF state is neither")) << log;
}

// A server that sends random bytes (its messages' lengths are whatever the
// bytes say) and closes: no crash, the call ends.
TEST_P(ExtendedModuleBothTest, RandomBytesFromTheServerEndTheCallCleanly) {
  std::string noise;
  uint32_t state = 12345;
  for (int i = 0; i < 20000; ++i) {
    state = state * 1103515245u + 12345u;
    noise.push_back(static_cast<char>(state >> 24));
  }
  GarbageServer server(noise, /*hangup_after=*/false);
  ASSERT_GT(server.port(), 0);
  const std::string uuid = Place("caller-silent", GetParam(), server.port());
  EXPECT_TRUE(UserEvent("AfterBridge", uuid).has_value()) << "the call did not end cleanly";
  auto uptime = asterisk_->ami().Command("core show uptime");
  ASSERT_TRUE(uptime.ok()) << "Asterisk no longer answers AMI: " << uptime.status();
}

}  // namespace
}  // namespace audiosocket::testing
