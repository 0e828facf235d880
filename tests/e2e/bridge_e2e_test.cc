// End-to-end: the real bridge binary between a scripted Asterisk and
// scripted backends, in push and in pull mode.

#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dsp/dtmf_detector.h"
#include "lib/dsp/dtmf_generator.h"
#include "lib/dsp/g711.h"
#include "tests/support/bridge_fixture.h"
#include "tests/support/bridge_process.h"
#include "tests/support/fake_asterisk.h"
#include "tests/support/test_backends.h"

namespace audiosocket::testing {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::audiosocket::bridge::v1;

// One bridge with a backend for each test, in the test's mode; worker_ for
// tests that claim calls themselves.
class BridgeTest : public ModeTest {
 protected:
  std::unique_ptr<PullWorker> worker_;
};

INSTANTIATE_TEST_SUITE_P(Modes, BridgeTest, ::testing::Values(Mode::kPush, Mode::kPull), ModeName);

std::vector<int16_t> Samples(const std::string& pcm) {
  std::vector<int16_t> out(pcm.size() / 2);
  std::memcpy(out.data(), pcm.data(), out.size() * 2);
  return out;
}

// The samples of the audio that arrives within `duration`, in order; other
// messages are skipped.
std::vector<int16_t> AudioFor(FakeAsterisk& asterisk, absl::Duration duration) {
  std::vector<int16_t> out;
  for (const Received& message : ReadFor(asterisk, duration)) {
    if (!message.is_audio()) continue;
    const std::vector<int16_t> samples = message.samples();
    out.insert(out.end(), samples.begin(), samples.end());
  }
  return out;
}

// SendControl ANSWER: a control each dialect either carries or refuses.
CallCommand AnswerControl() {
  CallCommand control;
  control.set_command_id("ctl");
  control.mutable_send_control()->set_type(v1::CONTROL_TYPE_ANSWER);
  return control;
}

// Sends `frames` 20 ms frames of what `generator` plays (its queued digits,
// then silence).
void SendGenerated(FakeAsterisk& asterisk, dsp::DtmfGenerator& generator, int frames) {
  for (int i = 0; i < frames; ++i) {
    std::vector<int16_t> frame(160);
    generator.Generate(absl::MakeSpan(frame));
    asterisk.SendAudio(frame);
  }
}

TEST_P(BridgeTest, CallStartedDescribesTheCall) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(started_.call_id(), kUuid);
  EXPECT_EQ(started_.listener(), "default");
  EXPECT_EQ(started_.dialect(), v1::DIALECT_ASTERISK);
  EXPECT_EQ(started_.call_sample_rate_hz(), 8000u);
  EXPECT_EQ(started_.backend_sample_rate_hz(), 8000u);
  EXPECT_THAT(started_.peer_address(), HasSubstr("127.0.0.1:"));
}

TEST_P(BridgeTest, CallerAudioReachesBackendInOrderWithOffsets) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  for (int i = 1; i < 10; ++i) asterisk.SendAudio(NumberedFrame(i));
  for (int i = 0; i < 10; ++i) {
    auto event = call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
    ASSERT_TRUE(event.has_value()) << "frame " << i;
    EXPECT_EQ(event->audio().sequence_number(), static_cast<uint64_t>(i));
    EXPECT_EQ(event->audio().offset_samples(), static_cast<uint64_t>(i) * 160);
    EXPECT_EQ(event->audio().sample_rate_hz(), 8000u);
    EXPECT_EQ(Samples(event->audio().pcm()), NumberedFrame(i));
  }
}

TEST_P(BridgeTest, EchoedAudioComesBackByteExactIn20MsFrames) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  std::vector<int16_t> sent = NumberedFrame(0);
  for (int i = 1; i < 25; ++i) {
    const std::vector<int16_t> frame = NumberedFrame(i);
    sent.insert(sent.end(), frame.begin(), frame.end());
    asterisk.SendAudio(frame);
  }
  // Echo every chunk back as it arrives.
  for (int i = 0; i < 25; ++i) {
    auto event = call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
    ASSERT_TRUE(event.has_value());
    ASSERT_TRUE(call->Play(Samples(event->audio().pcm()), "echo"));
  }
  // Read until the echoed audio has arrived. Silence before it, and between
  // its frames where an echo came late (the playout ran dry and kept the
  // cadence, as it must; a loaded machine can delay this test's own echo
  // by a tick), is left out: no frame sent is silent, and the pacing has
  // tests of its own. What is checked is the bytes.
  std::vector<int16_t> heard;
  int silent_between = 0;
  const absl::Time deadline = absl::Now() + kWait;
  while (absl::Now() < deadline) {
    auto message = asterisk.Read(absl::Seconds(2));
    ASSERT_TRUE(message.has_value());
    if (!message->is_audio()) continue;
    EXPECT_EQ(message->kind, 0x10);
    EXPECT_EQ(message->payload.size(), 320u) << "every frame is 20 ms at 8 kHz";
    const std::vector<int16_t> samples = message->samples();
    const bool silent =
        std::all_of(samples.begin(), samples.end(), [](int16_t s) { return s == 0; });
    if (silent) {
      if (!heard.empty()) ++silent_between;
      continue;
    }
    heard.insert(heard.end(), samples.begin(), samples.end());
    if (heard.size() >= sent.size()) break;
  }
  ASSERT_GE(heard.size(), sent.size());
  heard.resize(sent.size());
  const auto differ = std::mismatch(heard.begin(), heard.end(), sent.begin());
  EXPECT_TRUE(differ.first == heard.end())
      << "sample " << (differ.first - heard.begin()) << " (frame "
      << (differ.first - heard.begin()) / 160 << ") is " << *differ.first << ", sent "
      << *differ.second << "; " << silent_between << " silent frames came between";
}

TEST_P(BridgeTest, SilenceStartsRightAfterTheUuid) {
  StartBridge();
  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Dial(bridge_->audiosocket_port(), kUuid));
  // No audio from the caller and no backend: silence still flows.
  for (int i = 0; i < 3; ++i) {
    auto message = asterisk.Read(kWait);
    ASSERT_TRUE(message.has_value());
    EXPECT_EQ(message->kind, 0x10);
    ASSERT_EQ(message->payload.size(), 320u);
    EXPECT_THAT(message->samples(), ::testing::Each(0));
  }
}

TEST_P(BridgeTest, BackendAudioIsReframedInto20MsFrames) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  // One odd-sized chunk of 0.25 s: 2000 samples = 12.5 frames.
  std::vector<int16_t> chunk(2000);
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<int16_t>(i + 1);
  ASSERT_TRUE(call->Play(chunk, "r1", "p1"));
  auto result = call->NextResult("p1", kWait);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_OK);
  std::vector<int16_t> heard;
  while (heard.size() < 2080) {
    auto message = asterisk.Read(kWait);
    ASSERT_TRUE(message.has_value());
    if (!message->is_audio()) continue;
    ASSERT_EQ(message->payload.size(), 320u);
    const auto samples = message->samples();
    if (heard.empty() && samples[0] == 0) continue;  // leading silence
    heard.insert(heard.end(), samples.begin(), samples.end());
  }
  EXPECT_EQ(std::vector<int16_t>(heard.begin(), heard.begin() + 2000), chunk);
  // The last frame is padded with silence, never cut short.
  EXPECT_THAT(std::vector<int16_t>(heard.begin() + 2000, heard.begin() + 2080), ::testing::Each(0));
}

TEST_P(BridgeTest, MarkResolvesPlayedAfterItsAudio) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(call->Play(std::vector<int16_t>(800, 1000), "r1"));  // 100 ms
  CallCommand mark;
  mark.mutable_mark()->set_name("m1");
  ASSERT_TRUE(call->Send(mark));
  auto resolved = call->NextMatching([](const CallEvent& e) { return e.has_mark(); }, kWait);
  ASSERT_TRUE(resolved.has_value());
  EXPECT_EQ(resolved->mark().name(), "m1");
  EXPECT_EQ(resolved->mark().resolution(), v1::MARK_RESOLUTION_PLAYED);
  // By then all 100 ms have been written to the socket.
  size_t loud = 0;
  for (int16_t s : AudioFor(asterisk, absl::Milliseconds(300))) loud += s == 1000;
  EXPECT_EQ(loud, 800u);
}

TEST_P(BridgeTest, ClearReportsPlayedAndDiscardedPerResponseAndClearsMarks) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(call->Play(std::vector<int16_t>(8000 * 2, 500), "r1"));  // 2 s
  CallCommand mark;
  mark.mutable_mark()->set_name("after-r1");
  ASSERT_TRUE(call->Send(mark));
  ASSERT_TRUE(call->Play(std::vector<int16_t>(8000, 700), "r2"));  // 1 s
  // Let some of r1 play.
  size_t heard_r1 = 0;
  while (heard_r1 < 8 * 160) {
    auto message = asterisk.Read(kWait);
    ASSERT_TRUE(message.has_value());
    if (!message->is_audio()) continue;
    for (int16_t s : message->samples()) heard_r1 += s == 500;
  }
  CallCommand clear;
  clear.set_command_id("c1");
  clear.mutable_clear();
  ASSERT_TRUE(call->Send(clear));
  auto cleared = call->NextMatching([](const CallEvent& e) { return e.has_cleared(); }, kWait);
  ASSERT_TRUE(cleared.has_value());
  EXPECT_EQ(cleared->cleared().command_id(), "c1");
  ASSERT_EQ(cleared->cleared().responses_size(), 2);
  const auto& r1 = cleared->cleared().responses(0);
  const auto& r2 = cleared->cleared().responses(1);
  EXPECT_EQ(r1.response_id(), "r1");
  EXPECT_EQ(r1.played_ms() + r1.discarded_ms(), 2000u);
  EXPECT_GE(r1.played_ms(), 160u);
  EXPECT_EQ(r2.response_id(), "r2");
  EXPECT_EQ(r2.played_ms(), 0u);
  EXPECT_EQ(r2.discarded_ms(), 1000u);
  EXPECT_EQ(cleared->cleared().discarded_ms(), r1.discarded_ms() + 1000u);
  // What the caller heard matches the account exactly.
  for (int16_t s : AudioFor(asterisk, absl::Milliseconds(300))) {
    heard_r1 += s == 500;
    EXPECT_NE(s, 700) << "r2 was cleared before it started";
  }
  EXPECT_EQ(heard_r1, r1.played_ms() * 8u);
  auto mark_event = call->NextMatching([](const CallEvent& e) { return e.has_mark(); }, kWait);
  ASSERT_TRUE(mark_event.has_value());
  EXPECT_EQ(mark_event->mark().resolution(), v1::MARK_RESOLUTION_CLEARED);
}

// A clear of thousands of marks: the bridge hands their CLEARED events out
// a slice per loop round; each mark still resolves once, in queue order,
// and a mark queued after the clear resolves after all of them.
TEST_P(BridgeTest, AClearOfThousandsOfMarksResolvesEachOnceInOrder) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(call->Play(std::vector<int16_t>(8000 * 2, 500), "r1"));  // 2 s
  constexpr int kMarks = 2000;
  for (int i = 0; i < kMarks; ++i) {
    CallCommand mark;
    mark.mutable_mark()->set_name(absl::StrCat("m", i));
    ASSERT_TRUE(call->Send(mark));
  }
  CallCommand clear;
  clear.set_command_id("c1");
  clear.mutable_clear();
  ASSERT_TRUE(call->Send(clear));
  CallCommand after;
  after.mutable_mark()->set_name("after");
  ASSERT_TRUE(call->Send(after));
  auto cleared = call->NextMatching([](const CallEvent& e) { return e.has_cleared(); }, kWait);
  ASSERT_TRUE(cleared.has_value());
  EXPECT_EQ(cleared->cleared().command_id(), "c1");
  for (int i = 0; i < kMarks; ++i) {
    auto event = call->NextMatching([](const CallEvent& e) { return e.has_mark(); }, kWait);
    ASSERT_TRUE(event.has_value()) << "mark " << i;
    ASSERT_EQ(event->mark().name(), absl::StrCat("m", i));
    ASSERT_EQ(event->mark().resolution(), v1::MARK_RESOLUTION_CLEARED);
  }
  auto last = call->NextMatching([](const CallEvent& e) { return e.has_mark(); }, kWait);
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(last->mark().name(), "after");
  EXPECT_EQ(last->mark().resolution(), v1::MARK_RESOLUTION_PLAYED);
}

TEST_P(BridgeTest, ClearOfOneResponseKeepsTheOthers) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(call->Play(std::vector<int16_t>(1600, 500), "keep"));
  ASSERT_TRUE(call->Play(std::vector<int16_t>(1600, 700), "drop"));
  CallCommand clear;
  clear.mutable_clear()->set_response_id("drop");
  ASSERT_TRUE(call->Send(clear));
  auto cleared = call->NextMatching([](const CallEvent& e) { return e.has_cleared(); }, kWait);
  ASSERT_TRUE(cleared.has_value());
  ASSERT_EQ(cleared->cleared().responses_size(), 1);
  EXPECT_EQ(cleared->cleared().responses(0).response_id(), "drop");
  EXPECT_EQ(cleared->cleared().responses(0).discarded_ms(), 200u);
  size_t kept = 0;
  for (int16_t s : AudioFor(asterisk, absl::Milliseconds(400))) {
    kept += s == 500;
    EXPECT_NE(s, 700);
  }
  EXPECT_EQ(kept, 1600u);
}

TEST_P(BridgeTest, AsteriskDtmfDigitBecomesEndOnlyEvent) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  asterisk.SendDtmfDigit('7');
  auto dtmf = call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); }, kWait);
  ASSERT_TRUE(dtmf.has_value());
  EXPECT_EQ(dtmf->dtmf().digit(), "7");
  EXPECT_EQ(dtmf->dtmf().phase(), v1::DTMF_PHASE_END_ONLY);
  EXPECT_EQ(dtmf->dtmf().source(), v1::DTMF_SOURCE_SIGNALLED);
  EXPECT_EQ(dtmf->dtmf().offset_samples(), 160u);
}

TEST_P(BridgeTest, ExtendedDtmfStartStopBecomeBeginAndEnd) {
  FakeAsterisk asterisk(wire::Dialect::kExtended);
  auto call = StartCall(asterisk, {}, "127.0.0.1:0,dialect=extended,name=ext");
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(started_.dialect(), v1::DIALECT_EXTENDED);
  EXPECT_EQ(started_.listener(), "ext");
  asterisk.SendDtmfEvent(true, '#', 0);
  asterisk.SendDtmfEvent(false, '#', 120);
  auto begin = call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); }, kWait);
  auto end = call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); }, kWait);
  ASSERT_TRUE(begin.has_value() && end.has_value());
  EXPECT_EQ(begin->dtmf().digit(), "#");
  EXPECT_EQ(begin->dtmf().phase(), v1::DTMF_PHASE_BEGIN);
  EXPECT_EQ(end->dtmf().phase(), v1::DTMF_PHASE_END);
  EXPECT_EQ(end->dtmf().duration_ms(), 120u);
}

TEST_P(BridgeTest, ExtendedControlBothWays) {
  FakeAsterisk asterisk(wire::Dialect::kExtended);
  auto call = StartCall(asterisk, {}, "127.0.0.1:0,dialect=extended");
  ASSERT_NE(call, nullptr);
  asterisk.SendControl(16);   // hold
  asterisk.SendControl(200);  // not a known AST_CONTROL value
  auto hold = call->NextMatching([](const CallEvent& e) { return e.has_control(); }, kWait);
  auto unknown = call->NextMatching([](const CallEvent& e) { return e.has_control(); }, kWait);
  ASSERT_TRUE(hold.has_value() && unknown.has_value());
  EXPECT_EQ(hold->control().type(), v1::CONTROL_TYPE_HOLD);
  EXPECT_EQ(hold->control().raw_code(), 16u);
  EXPECT_EQ(unknown->control().type(), v1::CONTROL_TYPE_UNSPECIFIED);
  EXPECT_EQ(unknown->control().raw_code(), 200u);

  auto result = SendForResult(*call, AnswerControl());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_OK);
  auto message = asterisk.ReadNonAudio(kWait);
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->kind, 0x03);
  EXPECT_EQ(message->payload, std::vector<uint8_t>{4});
}

TEST_P(BridgeTest, ExtendedSendDtmfIsPacedStartStopMessages) {
  FakeAsterisk asterisk(wire::Dialect::kExtended);
  auto call = StartCall(asterisk, {}, "127.0.0.1:0,dialect=extended");
  ASSERT_NE(call, nullptr);
  CallCommand dtmf;
  dtmf.set_command_id("d1");
  dtmf.mutable_send_dtmf()->set_digits("12");
  dtmf.mutable_send_dtmf()->set_tone_ms(80);
  dtmf.mutable_send_dtmf()->set_gap_ms(60);
  ASSERT_TRUE(call->Send(dtmf));
  std::vector<std::pair<std::vector<uint8_t>, size_t>> seen;  // payload, frames before it
  size_t frames = 0;
  while (seen.size() < 4) {
    auto message = asterisk.Read(kWait);
    ASSERT_TRUE(message.has_value());
    if (message->is_audio()) {
      ++frames;
      continue;
    }
    ASSERT_EQ(message->kind, 0x02);
    seen.emplace_back(message->payload, frames);
  }
  EXPECT_EQ(seen[0].first, (std::vector<uint8_t>{1, '1', 0, 0, 0, 0}));
  EXPECT_EQ(seen[1].first, (std::vector<uint8_t>{0, '1', 80, 0, 0, 0}));
  EXPECT_EQ(seen[2].first, (std::vector<uint8_t>{1, '2', 0, 0, 0, 0}));
  EXPECT_EQ(seen[3].first, (std::vector<uint8_t>{0, '2', 80, 0, 0, 0}));
  // 80 ms of tone = 4 frames between start and stop; 140 ms per digit.
  EXPECT_EQ(seen[1].second - seen[0].second, 4u);
  EXPECT_EQ(seen[2].second - seen[0].second, 7u);
  auto result = call->NextResult("d1", kWait);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_OK);
}

TEST_P(BridgeTest, AsteriskDialectRefusesControl) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  auto result = SendForResult(*call, AnswerControl());
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_UNSUPPORTED);
  EXPECT_THAT(result->result().message(), HasSubstr("extended"));
  // Nothing but audio ever reaches stock Asterisk.
  for (const Received& message : ReadFor(asterisk, absl::Milliseconds(200))) {
    EXPECT_TRUE(message.is_audio()) << "kind " << int{message.kind};
  }
}

// A command before the backend has the call is refused, and its result
// says which command it was (push: before accept; pull: before CallStarted).
TEST_P(BridgeTest, CommandBeforeTheCallIsTakenIsRefusedNamingItsCommand) {
  StartBridge();
  CallCommand play;
  play.set_command_id("early");
  play.mutable_play()->set_pcm(std::string(320, '\0'));
  std::shared_ptr<BackendCall> call;
  FakeAsterisk asterisk;
  if (GetParam() == Mode::kPull) {
    worker_ = std::make_unique<PullWorker>(bridge_->grpc_port(), ClaimAny());
    call = std::shared_ptr<BackendCall>(worker_.get(), [](BackendCall*) {});
  } else {
    ASSERT_TRUE(asterisk.Dial(bridge_->audiosocket_port(), kUuid));
    asterisk.SendAudio(NumberedFrame(0));
    call = push_->NextCall(kWait);
    ASSERT_NE(call, nullptr);
    ASSERT_TRUE(call->NextMatching([](const CallEvent& e) { return e.has_started(); }, kWait));
  }
  auto result = SendForResult(*call, play);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_FAILED_PRECONDITION);
  EXPECT_EQ(result->result().command(), v1::COMMAND_KIND_PLAY);
}

// After its hang-up the bridge reads on until Asterisk closes its end:
// Asterisk's channel driver may still be writing bridged audio from another
// thread, and a socket closed at once makes those writes fail (an error in
// Asterisk's log).
TEST_P(BridgeTest, AfterItsHangupTheBridgeReadsUntilAsteriskCloses) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(call->Hangup());
  // The hang-up, then the end of the bridge's stream (its write side).
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
  ASSERT_FALSE(asterisk.others().empty());
  EXPECT_EQ(asterisk.others().back().kind, 0x00);
  for (int i = 1; i <= 25; ++i) {
    asterisk.SendAudio(NumberedFrame(i));
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_FALSE(asterisk.send_failed()) << "the bridge closed while Asterisk was still writing";
}

TEST_P(BridgeTest, InvalidCommandsAnswerClearErrors) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  CallCommand odd;
  odd.set_command_id("odd");
  odd.mutable_play()->set_pcm(std::string(3, '\0'));
  auto result = SendForResult(*call, odd);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_INVALID_ARGUMENT);
  EXPECT_THAT(result->result().message(), HasSubstr("even"));
  // Every result names its command.
  EXPECT_EQ(result->result().command(), v1::COMMAND_KIND_PLAY);

  CallCommand digits;
  digits.set_command_id("dig");
  digits.mutable_send_dtmf()->set_digits("1x");
  result = SendForResult(*call, digits);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_INVALID_ARGUMENT);
  EXPECT_EQ(result->result().command(), v1::COMMAND_KIND_SEND_DTMF);

  // What the backend sent is quoted short, however long it was.
  CallCommand long_digits;
  long_digits.set_command_id("long");
  long_digits.mutable_send_dtmf()->set_digits(std::string(100000, 'x'));
  result = SendForResult(*call, long_digits);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_INVALID_ARGUMENT);
  EXPECT_LT(result->result().message().size(), 200u);
  EXPECT_THAT(result->result().message(), HasSubstr("(100000 bytes)"));

  CallCommand empty;
  empty.set_command_id("empty");
  result = SendForResult(*call, empty);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_INVALID_ARGUMENT);
  EXPECT_EQ(result->result().command(), v1::COMMAND_KIND_UNSPECIFIED);
  // Errors never end the call.
  ASSERT_TRUE(call->Play(std::vector<int16_t>(160, 9), "", "after"));
  result = call->NextResult("after", kWait);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_OK);
}

TEST_P(BridgeTest, BackendHangupSendsHangupAndCloses) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(call->Hangup());
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_BACKEND_HUNG_UP);
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
  bool hangup = false;
  for (const Received& m : asterisk.others()) hangup |= m.kind == 0x00 && m.payload.empty();
  EXPECT_TRUE(hangup) << "the bridge sends 0x00 before closing";
}

TEST_P(BridgeTest, HangupAfterPlayoutPlaysQueuedAudioFirst) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(call->Play(std::vector<int16_t>(1600, 321), "bye"));
  ASSERT_TRUE(call->Hangup(/*after_playout=*/true));
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
  EXPECT_EQ(std::count(asterisk.audio().begin(), asterisk.audio().end(), 321), 1600);
  ASSERT_FALSE(asterisk.others().empty());
  EXPECT_EQ(asterisk.others().back().kind, 0x00);
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_BACKEND_HUNG_UP);
}

TEST_P(BridgeTest, CallerClosingIsCallerHungUp) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(call->Play(std::vector<int16_t>(8000, 1), "r"));
  CallCommand mark;
  mark.set_command_id("m");
  mark.mutable_mark()->set_name("never");
  ASSERT_TRUE(call->Send(mark));
  ASSERT_TRUE(call->NextResult("m", kWait).has_value());
  asterisk.Close();
  auto resolved = call->NextMatching([](const CallEvent& e) { return e.has_mark(); }, kWait);
  ASSERT_TRUE(resolved.has_value());
  EXPECT_EQ(resolved->mark().resolution(), v1::MARK_RESOLUTION_CALL_ENDED);
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_CALLER_HUNG_UP);
  EXPECT_EQ(ended->ended().stats().frames_from_caller(), 1u);
  EXPECT_TRUE(bridge_->WaitForEvent("call_ended", "CALLER_HUNG_UP").has_value());
}

TEST_P(BridgeTest, CallerHangupMessageIsCallerHungUp) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  asterisk.SendHangup();
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_CALLER_HUNG_UP);
}

TEST_P(BridgeTest, AsteriskErrorEndsCallWithDecodedFlags) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  asterisk.SendError(0x05);
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_ASTERISK_ERROR);
  EXPECT_EQ(ended->ended().asterisk_error().flags(), 5u);
  EXPECT_TRUE(ended->ended().asterisk_error().caller_hangup());
  EXPECT_FALSE(ended->ended().asterisk_error().frame_forwarding());
  EXPECT_TRUE(ended->ended().asterisk_error().memory());
}

TEST_P(BridgeTest, MalformedInputIsProtocolErrorNamingTheProblem) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  asterisk.SendRaw({0x10, 0x00, 0x03, 1, 2, 3});  // odd-length audio
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_PROTOCOL_ERROR);
  EXPECT_THAT(ended->ended().detail(), HasSubstr("odd"));
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
}

TEST_P(BridgeTest, BackendGoingAwayIsBackendLost) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  call->Cancel();
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
  EXPECT_TRUE(bridge_->WaitForEvent("call_ended", "BACKEND_LOST").has_value()) << bridge_->Output();
}

TEST_P(BridgeTest, FirstMessageMustBeTheUuid) {
  StartBridge();
  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Connect(bridge_->audiosocket_port()));
  asterisk.SendAudio(NumberedFrame(0));
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
  auto line = bridge_->WaitForEvent("connection_closed", "protocol_error");
  ASSERT_TRUE(line.has_value()) << bridge_->Output();
  EXPECT_THAT(*line, HasSubstr("first message must be the UUID"));
}

TEST_P(BridgeTest, NoUuidInTimeClosesTheConnection) {
  StartBridge({"--uuid_timeout=300ms"});
  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Connect(bridge_->audiosocket_port()));
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
  EXPECT_TRUE(bridge_->WaitForEvent("connection_closed", "uuid_timeout").has_value());
}

TEST_P(BridgeTest, ShutdownEndsCallsWithReasonShutdown) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk, {"--drain_timeout=200ms"});
  ASSERT_NE(call, nullptr);
  bridge_->process().Signal(SIGTERM);
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_SHUTDOWN);
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
  auto status = bridge_->process().Wait(kWait);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << bridge_->Output();
}

// A 16 kHz backend on an 8 kHz call: audio is converted both ways.
TEST_P(BridgeTest, BackendRateIsConvertedBothWays) {
  StartBridge();
  FakeAsterisk asterisk;
  std::shared_ptr<BackendCall> call;
  if (GetParam() == Mode::kPull) {
    bridge::v1::ClaimCall claim = ClaimAny();
    claim.mutable_media()->set_sample_rate_hz(16000);
    worker_ = std::make_unique<PullWorker>(bridge_->grpc_port(), claim);
    call = std::shared_ptr<BackendCall>(worker_.get(), [](BackendCall*) {});
    ASSERT_TRUE(asterisk.Dial(bridge_->audiosocket_port(), kUuid));
    asterisk.SendAudio(NumberedFrame(0));
    auto started = call->Next(kWait);
    ASSERT_TRUE(started.has_value() && started->has_started());
    EXPECT_EQ(started->started().backend_sample_rate_hz(), 16000u);
  } else {
    ASSERT_TRUE(asterisk.Dial(bridge_->audiosocket_port(), kUuid));
    asterisk.SendAudio(NumberedFrame(0));
    call = push_->NextCall(kWait);
    ASSERT_NE(call, nullptr);
    ASSERT_TRUE(call->Next(kWait).has_value());
    ASSERT_TRUE(call->Accept(16000));
  }
  for (int i = 1; i < 50; ++i) asterisk.SendAudio(NumberedFrame(i));
  uint64_t next_offset = 0;
  size_t received = 0;
  while (received < 50 * 320 - 400) {
    auto audio = call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
    ASSERT_TRUE(audio.has_value()) << received;
    EXPECT_EQ(audio->audio().sample_rate_hz(), 16000u);
    EXPECT_EQ(audio->audio().offset_samples(), next_offset) << "offsets stay contiguous";
    next_offset += audio->audio().pcm().size() / 2;
    received += audio->audio().pcm().size() / 2;
  }
  // 16 kHz from the backend: 0.5 s of a constant level becomes 4000 samples at 8 kHz.
  ASSERT_TRUE(call->Play(std::vector<int16_t>(8000, 4000), "r", "p"));
  auto result = call->NextResult("p", kWait);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_OK);
  size_t loud = 0;
  for (const Received& m : ReadFor(asterisk, absl::Seconds(1))) {
    if (!m.is_audio()) continue;
    EXPECT_EQ(m.payload.size(), 320u);
    for (int16_t sample : m.samples()) loud += std::abs(sample - 4000) < 200;
  }
  // All but the resampler's edges and the filter delay still inside it.
  EXPECT_NEAR(static_cast<double>(loud), 4000, 100);
}

// A 16 kHz caller whose first audio comes after --first_audio_wait: the
// backend was told 8 kHz (the listener's default) and gets 8 kHz audio,
// resampled; the caller hears 16 kHz, since only silence had been played.
TEST_P(BridgeTest, LateFirstAudioAtAnotherRateIsResampledNotFatal) {
  StartBridge();
  FakeAsterisk asterisk;
  std::shared_ptr<BackendCall> call;
  if (GetParam() == Mode::kPull) {
    worker_ = std::make_unique<PullWorker>(bridge_->grpc_port(), ClaimAny());
    call = std::shared_ptr<BackendCall>(worker_.get(), [](BackendCall*) {});
  }
  ASSERT_TRUE(asterisk.Dial(bridge_->audiosocket_port(), kUuid));
  if (GetParam() == Mode::kPush) {
    call = push_->NextCall(kWait);
    ASSERT_NE(call, nullptr);
  }
  auto started = call->Next(kWait);  // after the first-audio wait
  ASSERT_TRUE(started.has_value() && started->has_started());
  EXPECT_EQ(started->started().call_sample_rate_hz(), 8000u);
  EXPECT_EQ(started->started().backend_sample_rate_hz(), 8000u);
  // 0.5 s of a 16 kHz constant level; in push mode the accept comes after
  // the rate changed and still gets the rate CallStarted announced.
  for (int i = 0; i < 25; ++i) asterisk.SendAudio(std::vector<int16_t>(320, 3000), 16000);
  if (GetParam() == Mode::kPush) {
    absl::SleepFor(absl::Milliseconds(200));
    v1::AcceptCall accept;
    accept.set_command_id("a");
    ASSERT_TRUE(call->SendAccept(accept));
    auto result = call->NextResult("a", kWait);
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(result->result().code(), v1::RESULT_CODE_OK);
    EXPECT_EQ(result->result().backend_sample_rate_hz(), 8000u);
  }
  uint64_t next_offset = 0;
  while (next_offset < 25 * 160 - 100) {
    auto audio = call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
    ASSERT_TRUE(audio.has_value()) << next_offset << "\n" << bridge_->Output();
    EXPECT_EQ(audio->audio().sample_rate_hz(), 8000u);
    EXPECT_EQ(audio->audio().offset_samples(), next_offset) << "offsets stay contiguous";
    next_offset += audio->audio().pcm().size() / 2;
  }
  const std::vector<Received> heard = ReadFor(asterisk, absl::Milliseconds(300));
  ASSERT_FALSE(heard.empty());
  EXPECT_EQ(heard.back().kind, 0x12) << "playout restarted at the call's real rate";
  EXPECT_EQ(heard.back().payload.size(), 640u);
  EXPECT_FALSE(asterisk.closed());
  EXPECT_FALSE(call->stream_ended());
}

// Once audio has been carried, Asterisk never changes a call's rate: a
// change is malformed input.
TEST_P(BridgeTest, RateChangeAfterAudioIsAProtocolError) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  asterisk.SendAudio(std::vector<int16_t>(320, 0), 16000);
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_PROTOCOL_ERROR);
  EXPECT_THAT(ended->ended().detail(), HasSubstr("from 8000 Hz to 16000 Hz after 20 ms"));
}

TEST_P(BridgeTest, UnsupportedRateAnswersAClearError) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(call->Play(std::vector<int16_t>(160, 1), "r", "bad", 11025));
  auto result = call->NextResult("bad", kWait);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_INVALID_ARGUMENT);
  EXPECT_THAT(result->result().message(), HasSubstr("11025"));
}

// Stock Asterisk takes DTMF only in the audio: the bridge generates tones.
TEST_P(BridgeTest, AsteriskDialectSendDtmfIsInbandTones) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  CallCommand dtmf;
  dtmf.set_command_id("d");
  dtmf.mutable_send_dtmf()->set_digits("59#");
  auto result = SendForResult(*call, dtmf);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_OK) << result->result().message();
  // Everything up to the result has been written; read it and listen.
  for (const Received& m : ReadFor(asterisk, absl::Milliseconds(300))) {
    EXPECT_TRUE(m.is_audio()) << "only audio ever goes to stock Asterisk";
  }
  auto detector = dsp::DtmfDetector::Create(8000);
  ASSERT_TRUE(detector.ok());
  std::vector<dsp::DtmfEvent> events;
  detector->Process(asterisk.audio(), &events);
  detector->Flush(&events);
  std::string digits;
  for (const auto& e : events) {
    if (e.kind == dsp::DtmfEvent::Kind::kEnd) {
      digits.push_back(e.digit);
      EXPECT_NEAR(e.duration_ms, 100, 10);
    }
  }
  EXPECT_EQ(digits, "59#");
}

// A tone in the caller's audio is reported as in-band DTMF, once, even when
// Asterisk also signals it.
TEST_P(BridgeTest, InbandDtmfIsDetectedAndReportedOnce) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk, {}, "127.0.0.1:0,inband_dtmf=true");
  ASSERT_NE(call, nullptr);
  dsp::DtmfGenerator::Options options;
  options.tone_ms = 120;
  options.gap_ms = 200;
  auto generator = dsp::DtmfGenerator::Create(8000, options);
  ASSERT_TRUE(generator.ok());
  ASSERT_TRUE(generator->Queue("4").ok());
  SendGenerated(asterisk, *generator, 8);
  asterisk.SendDtmfDigit('4');  // Asterisk's 0x03 at the digit's end
  SendGenerated(asterisk, *generator, 12);
  std::vector<CallEvent> dtmf;
  while (auto event = call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); },
                                         absl::Seconds(2))) {
    dtmf.push_back(*event);
  }
  ASSERT_EQ(dtmf.size(), 2u);
  EXPECT_EQ(dtmf[0].dtmf().phase(), v1::DTMF_PHASE_BEGIN);
  EXPECT_EQ(dtmf[0].dtmf().source(), v1::DTMF_SOURCE_INBAND);
  EXPECT_EQ(dtmf[0].dtmf().digit(), "4");
  EXPECT_NEAR(static_cast<double>(dtmf[0].dtmf().offset_samples()), 160, 80);
  EXPECT_EQ(dtmf[1].dtmf().phase(), v1::DTMF_PHASE_END);
  EXPECT_NEAR(dtmf[1].dtmf().duration_ms(), 120, 10);
}

// In-band detection asked for at accept / claim; the tone started while the
// call was still waiting, and is reported all the same.
TEST_P(BridgeTest, InbandDetectionRequestedByTheBackend) {
  StartBridge();
  FakeAsterisk asterisk;
  auto generator = dsp::DtmfGenerator::Create(8000);
  ASSERT_TRUE(generator.ok());
  ASSERT_TRUE(generator->Queue("7").ok());
  std::shared_ptr<BackendCall> call;
  ASSERT_TRUE(asterisk.Dial(bridge_->audiosocket_port(), kUuid));
  SendGenerated(asterisk, *generator, 10);
  ASSERT_TRUE(bridge_->WaitForEvent("call_started").has_value());
  if (GetParam() == Mode::kPull) {
    bridge::v1::ClaimCall claim = ClaimAny();
    claim.mutable_media()->set_detect_inband_dtmf(true);
    worker_ = std::make_unique<PullWorker>(bridge_->grpc_port(), claim);
    call = std::shared_ptr<BackendCall>(worker_.get(), [](BackendCall*) {});
    ASSERT_TRUE(call->Next(kWait).has_value());
  } else {
    call = push_->NextCall(kWait);
    ASSERT_NE(call, nullptr);
    ASSERT_TRUE(call->Next(kWait).has_value());
    v1::AcceptCall accept;
    accept.mutable_media()->set_detect_inband_dtmf(true);
    ASSERT_TRUE(call->SendAccept(accept));
  }
  auto begin = call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); }, kWait);
  auto end = call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); }, kWait);
  ASSERT_TRUE(begin.has_value() && end.has_value());
  EXPECT_EQ(begin->dtmf().digit(), "7");
  EXPECT_EQ(begin->dtmf().source(), v1::DTMF_SOURCE_INBAND);
  EXPECT_EQ(end->dtmf().phase(), v1::DTMF_PHASE_END);
  EXPECT_NEAR(end->dtmf().duration_ms(), 100, 10);
}

TEST_P(BridgeTest, NoInbandEventsUnlessAskedFor) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  auto generator = dsp::DtmfGenerator::Create(8000);
  ASSERT_TRUE(generator.ok());
  ASSERT_TRUE(generator->Queue("7").ok());
  SendGenerated(asterisk, *generator, 10);
  EXPECT_FALSE(
      call->NextMatching([](const CallEvent& e) { return e.has_dtmf(); }, absl::Milliseconds(800))
          .has_value());
}

// G.711 listeners: Asterisk sends G.711 bytes labelled 0x10, but reads
// whatever it receives as signed linear at the kind's rate, so audio toward
// it is slin whatever the listener's encoding.
TEST_P(BridgeTest, G711ListenersDecodeInboundAndSendSignedLinear) {
  for (const dsp::AudioEncoding encoding : {dsp::AudioEncoding::kUlaw, dsp::AudioEncoding::kAlaw}) {
    SCOPED_TRACE(std::string(dsp::AudioEncodingName(encoding)));
    bridge_.reset();
    push_.reset();
    worker_.reset();
    StartBridge({}, absl::StrCat("127.0.0.1:0,encoding=", dsp::AudioEncodingName(encoding)));
    FakeAsterisk asterisk;
    if (GetParam() == Mode::kPull) {
      worker_ = std::make_unique<PullWorker>(bridge_->grpc_port(), ClaimAny());
    }
    ASSERT_TRUE(asterisk.Dial(bridge_->audiosocket_port(), kUuid));
    std::vector<int16_t> sent(160);
    for (size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<int16_t>(i * 100 - 8000);
    asterisk.SendG711(encoding, sent);
    std::shared_ptr<BackendCall> call;
    if (GetParam() == Mode::kPush) {
      call = push_->NextCall(kWait);
      ASSERT_NE(call, nullptr);
    } else {
      call = std::shared_ptr<BackendCall>(worker_.get(), [](BackendCall*) {});
    }
    auto started = call->Next(kWait);
    ASSERT_TRUE(started.has_value());
    EXPECT_EQ(started->started().call_encoding(), encoding == dsp::AudioEncoding::kUlaw
                                                      ? v1::AUDIO_ENCODING_MULAW
                                                      : v1::AUDIO_ENCODING_ALAW);
    EXPECT_EQ(started->started().call_sample_rate_hz(), 8000u);
    if (GetParam() == Mode::kPush) {
      ASSERT_TRUE(call->Accept());
    }
    auto audio = call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
    ASSERT_TRUE(audio.has_value());
    const std::vector<int16_t> linear = Samples(audio->audio().pcm());
    ASSERT_EQ(linear.size(), 160u);
    std::vector<uint8_t> g711(sent.size());
    dsp::EncodeFromLinear(encoding, sent, absl::MakeSpan(g711));
    std::vector<int16_t> expected(sent.size());
    dsp::DecodeToLinear(encoding, g711, absl::MakeSpan(expected));
    EXPECT_EQ(linear, expected);
    ASSERT_TRUE(call->Play(std::vector<int16_t>(160, 1000), "r"));
    bool heard = false;
    for (const Received& m : ReadFor(asterisk, absl::Seconds(1))) {
      if (!m.is_audio()) continue;
      EXPECT_EQ(m.kind, 0x10);
      ASSERT_EQ(m.payload.size(), 320u) << "20 ms of 8 kHz signed linear, never G.711 bytes";
      heard |= m.samples() == std::vector<int16_t>(160, 1000);
    }
    EXPECT_TRUE(heard) << "the backend's audio reached the caller as slin";
  }
}

TEST_P(BridgeTest, AudioBeforeAcceptIsHeldAndDeliveredFirst) {
  StartBridge();
  FakeAsterisk asterisk;
  if (GetParam() == Mode::kPull) {
    // The call arrives before any worker: its audio waits for the claim.
    ASSERT_TRUE(asterisk.Dial(bridge_->audiosocket_port(), kUuid));
    for (int i = 0; i < 5; ++i) asterisk.SendAudio(NumberedFrame(i));
    ASSERT_TRUE(bridge_->WaitForEvent("call_started").has_value());
    absl::SleepFor(absl::Milliseconds(300));
    worker_ = std::make_unique<PullWorker>(bridge_->grpc_port(), ClaimById(kUuid));
    ASSERT_TRUE(worker_->Next(kWait).has_value());
    for (int i = 0; i < 5; ++i) {
      auto audio = worker_->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
      ASSERT_TRUE(audio.has_value());
      EXPECT_EQ(Samples(audio->audio().pcm()), NumberedFrame(i));
    }
    return;
  }
  ASSERT_TRUE(asterisk.Dial(bridge_->audiosocket_port(), kUuid));
  for (int i = 0; i < 5; ++i) asterisk.SendAudio(NumberedFrame(i));
  auto call = push_->NextCall(kWait);
  ASSERT_NE(call, nullptr);
  ASSERT_TRUE(call->Next(kWait).has_value());  // started
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_TRUE(call->History().size() == 1) << "no audio before accept";
  ASSERT_TRUE(call->Accept());
  for (int i = 0; i < 5; ++i) {
    auto audio = call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
    ASSERT_TRUE(audio.has_value());
    EXPECT_EQ(Samples(audio->audio().pcm()), NumberedFrame(i));
  }
}

// Sends `frames` numbered 20 ms frames at about real-time pace, then waits
// until the bridge has read them all.
void SendPacedFrames(FakeAsterisk& asterisk, BridgeProcess& bridge, int frames) {
  for (int i = 0; i < frames; ++i) {
    asterisk.SendAudio(NumberedFrame(i));
    absl::SleepFor(absl::Milliseconds(20));
  }
  const absl::Time deadline = absl::Now() + kWait;
  while (bridge.Metric("audiosocket_bridge_frames_total{direction=\"in\"}") < frames &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
}

// Audio held before accept/claim (--hold_audio_ms, 2 s) arrives whole and in
// order; beyond the hold only the oldest is dropped, and counted.
class HoldTest : public BridgeTest {
 protected:
  // Calls with `frames` frames sent before the backend takes the call;
  // returns the audio the backend got (sequence numbers, in order) and the
  // call's end.
  void Run(int frames, std::vector<uint64_t>* sequences, std::vector<uint64_t>* offsets,
           v1::CallEnded* ended) {
    // The hold outlasts --backend_queue_ms (1 s): the link must take it all.
    StartBridge({"--accept_timeout=20s", "--claim_timeout=20s"});
    FakeAsterisk asterisk;
    ASSERT_TRUE(asterisk.Dial(bridge_->audiosocket_port(), kUuid));
    SendPacedFrames(asterisk, *bridge_, frames);
    std::shared_ptr<BackendCall> call;
    if (GetParam() == Mode::kPush) {
      call = push_->AcceptNextCall(kWait);
      ASSERT_NE(call, nullptr);
    } else {
      worker_ = std::make_unique<PullWorker>(bridge_->grpc_port(), ClaimById(kUuid));
      call = std::shared_ptr<BackendCall>(worker_.get(), [](BackendCall*) {});
    }
    while (true) {
      auto event =
          call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, absl::Seconds(2));
      if (!event.has_value()) break;
      sequences->push_back(event->audio().sequence_number());
      offsets->push_back(event->audio().offset_samples());
      if (event->audio().sequence_number() + 1 == static_cast<uint64_t>(frames)) break;
    }
    asterisk.Close();
    auto end = call->NextEnded(kWait);
    ASSERT_TRUE(end.has_value());
    *ended = end->ended();
  }
};

INSTANTIATE_TEST_SUITE_P(Modes, HoldTest, ::testing::Values(Mode::kPush, Mode::kPull), ModeName);

std::vector<uint64_t> Range(uint64_t first, uint64_t end, uint64_t step = 1) {
  std::vector<uint64_t> out;
  for (uint64_t i = first; i < end; ++i) out.push_back(i * step);
  return out;
}

TEST_P(HoldTest, AudioWithinTheHoldIsDeliveredWhole) {
  std::vector<uint64_t> sequences, offsets;
  v1::CallEnded ended;
  Run(85, &sequences, &offsets, &ended);  // 1.7 s
  EXPECT_EQ(sequences, Range(0, 85)) << bridge_->Output();
  EXPECT_EQ(offsets, Range(0, 85, 160));
  EXPECT_EQ(ended.stats().inbound_dropped_ms(), 0u);
  EXPECT_EQ(bridge_->Metric("audiosocket_bridge_dropped_frames_total{direction=\"in\"}"), 0);
}

TEST_P(HoldTest, AudioBeyondTheHoldLosesOnlyTheOldest) {
  std::vector<uint64_t> sequences, offsets;
  v1::CallEnded ended;
  Run(150, &sequences, &offsets, &ended);  // 3 s: the first second is beyond the hold
  EXPECT_EQ(sequences, Range(50, 150)) << bridge_->Output();
  EXPECT_EQ(offsets, Range(50, 150, 160)) << "the loss shows as a gap in offsets";
  EXPECT_EQ(ended.stats().inbound_dropped_ms(), 1000u);
  EXPECT_EQ(bridge_->Metric("audiosocket_bridge_dropped_frames_total{direction=\"in\"}"), 50);
}

TEST_P(BridgeTest, SlowBackendLosesOldestAudioAndSeesTheGap) {
  // 60 s of audio in a burst: the flood limit is off for this test.
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk, {"--backend_queue_ms=100", "--max_audio_ahead_ms=0"});
  ASSERT_NE(call, nullptr);
  call->PauseReading();
  // Far more than gRPC's flow-control windows hold: 60 s of audio at once.
  for (int i = 1; i <= 3000; ++i) asterisk.SendAudio(NumberedFrame(i));
  // The bridge still serves the caller while the backend is stuck.
  auto message = asterisk.Read(kWait);
  ASSERT_TRUE(message.has_value());
  absl::SleepFor(absl::Milliseconds(500));
  call->ResumeReading();
  uint64_t expected_offset = 0;
  uint64_t missed = 0;
  uint64_t last_sequence = 0;
  while (true) {
    auto event =
        call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, absl::Seconds(2));
    if (!event.has_value()) break;
    missed += event->audio().offset_samples() - expected_offset;
    expected_offset = event->audio().offset_samples() + event->audio().pcm().size() / 2;
    last_sequence = event->audio().sequence_number();
    if (last_sequence == 3000) break;
  }
  EXPECT_EQ(last_sequence, 3000u) << "the newest audio is kept\n" << bridge_->Output();
  EXPECT_GT(missed, 0u) << "audio was dropped and shows as a gap in offsets";
  asterisk.Close();
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().stats().inbound_dropped_ms(), missed / 8);
}

TEST_P(BridgeTest, ListAndHangupCallOverGrpc) {
  FakeAsterisk asterisk;
  auto call = StartCall(asterisk);
  ASSERT_NE(call, nullptr);
  // Held audio is delivered right after the accept took effect.
  ASSERT_TRUE(call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait));
  auto stub = BridgeServiceStub(bridge_->grpc_port());
  v1::ListCallsResponse list;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->ListCalls(&context, v1::ListCallsRequest(), &list).ok());
  }
  ASSERT_EQ(list.calls_size(), 1);
  EXPECT_EQ(list.calls(0).call_id(), kUuid);
  EXPECT_EQ(list.calls(0).state(), v1::CALL_STATE_CONNECTED);
  {
    grpc::ClientContext context;
    v1::HangupCallRequest request;
    request.set_call_id("00000000-0000-0000-0000-000000000000");
    v1::HangupCallResponse response;
    EXPECT_EQ(stub->HangupCall(&context, request, &response).error_code(),
              grpc::StatusCode::NOT_FOUND);
  }
  {
    grpc::ClientContext context;
    v1::HangupCallRequest request;
    request.set_call_id(kUuid);
    v1::HangupCallResponse response;
    ASSERT_TRUE(stub->HangupCall(&context, request, &response).ok());
  }
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_HANGUP_REQUESTED);
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
}

TEST_P(BridgeTest, WatchCallsStreamsStartAndEnd) {
  StartBridge();
  auto stub = BridgeServiceStub(bridge_->grpc_port());
  grpc::ClientContext context;
  auto reader = stub->WatchCalls(&context, v1::WatchCallsRequest());
  FakeAsterisk asterisk;
  auto call = Connect(asterisk);
  ASSERT_NE(call, nullptr);
  v1::WatchCallsResponse change;
  ASSERT_TRUE(reader->Read(&change));
  ASSERT_TRUE(change.has_started());
  EXPECT_EQ(change.started().call_id(), kUuid);
  asterisk.Close();
  ASSERT_TRUE(reader->Read(&change));
  ASSERT_TRUE(change.has_ended());
  EXPECT_EQ(change.ended().reason(), v1::CALL_END_REASON_CALLER_HUNG_UP);
  context.TryCancel();
}

TEST_P(BridgeTest, DuplicateCallIdIsRefused) {
  StartBridge();
  FakeAsterisk first;
  auto call = Connect(first);
  ASSERT_NE(call, nullptr);
  FakeAsterisk second;
  ASSERT_TRUE(second.Dial(bridge_->audiosocket_port(), kUuid));
  EXPECT_TRUE(second.WaitClosed(kWait));
  EXPECT_TRUE(bridge_->WaitForEvent("connection_closed", "already active").has_value());
  EXPECT_FALSE(first.closed());
}

// ---------------------------------------------------- mode-specific cases

TEST(PushModeTest, AcceptTimeoutEndsTheCall) {
  PushBackend backend;
  BridgeProcess bridge(
      {"--backend=" + backend.target(), "--accept_timeout=300ms", "--first_audio_wait=50ms"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Dial(bridge.audiosocket_port(), kUuid));
  auto call = backend.NextCall(kWait);
  ASSERT_NE(call, nullptr);  // never answers
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
  EXPECT_TRUE(bridge.WaitForEvent("call_ended", "ACCEPT_TIMEOUT").has_value()) << bridge.Output();
  auto ended = call->NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_ACCEPT_TIMEOUT);
}

TEST(PushModeTest, BusyBackendFailsOverToTheNextAddress) {
  PushBackend busy;
  PushBackend ready;
  BridgeProcess bridge(
      {absl::StrCat("--backend=ipv4:127.0.0.1:", busy.port(), ",127.0.0.1:", ready.port()),
       "--first_audio_wait=50ms"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  // Either may be tried first (round-robin); the busy one rejects.
  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Dial(bridge.audiosocket_port(), kUuid));
  asterisk.SendAudio(NumberedFrame(0));
  std::shared_ptr<BackendCall> accepted;
  for (int attempt = 0; attempt < 2 && accepted == nullptr; ++attempt) {
    if (auto call = busy.NextCall(absl::Milliseconds(attempt == 0 ? 1500 : 10))) {
      ASSERT_TRUE(call->Next(kWait).has_value());
      v1::RejectCall reject;
      reject.set_reason(v1::REJECT_REASON_BUSY);
      ASSERT_TRUE(call->SendReject(reject));
    }
    if (auto call = ready.NextCall(absl::Seconds(2))) {
      ASSERT_TRUE(call->Next(kWait).has_value());
      ASSERT_TRUE(call->Accept());
      accepted = call;
    }
  }
  ASSERT_NE(accepted, nullptr) << bridge.Output();
  auto audio = accepted->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
  ASSERT_TRUE(audio.has_value());
  EXPECT_EQ(Samples(audio->audio().pcm()), NumberedFrame(0));
}

TEST(PushModeTest, AcceptResultConfirmsTheBackendRate) {
  PushBackend backend;
  BridgeProcess bridge({"--backend=" + backend.target(), "--first_audio_wait=50ms"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Dial(bridge.audiosocket_port(), kUuid));
  asterisk.SendAudio(NumberedFrame(0));
  auto call = backend.NextCall(kWait);
  ASSERT_NE(call, nullptr);
  auto started = call->Next(kWait);
  ASSERT_TRUE(started.has_value() && started->has_started());
  EXPECT_EQ(started->started().backend_sample_rate_hz(), 8000u) << "what an accept with 0 gets";
  v1::AcceptCall accept;
  accept.set_command_id("a");
  accept.mutable_media()->set_sample_rate_hz(16000);
  ASSERT_TRUE(call->SendAccept(accept));
  auto result = call->NextResult("a", kWait);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->result().code(), v1::RESULT_CODE_OK);
  EXPECT_EQ(result->result().backend_sample_rate_hz(), 16000u);
  auto audio = call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
  ASSERT_TRUE(audio.has_value());
  EXPECT_EQ(audio->audio().sample_rate_hz(), 16000u);
}

// A backend restarting when the call arrives: failed attempts are retried
// with backoff until the accept deadline, so it still gets the call.
TEST(PushModeTest, BackendComingUpLateStillGetsTheCall) {
  int port;
  {
    PushBackend reserved;
    port = reserved.port();
  }
  BridgeProcess bridge({absl::StrCat("--backend=ipv4:127.0.0.1:", port), "--first_audio_wait=50ms",
                        "--accept_timeout=5s"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Dial(bridge.audiosocket_port(), kUuid));
  asterisk.SendAudio(NumberedFrame(0));
  ASSERT_TRUE(bridge.WaitForEvent("backend_attempt_failed").has_value()) << bridge.Output();
  absl::SleepFor(absl::Seconds(1));
  PushBackend backend(port);
  ASSERT_EQ(backend.port(), port);
  auto call = backend.AcceptNextCall(kWait);
  ASSERT_NE(call, nullptr) << bridge.Output();
  auto audio = call->NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
  ASSERT_TRUE(audio.has_value()) << bridge.Output();
  EXPECT_EQ(Samples(audio->audio().pcm()), NumberedFrame(0));
  EXPECT_FALSE(asterisk.closed());
}

TEST(PushModeTest, AllBackendsRejectingEndsTheCall) {
  PushBackend backend;
  BridgeProcess bridge(
      {"--backend=" + backend.target(), "--backend_attempts=2", "--first_audio_wait=50ms"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Dial(bridge.audiosocket_port(), kUuid));
  for (int i = 0; i < 2; ++i) {
    auto call = backend.NextCall(kWait);
    ASSERT_NE(call, nullptr) << "attempt " << i;
    ASSERT_TRUE(call->Next(kWait).has_value());
    v1::RejectCall reject;
    reject.set_reason(v1::REJECT_REASON_BUSY);
    reject.set_detail("all agents busy");
    ASSERT_TRUE(call->SendReject(reject));
  }
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
  auto line = bridge.WaitForEvent("call_ended", "ALL_BACKENDS_REJECTED");
  ASSERT_TRUE(line.has_value()) << bridge.Output();
  EXPECT_THAT(*line, HasSubstr("all agents busy"));
}

TEST(PushModeTest, UnreachableBackendIsRetriedUntilTheAcceptTimeout) {
  // A port nothing listens on.
  int dead_port;
  {
    PushBackend gone;
    dead_port = gone.port();
  }
  BridgeProcess bridge({absl::StrCat("--backend=ipv4:127.0.0.1:", dead_port),
                        "--first_audio_wait=50ms", "--accept_timeout=1s"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Dial(bridge.audiosocket_port(), kUuid));
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
  auto line = bridge.WaitForEvent("call_ended", "ALL_BACKENDS_REJECTED");
  ASSERT_TRUE(line.has_value()) << bridge.Output();
  EXPECT_THAT(*line, HasSubstr("no backend reachable within 1s"));
  EXPECT_THAT(*line, HasSubstr("stream ended before accept")) << "the last attempt's error";
  // Retried with backoff (100, 200, 400 ms...), not all at once.
  const std::string output = bridge.Output();
  size_t failed = 0;
  for (size_t at = output.find("backend_attempt_failed"); at != std::string::npos;
       at = output.find("backend_attempt_failed", at + 1)) {
    ++failed;
  }
  EXPECT_GE(failed, 3u);
  EXPECT_LE(failed, 6u);
}

TEST(PullModeTest, ClaimTimeoutEndsTheCall) {
  BridgeProcess bridge({"--mode=pull", "--claim_timeout=300ms", "--first_audio_wait=50ms"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Dial(bridge.audiosocket_port(), kUuid));
  EXPECT_TRUE(asterisk.WaitClosed(kWait));
  EXPECT_TRUE(bridge.WaitForEvent("call_ended", "CLAIM_TIMEOUT").has_value()) << bridge.Output();
}

TEST(PullModeTest, ClaimByListenerTakesOnlyThatListenersCalls) {
  BridgeProcess bridge(
      {"--mode=pull", "--first_audio_wait=50ms", "--listen=127.0.0.1:0,name=a;127.0.0.1:0,name=b"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  bridge::v1::ClaimCall claim_b;
  claim_b.set_listener("b");
  PullWorker worker_b(bridge.grpc_port(), claim_b);
  FakeAsterisk on_a;
  ASSERT_TRUE(on_a.Dial(bridge.audiosocket_port(0), "11111111-1111-4111-8111-111111111111"));
  FakeAsterisk on_b;
  ASSERT_TRUE(on_b.Dial(bridge.audiosocket_port(1), "22222222-2222-4222-8222-222222222222"));
  auto started = worker_b.Next(kWait);
  ASSERT_TRUE(started.has_value() && started->has_started());
  EXPECT_EQ(started->started().call_id(), "22222222-2222-4222-8222-222222222222");
  EXPECT_EQ(started->started().listener(), "b");
}

TEST(PullModeTest, FirstMessageMustBeAClaimAndAStreamEndedForItIsCounted) {
  for (const char* transport : {"loop", "grpc"}) {
    SCOPED_TRACE(transport);
    BridgeProcess bridge({"--mode=pull", absl::StrCat("--server_transport=", transport)});
    ASSERT_TRUE(bridge.ok()) << bridge.Output();
    auto stub = BridgeServiceStub(bridge.grpc_port());
    grpc::ClientContext context;
    auto stream = stub->ClaimCall(&context);
    v1::ClaimCallRequest request;
    request.mutable_command()->mutable_hangup();
    stream->Write(request);
    v1::ClaimCallResponse response;
    EXPECT_FALSE(stream->Read(&response));
    grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("claim"));
    EXPECT_EQ(bridge.Metric("audiosocket_bridge_pull_stream_errors_total"), 1);
  }
}

TEST(PushModeTest, ClaimCallIsRefusedInPushMode) {
  PushBackend backend;
  BridgeProcess bridge({"--backend=" + backend.target()});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  PullWorker worker(bridge.grpc_port(), ClaimAny());
  EXPECT_EQ(worker.status().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace audiosocket::testing

namespace audiosocket::testing {
namespace {

// Waits for audiosocket-call to exit and returns its output, the JSON
// summary; a failure unless it exited 0.
std::string FinishedSummary(Subprocess& caller) {
  auto status = caller.Wait(kWait);
  EXPECT_TRUE(status.has_value() && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << caller.Output();
  return caller.Output();
}

// The count that `pattern`'s one group captures in `summary`; -1, and a
// failure, when there is none.
int SummaryCount(const std::string& summary, const std::string& pattern) {
  std::smatch match;
  if (!std::regex_search(summary, match, std::regex(pattern))) {
    ADD_FAILURE() << "no " << pattern << " in " << summary;
    return -1;
  }
  return std::stoi(match[1].str());
}

constexpr char kFramesSent[] = "\"frames_sent\":([0-9]+)";
// Round trips are matched by frame content, so they count echoed frames
// that came back byte-exact.
constexpr char kByteExactEchoes[] = "\"rtt_ms\":\\{[^}]*\"count\":([0-9]+)";

// The whole path with the project's own Asterisk emulator: audiosocket-call
// plays a caller at real-time pace, a backend echoes every chunk, and the
// emulator's summary shows the echo came back frame for frame.
TEST(EmulatorEndToEndTest, EchoThroughTheBridgeWithDtmf) {
  PushBackend backend;
  BridgeProcess bridge({"--backend=" + backend.target(), "--first_audio_wait=100ms"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  Subprocess caller({RunfilePath("tools/audiosocket-call/audiosocket-call"),
                     absl::StrCat("--target=127.0.0.1:", bridge.audiosocket_port()),
                     "--source=tone:440", "--duration=2s", "--dtmf=5@500ms", "--end=hangup"});
  auto call = backend.AcceptNextCall(kWait);
  ASSERT_NE(call, nullptr);
  int echoed = 0;
  bool dtmf_seen = false;
  while (auto event = call->Next(absl::Seconds(5))) {
    if (event->has_audio()) {
      ASSERT_TRUE(call->Play(Samples(event->audio().pcm()), "echo"));
      ++echoed;
    } else if (event->has_dtmf()) {
      EXPECT_EQ(event->dtmf().digit(), "5");
      EXPECT_EQ(event->dtmf().phase(), v1::DTMF_PHASE_END_ONLY);
      dtmf_seen = true;
    } else if (event->has_ended()) {
      EXPECT_EQ(event->ended().reason(), v1::CALL_END_REASON_CALLER_HUNG_UP);
      break;
    }
  }
  EXPECT_TRUE(dtmf_seen);
  const std::string summary = FinishedSummary(caller);
  const int sent = SummaryCount(summary, kFramesSent);
  ASSERT_GE(sent, 0);
  EXPECT_GE(echoed, sent - 1) << "every frame reached the backend";
  EXPECT_GE(SummaryCount(summary, kByteExactEchoes), sent * 8 / 10) << summary;
  EXPECT_GE(SummaryCount(summary, "\"frames_received\":([0-9]+)"), 80)
      << "about 50 frames a second for 2 s";
}

// A μ-law caller (as Asterisk with c(ulaw)) through a ulaw listener: the
// emulator sends G.711 and reads what comes back as signed linear, as
// Asterisk does, so the echo matches only if the bridge sends slin.
TEST(EmulatorEndToEndTest, UlawCallerHearsItsEchoAsSignedLinear) {
  PushBackend backend;
  BridgeProcess bridge({"--backend=" + backend.target(), "--first_audio_wait=100ms",
                        "--listen=127.0.0.1:0,encoding=ulaw"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  Subprocess caller({RunfilePath("tools/audiosocket-call/audiosocket-call"),
                     absl::StrCat("--target=127.0.0.1:", bridge.audiosocket_port()),
                     "--encoding=ulaw", "--source=tone:440", "--duration=2s", "--end=hangup"});
  auto call = backend.AcceptNextCall(kWait);
  ASSERT_NE(call, nullptr);
  while (auto event = call->Next(absl::Seconds(5))) {
    if (event->has_audio()) {
      ASSERT_TRUE(call->Play(Samples(event->audio().pcm()), "echo"));
    } else if (event->has_ended()) {
      break;
    }
  }
  const std::string summary = FinishedSummary(caller);
  const int sent = SummaryCount(summary, kFramesSent);
  ASSERT_GE(sent, 0);
  EXPECT_GE(SummaryCount(summary, kByteExactEchoes), sent * 8 / 10) << summary;
}

}  // namespace
}  // namespace audiosocket::testing
