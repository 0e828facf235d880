// What the backend hears of each playout notice, live and when the call
// ended with it still queued.

#include "server/playout/notice_events.h"

#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket {
namespace {

namespace v1 = bridge::v1;
using Type = PlayoutNotice::Type;

PlayoutNotice Notice(Type type, std::string name = {}, uint32_t buffered_ms = 0) {
  PlayoutNotice notice{type};
  notice.name = std::move(name);
  notice.digit = '5';
  notice.duration_ms = 100;
  notice.buffered_ms = buffered_ms;
  return notice;
}

// `event` resolves the mark `name` with `resolution`.
void ExpectMark(const std::optional<v1::CallEvent>& event, const std::string& name,
                v1::MarkResolution resolution) {
  ASSERT_TRUE(event.has_value());
  ASSERT_TRUE(event->has_mark());
  EXPECT_EQ(event->mark().name(), name);
  EXPECT_EQ(event->mark().resolution(), resolution);
}

// `event` is the result of the SendDtmf command `command_id`, with `code`
// and a message that `message` matches.
void ExpectSendDtmfResult(const std::optional<v1::CallEvent>& event, const std::string& command_id,
                          v1::ResultCode code,
                          const ::testing::Matcher<const std::string&>& message = ::testing::_) {
  ASSERT_TRUE(event.has_value());
  ASSERT_TRUE(event->has_result());
  EXPECT_EQ(event->result().command_id(), command_id);
  EXPECT_EQ(event->result().command(), v1::COMMAND_KIND_SEND_DTMF);
  EXPECT_EQ(event->result().code(), code);
  EXPECT_THAT(event->result().message(), message);
}

TEST(NoticeEventTest, NoticesForTheCallerOnlyGiveNoEvent) {
  for (Type type : {Type::kDtmfStart, Type::kDtmfStop, Type::kHangup}) {
    EXPECT_FALSE(NoticeEvent(Notice(type, "x"), 0).has_value()) << static_cast<int>(type);
  }
}

TEST(NoticeEventTest, MarksResolvePlayedOrCleared) {
  const struct {
    Type type;
    v1::MarkResolution resolution;
  } cases[] = {
      {Type::kMarkPlayed, v1::MARK_RESOLUTION_PLAYED},
      {Type::kMarkCleared, v1::MARK_RESOLUTION_CLEARED},
  };
  for (const auto& c : cases) {
    ExpectMark(NoticeEvent(Notice(c.type, "intro-done"), 3), "intro-done", c.resolution);
  }
}

TEST(NoticeEventTest, SendDtmfDoneIsAnOkResultWhenItHasACommandId) {
  ExpectSendDtmfResult(NoticeEvent(Notice(Type::kDtmfDone, "cmd-1"), 0), "cmd-1",
                       v1::RESULT_CODE_OK);
  // Nobody asked for a result.
  EXPECT_FALSE(NoticeEvent(Notice(Type::kDtmfDone, ""), 0).has_value());
}

TEST(NoticeEventTest, SendDtmfRemovedByAClearIsCancelled) {
  ExpectSendDtmfResult(NoticeEvent(Notice(Type::kDtmfCancelled, "cmd-2"), 0), "cmd-2",
                       v1::RESULT_CODE_CANCELLED, "removed by a clear");
}

TEST(NoticeEventTest, PlayoutNoticesCarryLevelUnderrunsAndResponse) {
  const struct {
    Type type;
    v1::PlayoutEventType expected;
  } cases[] = {
      {Type::kUnderrun, v1::PLAYOUT_EVENT_TYPE_UNDERRUN},
      {Type::kHighWatermark, v1::PLAYOUT_EVENT_TYPE_HIGH_WATERMARK},
      {Type::kLowWatermark, v1::PLAYOUT_EVENT_TYPE_LOW_WATERMARK},
      {Type::kDrained, v1::PLAYOUT_EVENT_TYPE_DRAINED},
  };
  for (const auto& c : cases) {
    std::optional<v1::CallEvent> event = NoticeEvent(Notice(c.type, "resp-9", 1234), 7);
    ASSERT_TRUE(event.has_value());
    ASSERT_TRUE(event->has_playout());
    EXPECT_EQ(event->playout().type(), c.expected) << static_cast<int>(c.type);
    EXPECT_EQ(event->playout().buffered_ms(), 1234u);
    EXPECT_EQ(event->playout().underruns(), 7u);
    EXPECT_EQ(event->playout().response_id(), "resp-9");
  }
}

TEST(AbandonedNoticeEventTest, QueuedMarksAndSendDtmfResolveCallEnded) {
  ExpectMark(AbandonedNoticeEvent(Notice(Type::kMarkCleared, "m")), "m",
             v1::MARK_RESOLUTION_CALL_ENDED);
  ExpectSendDtmfResult(AbandonedNoticeEvent(Notice(Type::kDtmfCancelled, "cmd")), "cmd",
                       v1::RESULT_CODE_CALL_ENDED, "the call ended before the tones played");
}

TEST(AbandonedNoticeEventTest, OtherNoticesGiveNoEvent) {
  for (Type type :
       {Type::kMarkPlayed, Type::kDtmfStart, Type::kDtmfStop, Type::kDtmfDone, Type::kHangup,
        Type::kHighWatermark, Type::kLowWatermark, Type::kUnderrun, Type::kDrained}) {
    EXPECT_FALSE(AbandonedNoticeEvent(Notice(type, "x")).has_value()) << static_cast<int>(type);
  }
}

}  // namespace
}  // namespace audiosocket
