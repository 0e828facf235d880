#ifndef AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_NOTICE_EVENTS_H_
#define AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_NOTICE_EVENTS_H_

// What the backend hears of the playout queue: the CallEvent for a notice
// (a mark played or cleared, a SendDtmf done or cancelled, a watermark,
// underrun or drain), or none for notices that concern only the caller.

#include <cstdint>
#include <optional>

#include "audiosocket/bridge/v1/bridge.pb.h"
#include "server/playout/playout_queue.h"

namespace audiosocket {

// `underruns`: the queue's count so far, reported with playout events.
std::optional<bridge::v1::CallEvent> NoticeEvent(const PlayoutNotice& notice, uint64_t underruns);

// The events a call that ended owes its backend for what was still queued:
// marks resolved CALL_ENDED and SendDtmf results CALL_ENDED.
std::optional<bridge::v1::CallEvent> AbandonedNoticeEvent(const PlayoutNotice& notice);

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_NOTICE_EVENTS_H_
