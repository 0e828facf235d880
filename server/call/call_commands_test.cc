// CallCommands with a fake host and a real Playout on a simulated-time loop:
// each command's checks, what it queues, and what it answers.

#include "server/call/call_commands.h"

#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/time_source.h"
#include "server/backend/testing/link_fakes.h"
#include "server/backend/testing/loop_fixtures.h"

namespace audiosocket {
namespace {

namespace v1 = ::audiosocket::bridge::v1;
using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

class FakeHost final : public CallCommands::Host {
 public:
  void Reply(const std::string& command_id, v1::CommandKind kind, v1::ResultCode code,
             std::string message, uint32_t backend_rate_hz) override {
    EXPECT_EQ(backend_rate_hz, 0u);
    replies.push_back({command_id, kind, code, std::move(message), backend_rate_hz});
  }
  void SendToBackend(v1::CallEvent event) override { events.push_back(std::move(event)); }
  bool WriteToCaller(const wire::Message& message) override {
    written.push_back(message);
    return caller_open;
  }
  void HangupFromBackend(bool after_playout) override { hangups.push_back(after_playout); }

  bool caller_open = true;
  std::vector<ReplyRecord> replies;
  std::vector<v1::CallEvent> events;
  std::vector<wire::Message> written;
  std::vector<bool> hangups;
};

// The call's side of playout: frames and notices.
class Sink final : public Playout::Delegate {
 public:
  void OnPlayoutFrame(absl::Span<const uint8_t> message) override {
    ASSERT_GE(message.size(), wire::kHeaderSize);
    std::vector<int16_t> samples((message.size() - wire::kHeaderSize) / 2);
    std::memcpy(samples.data(), message.data() + wire::kHeaderSize, samples.size() * 2);
    frames.push_back(std::move(samples));
  }
  void OnPlayoutNotices(const std::vector<PlayoutNotice>& list, bool before_frame) override {
    for (const PlayoutNotice& notice : list) {
      if (before_frame == (notice.type == PlayoutNotice::Type::kDtmfStart)) {
        notices.push_back(notice);
      }
    }
  }
  std::vector<std::vector<int16_t>> frames;
  std::vector<PlayoutNotice> notices;

  std::vector<PlayoutNotice::Type> types() const {
    std::vector<PlayoutNotice::Type> out;
    for (const auto& notice : notices) out.push_back(notice.type);
    return out;
  }
  size_t non_silent_frames() const {
    size_t n = 0;
    for (const auto& frame : frames) {
      for (int16_t s : frame) {
        if (s != 0) {
          ++n;
          break;
        }
      }
    }
    return n;
  }
};

std::string Pcm(size_t samples, int16_t value) {
  std::vector<int16_t> pcm(samples, value);
  return std::string(reinterpret_cast<const char*>(pcm.data()), pcm.size() * 2);
}

v1::CallCommand Play(std::string pcm, uint32_t rate_hz = 0, std::string response = "",
                     std::string id = "") {
  v1::CallCommand command;
  command.set_command_id(std::move(id));
  command.mutable_play()->set_pcm(std::move(pcm));
  command.mutable_play()->set_sample_rate_hz(rate_hz);
  command.mutable_play()->set_response_id(std::move(response));
  return command;
}

v1::CallCommand Dtmf(std::string digits, uint32_t tone_ms = 0, uint32_t gap_ms = 0,
                     std::string id = "d") {
  v1::CallCommand command;
  command.set_command_id(std::move(id));
  command.mutable_send_dtmf()->set_digits(std::move(digits));
  command.mutable_send_dtmf()->set_tone_ms(tone_ms);
  command.mutable_send_dtmf()->set_gap_ms(gap_ms);
  return command;
}

class CallCommandsTest : public SimulatedLoopTest {
 protected:
  void Start(wire::Dialect dialect, uint32_t max_playout_ms = 60000) {
    Playout::Options options;
    options.dialect = dialect;
    options.max_playout_ms = max_playout_ms;
    options.high_watermark_ms = 50000;
    options.low_watermark_ms = 100;
    playout_.emplace(&loop_, options, &counters_, &sink_, owner_);
    playout_->Restart(8000);  // the first (silent) frame goes at once
    commands_.emplace(dialect, max_playout_ms, &host_);
  }

  void Run(const v1::CallCommand& command, int backend_rate_hz = 8000) {
    commands_->Execute(command, *playout_, backend_rate_hz);
  }

  // One pacer tick per 20 ms.
  void Ticks(int n) { StepClock(milliseconds(20), n); }

  const ReplyRecord& OnlyReply() {
    EXPECT_THAT(host_.replies, SizeIs(1));
    static const ReplyRecord kNone{
        {}, v1::COMMAND_KIND_UNSPECIFIED, v1::RESULT_CODE_UNSPECIFIED, "no reply", 0};
    return host_.replies.empty() ? kNone : host_.replies.back();
  }

  FakeHost host_;
  Sink sink_;
  std::optional<Playout> playout_;
  std::optional<CallCommands> commands_;
};

TEST_F(CallCommandsTest, PlayWithAnOddByteCountIsInvalid) {
  Start(wire::Dialect::kAsterisk);
  Run(Play(std::string(321, '\1')));
  EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_INVALID_ARGUMENT);
  EXPECT_THAT(OnlyReply().message, HasSubstr("321 bytes"));
  EXPECT_TRUE(playout_->queue().empty());
}

TEST_F(CallCommandsTest, PlayAtAnUnsupportedRateIsInvalid) {
  Start(wire::Dialect::kAsterisk);
  Run(Play(Pcm(160, 1), 11025));
  EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_INVALID_ARGUMENT);
  EXPECT_THAT(OnlyReply().message, HasSubstr("11025"));
  EXPECT_TRUE(playout_->queue().empty());
}

TEST_F(CallCommandsTest, PlayQueuesTheAudioAndRepliesOk) {
  Start(wire::Dialect::kAsterisk);
  Run(Play(Pcm(480, 1000), 8000, "r1", "p1"));
  EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_OK);
  EXPECT_EQ(OnlyReply().command_id, "p1");
  EXPECT_EQ(playout_->queue().buffered_ms(), 60u);
  Ticks(4);
  // Frame 0 was the silence before the audio; then three frames of it.
  ASSERT_THAT(sink_.frames, SizeIs(5));
  EXPECT_EQ(sink_.non_silent_frames(), 3u);
  for (int i = 1; i <= 3; ++i) EXPECT_EQ(sink_.frames[i][0], 1000) << i;
  EXPECT_EQ(sink_.frames[4][0], 0);
}

TEST_F(CallCommandsTest, PlayWithoutACommandIdStillTellsTheHostOk) {
  // Whether an OK without command_id reaches the backend is the call's
  // decision (call_test covers it); the host hears every outcome.
  Start(wire::Dialect::kAsterisk);
  Run(Play(Pcm(160, 1)));
  EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_OK);
  EXPECT_EQ(OnlyReply().command_id, "");
}

TEST_F(CallCommandsTest, PlayAtRateZeroIsAtTheBackendRate) {
  Start(wire::Dialect::kAsterisk);
  // 320 samples are 20 ms at 16 kHz (40 ms if they were taken as 8 kHz).
  Run(Play(Pcm(320, 1000), 0), /*backend_rate_hz=*/16000);
  EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_OK);
  EXPECT_EQ(playout_->queue().buffered_ms(), 20u);
}

TEST_F(CallCommandsTest, PlayPastMaxPlayoutIsResourceExhausted) {
  Start(wire::Dialect::kAsterisk, /*max_playout_ms=*/1000);
  Run(Play(Pcm(8000 * 2, 1)));  // 2 s
  EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_RESOURCE_EXHAUSTED);
  EXPECT_TRUE(playout_->queue().empty());
}

TEST_F(CallCommandsTest, MarkRepliesOkAndResolvesWhenTheAudioBeforeItPlayed) {
  Start(wire::Dialect::kAsterisk);
  Run(Play(Pcm(320, 1)));
  v1::CallCommand mark;
  mark.set_command_id("mk");
  mark.mutable_mark()->set_name("m1");
  Run(mark);
  ASSERT_THAT(host_.replies, SizeIs(2));
  EXPECT_EQ(host_.replies[1].code, v1::RESULT_CODE_OK);
  Ticks(1);
  EXPECT_THAT(sink_.types(), IsEmpty());
  Ticks(1);  // the second and last frame of the audio
  ASSERT_THAT(sink_.notices, SizeIs(1));
  EXPECT_EQ(sink_.notices[0].type, PlayoutNotice::Type::kMarkPlayed);
  EXPECT_EQ(sink_.notices[0].name, "m1");
}

TEST_F(CallCommandsTest, ClearReportsPlayedAndDiscardedPerResponseAndClearsMarks) {
  Start(wire::Dialect::kAsterisk);
  Run(Play(Pcm(800, 1), 8000, "r1"));  // 100 ms
  Run(Play(Pcm(800, 2), 8000, "r2"));  // 100 ms
  v1::CallCommand mark;
  mark.mutable_mark()->set_name("m1");
  Run(mark);
  Ticks(3);  // 60 ms of r1
  host_.replies.clear();
  v1::CallCommand clear;
  clear.set_command_id("c1");
  clear.mutable_clear();
  Run(clear);
  EXPECT_THAT(host_.replies, IsEmpty());  // the ClearResult is the answer
  ASSERT_THAT(host_.events, SizeIs(1));
  const v1::ClearResult& cleared = host_.events[0].cleared();
  EXPECT_EQ(cleared.command_id(), "c1");
  ASSERT_EQ(cleared.responses_size(), 2);
  EXPECT_EQ(cleared.responses(0).response_id(), "r1");
  EXPECT_EQ(cleared.responses(0).played_ms(), 60u);
  EXPECT_EQ(cleared.responses(0).discarded_ms(), 40u);
  EXPECT_EQ(cleared.responses(1).response_id(), "r2");
  EXPECT_EQ(cleared.responses(1).played_ms(), 0u);
  EXPECT_EQ(cleared.responses(1).discarded_ms(), 100u);
  EXPECT_EQ(cleared.discarded_ms(), 140u);
  // The mark resolves cleared, handed over with the clear.
  ASSERT_THAT(sink_.notices, SizeIs(1));
  EXPECT_EQ(sink_.notices[0].type, PlayoutNotice::Type::kMarkCleared);
  EXPECT_EQ(sink_.notices[0].name, "m1");
  EXPECT_TRUE(playout_->queue().empty());
  const size_t before = sink_.frames.size();
  Ticks(2);
  EXPECT_EQ(sink_.frames[before][0], 0);  // silence right after the clear
}

TEST_F(CallCommandsTest, ClearOfOneResponseKeepsTheOthers) {
  Start(wire::Dialect::kAsterisk);
  Run(Play(Pcm(800, 1), 8000, "r1"));
  Run(Play(Pcm(800, 2), 8000, "r2"));
  v1::CallCommand clear;
  clear.mutable_clear()->set_response_id("r2");
  Run(clear);
  ASSERT_THAT(host_.events, SizeIs(1));
  ASSERT_EQ(host_.events[0].cleared().responses_size(), 1);
  EXPECT_EQ(host_.events[0].cleared().responses(0).response_id(), "r2");
  EXPECT_EQ(host_.events[0].cleared().responses(0).discarded_ms(), 100u);
  EXPECT_EQ(playout_->queue().buffered_ms(), 100u);
}

struct DtmfCase {
  const char* name;
  const char* digits;
  uint32_t tone_ms;
  uint32_t gap_ms;
  v1::ResultCode code;
};

class SendDtmfValidationTest : public CallCommandsTest,
                               public ::testing::WithParamInterface<DtmfCase> {};

TEST_P(SendDtmfValidationTest, Checks) {
  const DtmfCase& c = GetParam();
  Start(wire::Dialect::kExtended, /*max_playout_ms=*/2000);
  Run(Dtmf(c.digits, c.tone_ms, c.gap_ms));
  if (c.code == v1::RESULT_CODE_OK) {
    // No answer until the last tone has played.
    EXPECT_THAT(host_.replies, IsEmpty());
    EXPECT_FALSE(playout_->queue().empty());
  } else {
    EXPECT_EQ(OnlyReply().code, c.code) << OnlyReply().message;
    EXPECT_TRUE(playout_->queue().empty());
  }
}

INSTANTIATE_TEST_SUITE_P(
    Cases, SendDtmfValidationTest,
    ::testing::Values(DtmfCase{"AllDigits", "0123456789*#ABCD", 40, 30, v1::RESULT_CODE_OK},
                      DtmfCase{"Defaults", "1", 0, 0, v1::RESULT_CODE_OK},
                      DtmfCase{"ToneTooShort", "1", 39, 0, v1::RESULT_CODE_INVALID_ARGUMENT},
                      DtmfCase{"GapTooShort", "1", 0, 29, v1::RESULT_CODE_INVALID_ARGUMENT},
                      DtmfCase{"ToneTooLong", "1", 10001, 0, v1::RESULT_CODE_INVALID_ARGUMENT},
                      DtmfCase{"GapTooLong", "1", 0, 10001, v1::RESULT_CODE_INVALID_ARGUMENT},
                      DtmfCase{"NoDigits", "", 0, 0, v1::RESULT_CODE_INVALID_ARGUMENT},
                      DtmfCase{"LowerCase", "a", 0, 0, v1::RESULT_CODE_INVALID_ARGUMENT},
                      DtmfCase{"NotADigit", "12E", 0, 0, v1::RESULT_CODE_INVALID_ARGUMENT},
                      // 14 x 150 ms = 2100 ms > --max_playout_ms 2000.
                      DtmfCase{"LongerThanMaxPlayout", "12345678901234", 0, 0,
                               v1::RESULT_CODE_RESOURCE_EXHAUSTED}),
    [](const auto& info) { return info.param.name; });

TEST_F(CallCommandsTest, SendDtmfTooLongNamesTheLimit) {
  Start(wire::Dialect::kExtended, /*max_playout_ms=*/1000);
  Run(Dtmf("1234567"));  // 7 x 150 ms
  EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_RESOURCE_EXHAUSTED);
  EXPECT_THAT(OnlyReply().message, HasSubstr("1050 ms"));
  EXPECT_THAT(OnlyReply().message, HasSubstr("--max_playout_ms (1000 ms)"));
}

TEST_F(CallCommandsTest, SendDtmfOnExtendedSignalsStartAndStopThenIsDone) {
  Start(wire::Dialect::kExtended);
  Run(Dtmf("5", 100, 50, "d1"));
  Ticks(10);                                 // 200 ms > 150
  EXPECT_EQ(sink_.non_silent_frames(), 0u);  // signalled, not in the audio
  EXPECT_THAT(sink_.types(),
              ElementsAre(PlayoutNotice::Type::kDtmfStart, PlayoutNotice::Type::kDtmfStop,
                          PlayoutNotice::Type::kDtmfDone, PlayoutNotice::Type::kDrained));
  EXPECT_EQ(sink_.notices[0].digit, '5');
  EXPECT_EQ(sink_.notices[1].duration_ms, 100u);
  EXPECT_EQ(sink_.notices[2].name, "d1");
}

TEST_F(CallCommandsTest, SendDtmfOnAsteriskIsInBandTones) {
  Start(wire::Dialect::kAsterisk);
  Run(Dtmf("5", 100, 50, "d1"));
  Ticks(10);
  EXPECT_EQ(sink_.non_silent_frames(), 5u);  // 100 ms of tone
  // The queue notes start and stop either way (the call writes them only
  // on the extended dialect).
  EXPECT_THAT(sink_.types(),
              ElementsAre(PlayoutNotice::Type::kDtmfStart, PlayoutNotice::Type::kDtmfStop,
                          PlayoutNotice::Type::kDtmfDone, PlayoutNotice::Type::kDrained));
  EXPECT_EQ(sink_.notices[2].name, "d1");
}

TEST_F(CallCommandsTest, SendControlIsRefusedOnTheAsteriskDialect) {
  Start(wire::Dialect::kAsterisk);
  v1::CallCommand control;
  control.mutable_send_control()->set_type(v1::CONTROL_TYPE_ANSWER);
  Run(control);
  EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_UNSUPPORTED);
  EXPECT_THAT(OnlyReply().message, HasSubstr("dialect=extended"));
  EXPECT_THAT(host_.written, IsEmpty());
}

TEST_F(CallCommandsTest, SendControlIsWrittenOnTheExtendedDialect) {
  Start(wire::Dialect::kExtended);
  v1::CallCommand control;
  control.set_command_id("c");
  control.mutable_send_control()->set_type(v1::CONTROL_TYPE_ANSWER);
  Run(control);
  EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_OK);
  ASSERT_THAT(host_.written, SizeIs(1));
  ASSERT_TRUE(std::holds_alternative<wire::Control>(host_.written[0]));
  EXPECT_EQ(std::get<wire::Control>(host_.written[0]).code, 4);

  host_.replies.clear();
  control.mutable_send_control()->set_type(v1::CONTROL_TYPE_UNSPECIFIED);
  control.mutable_send_control()->set_raw_code(200);
  Run(control);
  EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_OK);
  ASSERT_THAT(host_.written, SizeIs(2));
  EXPECT_EQ(std::get<wire::Control>(host_.written[1]).code, 200);
}

TEST_F(CallCommandsTest, SendControlOutOfRangeIsInvalid) {
  Start(wire::Dialect::kExtended);
  for (uint32_t raw : {0u, 256u}) {
    host_.replies.clear();
    v1::CallCommand control;
    control.mutable_send_control()->set_raw_code(raw);
    Run(control);
    EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_INVALID_ARGUMENT) << raw;
  }
  EXPECT_THAT(host_.written, IsEmpty());
}

TEST_F(CallCommandsTest, SendControlToAGoneCallerIsCallEnded) {
  Start(wire::Dialect::kExtended);
  host_.caller_open = false;
  v1::CallCommand control;
  control.mutable_send_control()->set_raw_code(16);
  Run(control);
  EXPECT_EQ(OnlyReply().code, v1::RESULT_CODE_CALL_ENDED);
}

TEST_F(CallCommandsTest, HangupNowOrAfterPlayout) {
  Start(wire::Dialect::kAsterisk);
  v1::CallCommand hangup;
  hangup.mutable_hangup();
  Run(hangup);
  hangup.mutable_hangup()->set_after_playout(true);
  Run(hangup);
  EXPECT_THAT(host_.hangups, ElementsAre(false, true));
  ASSERT_THAT(host_.replies, SizeIs(2));
  EXPECT_EQ(host_.replies[0].code, v1::RESULT_CODE_OK);
  EXPECT_EQ(host_.replies[1].code, v1::RESULT_CODE_OK);
}

TEST_F(CallCommandsTest, AnEmptyCommandIsInvalid) {
  Start(wire::Dialect::kAsterisk);
  v1::CallCommand empty;
  empty.set_command_id("nothing");
  Run(empty);
  ASSERT_THAT(host_.replies, SizeIs(1));
  EXPECT_EQ(host_.replies[0].code, v1::RESULT_CODE_INVALID_ARGUMENT);
  EXPECT_EQ(host_.replies[0].command_id, "nothing");
  EXPECT_EQ(host_.replies[0].kind, v1::COMMAND_KIND_UNSPECIFIED);
  EXPECT_THAT(host_.replies[0].message, HasSubstr("empty"));
}

}  // namespace
}  // namespace audiosocket
