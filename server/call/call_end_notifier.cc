#include "server/call/call_end_notifier.h"

#include <optional>
#include <utility>

#include "server/playout/notice_events.h"

namespace audiosocket {

void CallEndNotifier::Start(event::Dispatcher* loop, std::shared_ptr<BackendLink> link,
                            PlayoutQueue::Leftovers leftovers, bridge::v1::CallEvent ended) {
  std::make_shared<CallEndNotifier>(loop, std::move(link), std::move(leftovers), std::move(ended))
      ->SendSlice();
}

CallEndNotifier::CallEndNotifier(event::Dispatcher* loop, std::shared_ptr<BackendLink> link,
                                 PlayoutQueue::Leftovers leftovers, bridge::v1::CallEvent ended)
    : loop_(loop),
      link_(std::move(link)),
      leftovers_(std::move(leftovers)),
      ended_(std::move(ended)) {}

void CallEndNotifier::SendSlice() {
  slice_.clear();
  leftovers_.Take(kPerRound, &slice_);
  for (const PlayoutNotice& notice : slice_) {
    if (std::optional<bridge::v1::CallEvent> event = AbandonedNoticeEvent(notice)) {
      link_->SendEvent(std::move(*event));
    }
  }
  if (!leftovers_.empty()) {
    loop_->Post([self = shared_from_this()] { self->SendSlice(); });
    return;
  }
  link_->SendEvent(std::move(ended_));
  link_->CloseAfterQueued();
  // A backend that neither finishes nor reads must not keep the stream
  // forever.
  loop_->RunAt(loop_->Now() + kGracePeriod, [link = link_] { link->Abort(); });
}

}  // namespace audiosocket
