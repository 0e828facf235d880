#include "server/playout/notice_events.h"

namespace audiosocket {
namespace {

void SetDtmfResult(const PlayoutNotice& notice, bridge::v1::ResultCode code,
                   bridge::v1::CommandResult* result) {
  result->set_command_id(notice.name);
  result->set_command(bridge::v1::COMMAND_KIND_SEND_DTMF);
  result->set_code(code);
}

}  // namespace

std::optional<bridge::v1::CallEvent> NoticeEvent(const PlayoutNotice& notice, uint64_t underruns) {
  using Type = PlayoutNotice::Type;
  bridge::v1::CallEvent event;
  switch (notice.type) {
    case Type::kDtmfStart:
    case Type::kDtmfStop:
    case Type::kHangup:
      return std::nullopt;
    case Type::kMarkPlayed:
    case Type::kMarkCleared:
      event.mutable_mark()->set_name(notice.name);
      event.mutable_mark()->set_resolution(notice.type == Type::kMarkPlayed
                                               ? bridge::v1::MARK_RESOLUTION_PLAYED
                                               : bridge::v1::MARK_RESOLUTION_CLEARED);
      return event;
    case Type::kDtmfDone:
      if (notice.name.empty()) return std::nullopt;  // nobody asked for a result
      SetDtmfResult(notice, bridge::v1::RESULT_CODE_OK, event.mutable_result());
      return event;
    case Type::kDtmfCancelled:
      SetDtmfResult(notice, bridge::v1::RESULT_CODE_CANCELLED, event.mutable_result());
      event.mutable_result()->set_message("removed by a clear");
      return event;
    case Type::kUnderrun:
    case Type::kHighWatermark:
    case Type::kLowWatermark:
    case Type::kDrained: {
      auto* playout = event.mutable_playout();
      playout->set_type(
          notice.type == Type::kHighWatermark  ? bridge::v1::PLAYOUT_EVENT_TYPE_HIGH_WATERMARK
          : notice.type == Type::kLowWatermark ? bridge::v1::PLAYOUT_EVENT_TYPE_LOW_WATERMARK
          : notice.type == Type::kUnderrun     ? bridge::v1::PLAYOUT_EVENT_TYPE_UNDERRUN
                                               : bridge::v1::PLAYOUT_EVENT_TYPE_DRAINED);
      playout->set_buffered_ms(notice.buffered_ms);
      playout->set_underruns(underruns);
      playout->set_response_id(notice.name);
      return event;
    }
  }
  return std::nullopt;
}

std::optional<bridge::v1::CallEvent> AbandonedNoticeEvent(const PlayoutNotice& notice) {
  bridge::v1::CallEvent event;
  if (notice.type == PlayoutNotice::Type::kMarkCleared) {
    event.mutable_mark()->set_name(notice.name);
    event.mutable_mark()->set_resolution(bridge::v1::MARK_RESOLUTION_CALL_ENDED);
    return event;
  }
  if (notice.type == PlayoutNotice::Type::kDtmfCancelled) {
    SetDtmfResult(notice, bridge::v1::RESULT_CODE_CALL_ENDED, event.mutable_result());
    event.mutable_result()->set_message("the call ended before the tones played");
    return event;
  }
  return std::nullopt;
}

}  // namespace audiosocket
