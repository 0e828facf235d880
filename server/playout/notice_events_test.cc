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
    std::optional<v1::CallEvent> event = NoticeEvent(Notice(c.type, "intro-done"), 3);
    ASSERT_TRUE(event.has_value());
    ASSERT_TRUE(event->has_mark());
    EXPECT_EQ(event->mark().name(), "intro-done");
    EXPECT_EQ(event->mark().resolution(), c.resolution);
  }
}

TEST(NoticeEventTest, SendDtmfDoneIsAnOkResultWhenItHasACommandId) {
  std::optional<v1::CallEvent> event = NoticeEvent(Notice(Type::kDtmfDone, "cmd-1"), 0);
  ASSERT_TRUE(event.has_value());
  ASSERT_TRUE(event->has_result());
  EXPECT_EQ(event->result().command_id(), "cmd-1");
  EXPECT_EQ(event->result().command(), v1::COMMAND_KIND_SEND_DTMF);
  EXPECT_EQ(event->result().code(), v1::RESULT_CODE_OK);
  // Nobody asked for a result.
  EXPECT_FALSE(NoticeEvent(Notice(Type::kDtmfDone, ""), 0).has_value());
}

TEST(NoticeEventTest, SendDtmfRemovedByAClearIsCancelled) {
  std::optional<v1::CallEvent> event = NoticeEvent(Notice(Type::kDtmfCancelled, "cmd-2"), 0);
  ASSERT_TRUE(event.has_value());
  ASSERT_TRUE(event->has_result());
  EXPECT_EQ(event->result().command_id(), "cmd-2");
  EXPECT_EQ(event->result().command(), v1::COMMAND_KIND_SEND_DTMF);
  EXPECT_EQ(event->result().code(), v1::RESULT_CODE_CANCELLED);
  EXPECT_EQ(event->result().message(), "removed by a clear");
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
  std::optional<v1::CallEvent> mark = AbandonedNoticeEvent(Notice(Type::kMarkCleared, "m"));
  ASSERT_TRUE(mark.has_value());
  ASSERT_TRUE(mark->has_mark());
  EXPECT_EQ(mark->mark().name(), "m");
  EXPECT_EQ(mark->mark().resolution(), v1::MARK_RESOLUTION_CALL_ENDED);

  std::optional<v1::CallEvent> dtmf = AbandonedNoticeEvent(Notice(Type::kDtmfCancelled, "cmd"));
  ASSERT_TRUE(dtmf.has_value());
  ASSERT_TRUE(dtmf->has_result());
  EXPECT_EQ(dtmf->result().command_id(), "cmd");
  EXPECT_EQ(dtmf->result().command(), v1::COMMAND_KIND_SEND_DTMF);
  EXPECT_EQ(dtmf->result().code(), v1::RESULT_CODE_CALL_ENDED);
  EXPECT_EQ(dtmf->result().message(), "the call ended before the tones played");
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
