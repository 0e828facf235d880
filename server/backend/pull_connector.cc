#include "server/backend/pull_connector.h"

#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"

namespace audiosocket {

PullConnector::PullConnector(Context context, absl::Duration claim_timeout,
                             ClaimDispatcher* dispatcher)
    : context_(std::move(context)), claim_timeout_(claim_timeout), dispatcher_(dispatcher) {}

void PullConnector::Connect() {
  waiting_ = true;
  deadline_timer_ = context_.loop->RunAt(
      context_.loop->Now() + absl::ToChronoNanoseconds(claim_timeout_),
      [this, owner = context_.owner] {
        if (owner.lock() == nullptr) return;
        deadline_timer_ = 0;
        if (!waiting_) return;
        // A claim already on its way wins over the timeout.
        if (!dispatcher_->Withdraw(this)) return;
        waiting_ = false;
        context_.host->EndCall(bridge::v1::CALL_END_REASON_CLAIM_TIMEOUT,
                               absl::StrCat("no worker claimed the call within ",
                                            absl::FormatDuration(claim_timeout_)));
      });
  dispatcher_->Offer(shared_from_this());
}

void PullConnector::Stop() {
  if (waiting_) dispatcher_->Withdraw(this);
  waiting_ = false;
  context_.loop->CancelTimer(deadline_timer_);
  deadline_timer_ = 0;
}

void PullConnector::OnClaimed(std::shared_ptr<ClaimSlot> stream) {
  std::weak_ptr<PullConnector> weak = weak_from_this();
  context_.loop->Post([weak, owner = context_.owner, stream = std::move(stream),
                       dispatcher = dispatcher_]() mutable {
    auto call = owner.lock();
    auto connector = weak.lock();
    if (call != nullptr && connector != nullptr) {
      connector->HandleClaimed(std::move(stream));
    } else {
      dispatcher->ReturnSlot(std::move(stream));
    }
  });
}

void PullConnector::HandleClaimed(std::shared_ptr<ClaimSlot> stream) {
  if (!waiting_) {
    dispatcher_->ReturnSlot(std::move(stream));
    return;
  }
  waiting_ = false;
  context_.loop->CancelTimer(deadline_timer_);
  deadline_timer_ = 0;
  constexpr uint64_t kLinkId = 1;  // one claim per call
  stream->Attach(kLinkId, context_.observer);
  context_.host->UseLink(stream, kLinkId);
  const bridge::v1::MediaOptions media = stream->claim().media();
  if (absl::Status applied = context_.host->ApplyMedia(media, context_.host->call_rate_hz());
      !applied.ok()) {
    stream->SendEvent(context_.host->StartedEvent());
    context_.host->EndCall(
        bridge::v1::CALL_END_REASON_BACKEND_LOST,
        absl::StrCat("the claim's media options were refused: ", applied.message()));
    return;
  }
  context_.host->OnBackendConnected(/*attempts=*/1, /*announce=*/true);
}

bool PullConnector::HandleSetupMessage(BackendMessageRef message, bool /*waiting*/) {
  const auto* const* request = std::get_if<const bridge::v1::ClaimCallRequest*>(&message);
  if (request == nullptr || !(*request)->has_claim()) return false;
  context_.host->Reply((*request)->claim().command_id(), bridge::v1::COMMAND_KIND_CLAIM,
                       bridge::v1::RESULT_CODE_FAILED_PRECONDITION,
                       "this stream has already claimed its call", 0);
  return true;
}

bool PullConnector::HandleLinkClosedWhileWaiting(const grpc::Status& /*status*/) { return false; }

}  // namespace audiosocket
