// End-to-end tests against a real Asterisk: calls are placed through AMI
// into Local channels, carried by stock Asterisk's AudioSocket application,
// channel driver and ARI externalMedia to the real bridge binary, and
// answered by a scripted backend in push or pull mode. What the caller
// heard is judged from Asterisk's own recording of the caller's leg.
//
// Needs an Asterisk built by tests/asterisk/build-asterisk.sh, named by
// $ASTERISK_PREFIX; without it every test skips and says why.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/asterisk/ari_client.h"
#include "tests/asterisk/asterisk_server.h"
#include "tests/asterisk/asterisk_suite.h"
#include "tests/asterisk/recording.h"
#include "tests/support/bridge_fixture.h"
#include "tests/support/bridge_process.h"
#include "tests/support/test_backends.h"

namespace audiosocket::testing {
namespace {

using bridge::v1::CallEvent;

constexpr double kCallerTone = 1000;  // Hz, played by the caller
constexpr double kBackendTone = 600;  // Hz, played by the backend
// How far a tone's length in a recording may be from what was sent: a tone
// that starts or ends inside a 20 ms block may not dominate it, so each end
// can lose a block, plus one block for Asterisk's own frame timing.
constexpr int kToleranceMs = 60;
// Silence inside a tone the caller heard, in 20 ms blocks. Neither the
// bridge nor Asterisk has a jitter buffer, and Asterisk's recording follows
// the wall clock: on a machine starved of CPU a late frame leaves a gap
// although no audio was lost. Losing audio fails the test (the tone's
// length is checked); gaps beyond this fail it too. Exact cadence is the
// benchmarks' measure, not a test's.
constexpr int kMaxGapBlocks = 10;

// The caller heard `expected_ms` of the tone, none of it lost.
void ExpectHeardWhole(const ToneRun& run, int expected_ms, const char* what) {
  EXPECT_NEAR(run.blocks_with_tone * 20, expected_ms, kToleranceMs) << what;
  EXPECT_LE(run.gap_blocks, kMaxGapBlocks) << what;
  if (run.gap_blocks > 0) {
    std::cout << "figures: " << what << ": " << run.gap_blocks * 20
              << " ms of gaps (a late frame on a loaded machine)\n";
  }
}

// The bridge's listeners, in --listen order.
enum Listener { kSlin = 0, kUlaw = 1, kAlaw = 2, kInband = 3 };

// The dialplan: the bridge side of every call, and the callers' scripts.
// ${UUID}, ${PORT} and ${CODEC} come from the originate (inherited by the
// Local channel's second leg through the "__" prefix).
std::string Dialplan(const std::string& recordings) {
  return absl::StrReplaceAll(R"(
[bridge-app]
exten => s,1,Answer()
 same => n,AudioSocket(${UUID},127.0.0.1:${PORT})
 same => n,UserEvent(AfterBridge,Uuid: ${UUID},Status: app)
 same => n,Hangup()

[bridge-chan]
exten => s,1,GotoIf($["${CODEC}" = ""]?plain)
 same => n,Dial(AudioSocket/127.0.0.1:${PORT}/${UUID}/c(${CODEC}),,g)
 same => n,Goto(after)
 same => n(plain),Dial(AudioSocket/127.0.0.1:${PORT}/${UUID},,g)
 same => n(after),UserEvent(AfterBridge,Uuid: ${UUID},Status: ${DIALSTATUS})
 same => n,Hangup()

; The caller's leg: records what it hears, then runs its script.
[record]
exten => s,1,Set(CHANNEL(hangup_handler_push)=caller-done,s,1)
 same => n,GotoIf($["${NORECORD}" != ""]?done)
 same => n,MixMonitor(RECDIR/${UUID}-mix.wav,r(RECDIR/${UUID}.wav))
 same => n(done),Return()

[caller-done]
exten => s,1,StopMixMonitor()
 same => n,UserEvent(CallerDone,Uuid: ${UUID})
 same => n,Return()

[caller-tone]
exten => s,1,Gosub(record,s,1)
 same => n,Playtones(1000)
 same => n,Wait(30)

[caller-late-tone]
exten => s,1,Gosub(record,s,1)
 same => n,Wait(1.5)
 same => n,Playtones(1000)
 same => n,Wait(30)

[caller-silent]
exten => s,1,Gosub(record,s,1)
 same => n,Wait(30)

[caller-dtmf]
exten => s,1,Gosub(record,s,1)
 same => n,Wait(1)
 same => n,SendDTMF(1234#,150,200)
 same => n,Wait(30)

[caller-inband]
exten => s,1,Gosub(record,s,1)
 same => n,Wait(1)
 same => n,Playtones(!697+1209/200,!0/200,!770+1336/200,!0/200,!852+1477/200,!0/200)
 same => n,Wait(30)

[caller-hangup]
exten => s,1,Gosub(record,s,1)
 same => n,Playtones(1000)
 same => n,Wait(1.5)
 same => n,Hangup()
)",
                             {{"RECDIR", recordings}});
}

class RealAsteriskTest : public AsteriskSuiteTest {
 protected:
  static void SetUpTestSuite() {
    StartAsterisk("tests/asterisk/build-asterisk.sh built one", [](const std::string&) {
      return asterisk_->SetDialplan(Dialplan(asterisk_->recordings_dir()));
    });
  }

  void StartBridge(Mode mode, std::vector<std::string> flags = {}) {
    mode_ = mode;
    flags.push_back(
        "--listen=127.0.0.1:0,name=slin;127.0.0.1:0,encoding=ulaw,name=ulaw;"
        "127.0.0.1:0,encoding=alaw,name=alaw;127.0.0.1:0,inband_dtmf=true,name=inband");
    bridge_ = LaunchBridge(mode, std::move(flags), push_);
    ASSERT_TRUE(bridge_->ok()) << bridge_->Output();
  }

  // Places a call: the caller runs `caller_context`; the bridge side runs
  // the application (codec empty and app true) or the channel driver.
  struct CallSpec {
    std::string caller_context = "caller-tone";
    bool app = true;
    std::string codec;             // channel driver's c() option; "" for none
    std::string originate_codecs;  // the caller's codec; "" for Asterisk's default
    Listener listener = kSlin;
    bool record = true;
  };
  std::string Place(const CallSpec& spec) {
    const std::string uuid = NewUuid();
    AsteriskServer::Originate originate;
    originate.channel = spec.app ? "Local/s@bridge-app/n" : "Local/s@bridge-chan/n";
    originate.context = spec.caller_context;
    originate.codecs = spec.originate_codecs;
    originate.variables = {{"__UUID", uuid},
                           {"__PORT", absl::StrCat(bridge_->audiosocket_port(spec.listener))},
                           {"__CODEC", spec.codec}};
    if (!spec.record) originate.variables.push_back({"NORECORD", "1"});
    const absl::Status placed = asterisk_->Place(originate);
    EXPECT_TRUE(placed.ok()) << placed;
    return uuid;
  }

  // The backend side of call `uuid`: the push backend's next call,
  // accepted, or a pull worker's claim of it.
  std::shared_ptr<BackendCall> Answer(const std::string& uuid, uint32_t sample_rate_hz = 0,
                                      bool detect_inband_dtmf = false,
                                      absl::Duration delay = absl::ZeroDuration()) {
    bridge::v1::MediaOptions media;
    media.set_sample_rate_hz(sample_rate_hz);
    media.set_detect_inband_dtmf(detect_inband_dtmf);
    if (mode_ == Mode::kPush) {
      std::shared_ptr<BackendCall> call = push_->NextCall(absl::Seconds(20));
      if (call == nullptr) {
        ADD_FAILURE() << "the bridge opened no backend call for " << uuid;
        return nullptr;
      }
      absl::SleepFor(delay);
      bridge::v1::AcceptCall accept;
      *accept.mutable_media() = media;
      call->SendAccept(accept);
      return call;
    }
    absl::SleepFor(delay);
    bridge::v1::ClaimCall claim = ClaimById(uuid);
    *claim.mutable_media() = media;
    return std::make_shared<PullWorker>(bridge_->grpc_port(), claim);
  }

  // The CallStarted event, checked to be for `uuid`.
  static CallEvent Started(BackendCall& call, const std::string& uuid) {
    auto started =
        call.NextMatching([](const CallEvent& e) { return e.has_started(); }, absl::Seconds(20));
    EXPECT_TRUE(started.has_value()) << "no CallStarted for " << uuid;
    if (!started.has_value()) return CallEvent();
    EXPECT_EQ(started->started().call_id(), uuid);
    return *started;
  }

  // Inbound audio for `duration`, concatenated; chunks' offsets checked to
  // be contiguous from 0.
  struct Received {
    std::vector<int16_t> pcm;
    int sample_rate_hz = 0;
    bool contiguous = true;
    uint64_t first_offset = 0;
  };
  static Received Collect(BackendCall& call, absl::Duration duration) {
    Received received;
    uint64_t next_offset = 0;
    bool first = true;
    const absl::Time end = absl::Now() + duration;
    while (absl::Now() < end) {
      auto event =
          call.NextMatching([](const CallEvent& e) { return e.has_audio(); }, end - absl::Now());
      if (!event.has_value()) break;
      const auto& audio = event->audio();
      if (first) received.first_offset = audio.offset_samples();
      if (!first && audio.offset_samples() != next_offset) received.contiguous = false;
      first = false;
      received.sample_rate_hz = static_cast<int>(audio.sample_rate_hz());
      const size_t samples = audio.pcm().size() / 2;
      next_offset = audio.offset_samples() + samples;
      const size_t at = received.pcm.size();
      received.pcm.resize(at + samples);
      std::memcpy(received.pcm.data() + at, audio.pcm().data(), samples * 2);
    }
    return received;
  }

  // Plays `samples` with a mark after them and waits until the mark played.
  static void PlayAndWait(BackendCall& call, const std::vector<int16_t>& samples,
                          const std::string& response_id, uint32_t rate = 0) {
    call.Play(samples, response_id, "", rate);
    bridge::v1::CallCommand mark;
    mark.mutable_mark()->set_name(response_id + "-end");
    call.Send(mark);
    auto resolved = call.NextMatching(
        [&](const CallEvent& e) { return e.has_mark() && e.mark().name() == response_id + "-end"; },
        absl::Seconds(20));
    ASSERT_TRUE(resolved.has_value()) << "mark after " << response_id << " never resolved";
    EXPECT_EQ(resolved->mark().resolution(), bridge::v1::MARK_RESOLUTION_PLAYED);
    // PLAYED means written to the socket; the caller hears it once Asterisk
    // has passed it through its channels, a little later.
    absl::SleepFor(absl::Milliseconds(300));
  }

  // Waits for the caller's leg to end and returns what it heard.
  audio::WavAudio CallerRecording(const std::string& uuid) {
    auto done = asterisk_->ami().WaitForEvent(
        [&](const AmiClient::Message& m) {
          return Field(m, "Event") == "UserEvent" && Field(m, "UserEvent") == "CallerDone" &&
                 Field(m, "Uuid") == uuid;
        },
        absl::Seconds(30));
    EXPECT_TRUE(done.has_value()) << "the caller's leg of " << uuid << " did not end";
    auto wav =
        ReadFinishedWav(asterisk_->recordings_dir() + "/" + uuid + ".wav", absl::Seconds(10));
    EXPECT_TRUE(wav.ok()) << wav.status();
    return wav.ok() ? *wav : audio::WavAudio{};
  }

  // The bridge side's dialplan went on after AudioSocket()/Dial(): the
  // "AfterBridge" user event with its status.
  std::optional<std::string> AfterBridge(const std::string& uuid,
                                         absl::Duration timeout = absl::Seconds(20)) {
    auto event = asterisk_->ami().WaitForEvent(
        [&](const AmiClient::Message& m) {
          return Field(m, "Event") == "UserEvent" && Field(m, "UserEvent") == "AfterBridge" &&
                 Field(m, "Uuid") == uuid;
        },
        timeout);
    if (!event.has_value()) return std::nullopt;
    return Field(*event, "Status");
  }

  // Asterisk logged no AudioSocket error or warning during this test. When
  // the caller hangs up, Asterisk's AudioSocket application warns that it
  // could no longer read from or write to its own channel: expected, and
  // not the bridge's doing.
  void ExpectNoAudioSocketProblems(bool caller_hung_up = false) {
    std::vector<std::string> expected;
    if (caller_hung_up) {
      expected = {"Failed to receive frame from channel", "' to channel '"};
    }
    std::vector<std::string> problems = asterisk_->LogProblems(log_start_, "audiosocket", expected);
    EXPECT_TRUE(problems.empty()) << absl::StrJoin(problems, "\n");
  }

  static std::string NewUuid() {
    static std::atomic<uint32_t> counter{0};
    return absl::StrFormat("8a1e%04x-5efd-4bd3-805f-%012x", getpid() & 0xffff,
                           counter.fetch_add(1) + 1);
  }

  Mode mode_ = Mode::kPush;
};

class RealAsteriskModeTest : public RealAsteriskTest, public ::testing::WithParamInterface<Mode> {};

// ------------------------------------------------------------ the basics

TEST_P(RealAsteriskModeTest, AppCallCarriesAudioBothWaysAndDialplanContinuesAfterHangup) {
  StartBridge(GetParam());
  const std::string uuid = Place({});
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  const CallEvent started = Started(*call, uuid);
  EXPECT_EQ(started.started().call_sample_rate_hz(), 8000u);

  const Received received = Collect(*call, absl::Seconds(1));
  EXPECT_EQ(received.sample_rate_hz, 8000);
  const ToneRun heard_by_backend = FindTone(received.pcm, 8000, kCallerTone);
  EXPECT_GE(heard_by_backend.blocks_with_tone, 30) << "the caller's tone did not reach the backend";

  PlayAndWait(*call, Sine(kBackendTone, 1500, 8000), "greeting");
  call->Hangup(/*after_playout=*/true);
  auto ended = call->NextEnded(absl::Seconds(10));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), bridge::v1::CALL_END_REASON_BACKEND_HUNG_UP);
  EXPECT_EQ(AfterBridge(uuid), "app") << "the dialplan did not continue after AudioSocket()";

  const audio::WavAudio heard = CallerRecording(uuid);
  const ToneRun tone = FindTone(heard.samples, heard.sample_rate_hz, kBackendTone);
  ExpectHeardWhole(tone, 1500, "greeting");
  ExpectNoAudioSocketProblems();
}

TEST_P(RealAsteriskModeTest, CallerHangUpEndsTheCallWithItsReason) {
  StartBridge(GetParam());
  const std::string uuid = Place({.caller_context = "caller-hangup"});
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  Started(*call, uuid);
  auto ended = call->NextEnded(absl::Seconds(15));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), bridge::v1::CALL_END_REASON_CALLER_HUNG_UP)
      << ended->ended().detail();
  EXPECT_GT(ended->ended().stats().frames_from_caller(), 40u);
  ExpectNoAudioSocketProblems(/*caller_hung_up=*/true);
}

TEST_P(RealAsteriskModeTest, SignalledDtmfFromTheCallerArrivesOnceEach) {
  StartBridge(GetParam());
  const std::string uuid = Place({.caller_context = "caller-dtmf"});
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  Started(*call, uuid);
  std::string digits;
  const absl::Time end = absl::Now() + absl::Seconds(6);
  while (absl::Now() < end && digits.size() < 5) {
    auto event =
        call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); }, end - absl::Now());
    if (!event.has_value()) break;
    EXPECT_EQ(event->dtmf().source(), bridge::v1::DTMF_SOURCE_SIGNALLED);
    // Stock Asterisk signals each digit once, at its end (0x03).
    EXPECT_EQ(event->dtmf().phase(), bridge::v1::DTMF_PHASE_END_ONLY);
    digits += event->dtmf().digit();
  }
  EXPECT_EQ(digits, "1234#");
  // And no repeat of any digit after the last one.
  EXPECT_FALSE(call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); }, absl::Seconds(1))
                   .has_value());
  call->Hangup();
}

TEST_P(RealAsteriskModeTest, LateAnswerLosesNoHeldAudio) {
  StartBridge(GetParam());
  const std::string uuid = Place({});
  // Within --hold_audio_ms (2 s): everything the caller said is delivered.
  auto call = Answer(uuid, 0, false, absl::Milliseconds(1600));
  ASSERT_NE(call, nullptr);
  Started(*call, uuid);
  const Received received = Collect(*call, absl::Seconds(1));
  EXPECT_EQ(received.first_offset, 0u);
  EXPECT_TRUE(received.contiguous) << "held audio has holes";
  // 1.6 s held plus 1 s live, less what was in flight: well over 2 s.
  EXPECT_GE(received.pcm.size(), 8000u * 2);
  call->Hangup();
  auto ended = call->NextEnded(absl::Seconds(10));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().stats().inbound_dropped_ms(), 0u);
}

// ------------------------------------------------- codecs and rates

struct CodecCase {
  std::string name;
  std::string codec;             // Dial's c() option
  std::string originate_codecs;  // the caller's codec
  Listener listener;
  uint32_t call_rate_hz;
};

class RealAsteriskCodecTest : public RealAsteriskTest,
                              public ::testing::WithParamInterface<std::tuple<Mode, CodecCase>> {};

TEST_P(RealAsteriskCodecTest, ChannelDriverCarriesCleanAudioBothWays) {
  const auto& [mode, c] = GetParam();
  StartBridge(mode);
  const std::string uuid = Place({.app = false,
                                  .codec = c.codec,
                                  .originate_codecs = c.originate_codecs,
                                  .listener = c.listener});
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  Started(*call, uuid);
  const Received received = Collect(*call, absl::Seconds(1));
  EXPECT_EQ(received.sample_rate_hz, static_cast<int>(c.call_rate_hz));
  // G.711 adds noise; a clean tone still dominates every block.
  const ToneRun inbound = FindTone(received.pcm, received.sample_rate_hz, kCallerTone, 0.8);
  EXPECT_GE(inbound.blocks_with_tone, 40) << "the caller's tone arrived distorted or not at all";

  PlayAndWait(*call, Sine(kBackendTone, 1000, 8000), "prompt", 8000);
  call->Hangup();
  EXPECT_EQ(AfterBridge(uuid), "ANSWER") << "Dial(...,g) did not continue the dialplan";
  const audio::WavAudio heard = CallerRecording(uuid);
  const ToneRun outbound = FindTone(heard.samples, heard.sample_rate_hz, kBackendTone, 0.8);
  // Audio sent to Asterisk in another coding than slin plays as noise: the
  // tone would not dominate.
  ExpectHeardWhole(outbound, 1000, "prompt");
  ExpectNoAudioSocketProblems();
}

INSTANTIATE_TEST_SUITE_P(
    Codecs, RealAsteriskCodecTest,
    ::testing::Combine(::testing::Values(Mode::kPush, Mode::kPull),
                       ::testing::Values(CodecCase{"Slin", "slin", "", kSlin, 8000},
                                         CodecCase{"Slin16", "slin16", "", kSlin, 16000},
                                         CodecCase{"Ulaw", "ulaw", "", kUlaw, 8000},
                                         CodecCase{"Alaw", "alaw", "", kAlaw, 8000},
                                         CodecCase{"UlawCallerWithoutCodecOption", "", "ulaw",
                                                   kUlaw, 8000})),
    [](const ::testing::TestParamInfo<std::tuple<Mode, CodecCase>>& info) {
      return std::string(std::get<0>(info.param) == Mode::kPush ? "Push" : "Pull") +
             std::get<1>(info.param).name;
    });

TEST_P(RealAsteriskModeTest, SixteenKilohertzCallWithASilentStartIsNotKilled) {
  StartBridge(GetParam());
  // Silent for 1.5 s, longer than --first_audio_wait: the bridge connects
  // the backend before it has seen the call's real rate.
  const std::string uuid =
      Place({.caller_context = "caller-late-tone", .app = false, .codec = "slin16"});
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  Started(*call, uuid);
  const Received received = Collect(*call, absl::Seconds(3));
  ASSERT_GT(received.sample_rate_hz, 0) << "no audio reached the backend";
  const ToneRun inbound = FindTone(received.pcm, received.sample_rate_hz, kCallerTone, 0.8);
  EXPECT_GE(inbound.blocks_with_tone, 40);
  EXPECT_FALSE(call->stream_ended());
  call->Hangup();
  auto ended = call->NextEnded(absl::Seconds(10));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), bridge::v1::CALL_END_REASON_BACKEND_HUNG_UP)
      << ended->ended().detail();
}

// ------------------------------------------------------------- DTMF

TEST_P(RealAsteriskModeTest, InbandDtmfFromTheCallerIsDetected) {
  StartBridge(GetParam());
  const std::string uuid = Place({.caller_context = "caller-inband", .listener = kInband});
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  Started(*call, uuid);
  std::string digits;
  const absl::Time end = absl::Now() + absl::Seconds(6);
  while (absl::Now() < end && digits.size() < 3) {
    auto event =
        call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); }, end - absl::Now());
    if (!event.has_value()) break;
    EXPECT_EQ(event->dtmf().source(), bridge::v1::DTMF_SOURCE_INBAND);
    if (event->dtmf().phase() == bridge::v1::DTMF_PHASE_END) digits += event->dtmf().digit();
  }
  EXPECT_EQ(digits, "159");
  call->Hangup();
}

TEST_P(RealAsteriskModeTest, DtmfFromTheBackendIsHeardByTheCaller) {
  StartBridge(GetParam());
  const std::string uuid = Place({.caller_context = "caller-silent"});
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  Started(*call, uuid);
  bridge::v1::CallCommand dtmf;
  dtmf.set_command_id("digits");
  dtmf.mutable_send_dtmf()->set_digits("159#");
  call->Send(dtmf);
  auto result = call->NextResult("digits", absl::Seconds(10));
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), bridge::v1::RESULT_CODE_OK);
  call->Hangup(/*after_playout=*/true);
  const audio::WavAudio heard = CallerRecording(uuid);
  EXPECT_EQ(DetectDigits(heard.samples, heard.sample_rate_hz), "159#");
}

// ------------------------------------------------ pacing, marks, clears

TEST_P(RealAsteriskModeTest, BurstFromTheBackendIsHeardWithoutGaps) {
  StartBridge(GetParam());
  const std::string uuid = Place({.caller_context = "caller-silent"});
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  Started(*call, uuid);
  // 3 s of tone in odd-sized chunks, all at once: the bridge re-frames and
  // paces it.
  const std::vector<int16_t> tone = Sine(kBackendTone, 3000, 8000);
  for (size_t at = 0; at < tone.size();) {
    const size_t n = std::min<size_t>(tone.size() - at, 37 + (at % 211));
    call->Play(std::vector<int16_t>(tone.begin() + at, tone.begin() + at + n), "burst");
    at += n;
  }
  bridge::v1::CallCommand mark;
  mark.mutable_mark()->set_name("end");
  call->Send(mark);
  ASSERT_TRUE(call->NextMatching([](const CallEvent& e) { return e.has_mark(); }, absl::Seconds(10))
                  .has_value());
  call->Hangup();
  const audio::WavAudio heard = CallerRecording(uuid);
  const ToneRun run = FindTone(heard.samples, heard.sample_rate_hz, kBackendTone);
  ExpectHeardWhole(run, 3000, "burst");
}

TEST_P(RealAsteriskModeTest, MarksAndClearAccountingMatchWhatTheCallerHeard) {
  StartBridge(GetParam());
  const std::string uuid = Place({.caller_context = "caller-silent"});
  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  Started(*call, uuid);
  constexpr double kSecondTone = 900;
  // Both responses queued at once: the second follows the first with no gap.
  call->Play(Sine(kBackendTone, 1000, 8000), "first");
  bridge::v1::CallCommand mark;
  mark.mutable_mark()->set_name("first-end");
  call->Send(mark);
  call->Play(Sine(kSecondTone, 5000, 8000), "second");
  auto resolved =
      call->NextMatching([](const CallEvent& e) { return e.has_mark(); }, absl::Seconds(10));
  ASSERT_TRUE(resolved.has_value());
  EXPECT_EQ(resolved->mark().resolution(), bridge::v1::MARK_RESOLUTION_PLAYED);
  absl::SleepFor(absl::Milliseconds(800));
  bridge::v1::CallCommand clear;
  clear.set_command_id("barge-in");
  clear.mutable_clear();
  call->Send(clear);
  auto cleared =
      call->NextMatching([](const CallEvent& e) { return e.has_cleared(); }, absl::Seconds(10));
  ASSERT_TRUE(cleared.has_value());
  uint32_t played_ms = 0, discarded_ms = 0;
  for (const auto& response : cleared->cleared().responses()) {
    if (response.response_id() == "second") {
      played_ms = response.played_ms();
      discarded_ms = response.discarded_ms();
    }
  }
  EXPECT_EQ(played_ms + discarded_ms, 5000u);
  absl::SleepFor(absl::Milliseconds(300));
  call->Hangup();
  const audio::WavAudio heard = CallerRecording(uuid);
  const ToneRun first = FindTone(heard.samples, heard.sample_rate_hz, kBackendTone);
  const ToneRun second = FindTone(heard.samples, heard.sample_rate_hz, kSecondTone);
  ExpectHeardWhole(first, 1000, "first response");
  // What the clear said was played is what the caller heard.
  ExpectHeardWhole(second, static_cast<int>(played_ms), "second response, up to the clear");
  // The second response followed the first without a gap.
  EXPECT_LE(second.first_block - first.last_block, 2 + kMaxGapBlocks);
}

// ------------------------------------------------------ ARI externalMedia

TEST_P(RealAsteriskModeTest, AriExternalMediaCallIsCarried) {
  StartBridge(GetParam());
  AriApplication app(asterisk_->http_port(), "bridgetest");
  ASSERT_TRUE(app.ok()) << "ARI event WebSocket refused: " << app.status_line();
  const std::string uuid = NewUuid();
  const std::string created = AriRequest(
      asterisk_->http_port(), "POST",
      absl::StrCat("/ari/channels/externalMedia?app=bridgetest&external_host=127.0.0.1:",
                   bridge_->audiosocket_port(kSlin),
                   "&encapsulation=audiosocket&transport=tcp&format=slin16&data=", uuid));
  ASSERT_TRUE(absl::StrContains(created, " 200 ")) << created;
  const size_t id_at = created.find("\"id\":\"");
  ASSERT_NE(id_at, std::string::npos) << created;
  const std::string channel_id =
      created.substr(id_at + 6, created.find('"', id_at + 6) - (id_at + 6));

  auto call = Answer(uuid);
  ASSERT_NE(call, nullptr);
  Started(*call, uuid);
  PlayAndWait(*call, Sine(kBackendTone, 500, 16000), "hello", 16000);
  // The application removes its media leg: Asterisk closes the socket.
  AriRequest(asterisk_->http_port(), "DELETE", "/ari/channels/" + channel_id);
  auto ended = call->NextEnded(absl::Seconds(10));
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), bridge::v1::CALL_END_REASON_CALLER_HUNG_UP)
      << ended->ended().detail();
  ExpectNoAudioSocketProblems(/*caller_hung_up=*/true);
}

// ------------------------------------------------------------ at scale

// Answers every call the push backend gets: echoes audio for `hold`, then
// hangs up; counts what it saw.
struct EchoBackendCounts {
  std::atomic<int> started{0};
  std::atomic<int> ended{0};
  std::atomic<int> shutdown_ended{0};
  std::atomic<uint64_t> audio_chunks{0};
};
// The backend side of `calls` calls, answered as they come: the push
// backend's next calls, or pull workers claiming any call.
std::vector<std::shared_ptr<BackendCall>> AnswerAll(Mode mode, PushBackend* push, int grpc_port,
                                                    int calls) {
  std::vector<std::shared_ptr<BackendCall>> answered;
  for (int i = 0; i < calls; ++i) {
    if (mode == Mode::kPull) {
      answered.push_back(std::make_shared<PullWorker>(grpc_port, ClaimAny()));
      continue;
    }
    std::shared_ptr<BackendCall> call = push->NextCall(absl::Seconds(30));
    if (call == nullptr) break;
    call->Accept();
    answered.push_back(std::move(call));
  }
  return answered;
}

// Echoes audio on each call for `hold`, then hangs up; counts what it saw.
void ServeEchoCalls(const std::vector<std::shared_ptr<BackendCall>>& calls, absl::Duration hold,
                    EchoBackendCounts* counts, std::vector<std::thread>* threads) {
  for (const std::shared_ptr<BackendCall>& call : calls) {
    threads->emplace_back([call, hold, counts] {
      absl::Time hang_up_at = absl::InfiniteFuture();
      bool hung_up = false;
      while (true) {
        auto event = call->Next(absl::Seconds(30));
        if (!event.has_value()) break;
        if (event->has_started()) {
          counts->started++;
          hang_up_at = absl::Now() + hold;
        }
        if (event->has_audio()) {
          counts->audio_chunks++;
          bridge::v1::CallCommand play;
          play.mutable_play()->set_pcm(event->audio().pcm());
          call->Send(play);
        }
        if (event->has_ended()) {
          counts->ended++;
          if (event->ended().reason() == bridge::v1::CALL_END_REASON_SHUTDOWN) {
            counts->shutdown_ended++;
          }
          break;
        }
        if (!hung_up && absl::Now() >= hang_up_at) {
          call->Hangup();
          hung_up = true;
        }
      }
    });
  }
}

TEST_P(RealAsteriskModeTest, FiftyConcurrentCallsAgreeWithTheBridgeMetrics) {
  // The counts are what is checked here, not the bound on audio queued for
  // a slow backend: 50 backend threads on a loaded machine can fall more
  // than the default second behind, and the bridge would rightly drop.
  StartBridge(GetParam(), {"--backend_queue_ms=60000"});
  constexpr int kCalls = 50;
  std::vector<std::string> uuids;
  for (int i = 0; i < kCalls; ++i) uuids.push_back(Place({.record = false}));
  EchoBackendCounts counts;
  std::vector<std::thread> threads;
  const auto calls = AnswerAll(GetParam(), push_.get(), bridge_->grpc_port(), kCalls);
  ServeEchoCalls(calls, absl::Seconds(3), &counts, &threads);
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counts.started.load(), kCalls);
  EXPECT_EQ(counts.ended.load(), kCalls);
  for (const std::string& uuid : uuids) EXPECT_EQ(AfterBridge(uuid), "app") << uuid;

  EXPECT_EQ(bridge_->Metric("audiosocket_bridge_calls_started_total"), kCalls);
  EXPECT_EQ(bridge_->Metric("audiosocket_bridge_calls_ended_total{reason=\"backend_hung_up\"}"),
            kCalls);
  // Every frame the bridge read from Asterisk reached the backend.
  EXPECT_EQ(bridge_->Metric("audiosocket_bridge_frames_total{direction=\"in\"}"),
            static_cast<double>(counts.audio_chunks.load()));
  EXPECT_EQ(bridge_->Metric("audiosocket_bridge_dropped_frames_total{direction=\"in\"}"), 0);
  EXPECT_EQ(bridge_->Metric("audiosocket_bridge_protocol_errors_total"), 0);
  ExpectNoAudioSocketProblems();
}

TEST_P(RealAsteriskModeTest, SigtermDrainsCallsThatAreUp) {
  StartBridge(GetParam(), {"--drain_timeout=2s"});
  constexpr int kCalls = 5;
  std::vector<std::string> uuids;
  for (int i = 0; i < kCalls; ++i) uuids.push_back(Place({.record = false}));
  EchoBackendCounts counts;
  std::vector<std::thread> threads;
  const auto calls = AnswerAll(GetParam(), push_.get(), bridge_->grpc_port(), kCalls);
  ServeEchoCalls(calls, absl::InfiniteDuration(), &counts, &threads);
  ASSERT_TRUE(bridge_->process().WaitForLines("\"call_connected\"", kCalls, absl::Seconds(20)));
  bridge_->process().Signal(SIGTERM);
  const std::optional<int> status = bridge_->process().Wait(absl::Seconds(30));
  ASSERT_TRUE(status.has_value()) << "the bridge did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(counts.shutdown_ended.load(), kCalls);
  for (const std::string& uuid : uuids) EXPECT_EQ(AfterBridge(uuid), "app") << uuid;
}

INSTANTIATE_TEST_SUITE_P(Modes, RealAsteriskModeTest, ::testing::Values(Mode::kPush, Mode::kPull),
                         ModeName);

}  // namespace
}  // namespace audiosocket::testing
