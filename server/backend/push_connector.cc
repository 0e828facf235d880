#include "server/backend/push_connector.h"

#include <algorithm>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "server/ops/log.h"

namespace audiosocket {
namespace {

// The wait before retrying after a stream failed before accept, doubled
// after each failure up to the cap. A backend that restarts refuses
// connections for a moment; retrying at once would spend every attempt in
// that moment.
constexpr absl::Duration kFirstRetryBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxRetryBackoff = absl::Seconds(1);

}  // namespace

PushConnector::PushConnector(Context context, Options options, LinkFactory open_link)
    : context_(std::move(context)), options_(options), open_link_(std::move(open_link)) {}

void PushConnector::Connect() {
  deadline_timer_ = context_.loop->RunAt(
      context_.loop->Now() + absl::ToChronoNanoseconds(options_.accept_timeout),
      [this, owner = context_.owner] {
        if (owner.lock() == nullptr) return;
        deadline_timer_ = 0;
        OnDeadline();
      });
  Dial();
}

void PushConnector::Stop() {
  stopped_ = true;
  context_.loop->CancelTimer(deadline_timer_);
  context_.loop->CancelTimer(retry_timer_);
  deadline_timer_ = retry_timer_ = 0;
}

void PushConnector::OnDeadline() {
  if (stopped_) return;
  if (retry_timer_ != 0) {
    // Between retries: the last attempt failed, so no backend is reachable,
    // not merely slow to answer.
    context_.host->EndCall(
        bridge::v1::CALL_END_REASON_ALL_BACKENDS_REJECTED,
        absl::StrCat("no backend reachable within ", absl::FormatDuration(options_.accept_timeout),
                     " (", attempts_, " attempts; last: ", last_error_, ")"));
    return;
  }
  context_.host->EndCall(
      bridge::v1::CALL_END_REASON_ACCEPT_TIMEOUT,
      absl::StrCat(
          "no backend accepted within ", absl::FormatDuration(options_.accept_timeout),
          last_error_.empty() ? std::string() : absl::StrCat(" (last: ", last_error_, ")")));
}

void PushConnector::Dial() {
  if (link_ != nullptr) link_->Abort();
  ++attempts_;
  link_ = open_link_(++link_id_, context_.observer);
  context_.host->UseLink(link_, link_id_);
  announced_rate_hz_ = context_.host->call_rate_hz();
  link_->SendEvent(context_.host->StartedEvent());
}

void PushConnector::RetryLater() {
  backoff_ = backoff_ == absl::ZeroDuration() ? kFirstRetryBackoff
                                              : std::min(backoff_ * 2, kMaxRetryBackoff);
  retry_timer_ = context_.loop->RunAt(context_.loop->Now() + absl::ToChronoNanoseconds(backoff_),
                                      [this, owner = context_.owner] {
                                        if (owner.lock() == nullptr) return;
                                        retry_timer_ = 0;
                                        if (!stopped_) Dial();
                                      });
}

bool PushConnector::HandleLinkClosedWhileWaiting(const grpc::Status& status) {
  context_.counters->backend_connect_failures++;
  last_error_ = absl::StrCat("stream ended before accept: ", status.error_message(), " (code ",
                             static_cast<int>(status.error_code()), ")");
  log::Write(log::Level::kWarning, "backend_attempt_failed", context_.call_id,
             {{"attempt", attempts_}, {"error", last_error_}});
  // Not counted against --backend_attempts: an unreachable or restarting
  // backend is retried until the accept deadline ends the call
  // (ALL_BACKENDS_REJECTED when it passes between retries).
  RetryLater();
  return true;
}

bool PushConnector::HandleSetupMessage(BackendMessageRef message, bool waiting) {
  const auto* const* ref = std::get_if<const bridge::v1::HandleCallResponse*>(&message);
  if (ref == nullptr) return false;
  const bridge::v1::HandleCallResponse* response = *ref;
  switch (response->response_case()) {
    case bridge::v1::HandleCallResponse::kAccept:
      if (!waiting) {
        context_.host->Reply(response->accept().command_id(), bridge::v1::COMMAND_KIND_ACCEPT,
                             bridge::v1::RESULT_CODE_FAILED_PRECONDITION,
                             "the call is already accepted", 0);
      } else {
        Accept(response->accept());
      }
      return true;
    case bridge::v1::HandleCallResponse::kReject:
      if (!waiting) {
        context_.host->Reply(
            "", bridge::v1::COMMAND_KIND_REJECT, bridge::v1::RESULT_CODE_FAILED_PRECONDITION,
            "only a call waiting for acceptance can be rejected; send Hangup instead", 0);
      } else {
        Reject(response->reject());
      }
      return true;
    default:
      return false;
  }
}

void PushConnector::Accept(const bridge::v1::AcceptCall& accept) {
  if (absl::Status applied = context_.host->ApplyMedia(accept.media(), announced_rate_hz_);
      !applied.ok()) {
    context_.host->Reply(accept.command_id(), bridge::v1::COMMAND_KIND_ACCEPT,
                         bridge::v1::RESULT_CODE_UNSUPPORTED, std::string(applied.message()), 0);
    return;
  }
  Stop();
  // The accept's result confirms the rate audio is exchanged at: CallStarted
  // went out before the backend chose it.
  const int rate = accept.media().sample_rate_hz() == 0
                       ? announced_rate_hz_
                       : static_cast<int>(accept.media().sample_rate_hz());
  context_.host->Reply(accept.command_id(), bridge::v1::COMMAND_KIND_ACCEPT,
                       bridge::v1::RESULT_CODE_OK, "", static_cast<uint32_t>(rate));
  context_.host->OnBackendConnected(attempts_, /*announce=*/false);
}

void PushConnector::Reject(const bridge::v1::RejectCall& reject) {
  context_.counters->backend_rejects++;
  const bool busy = reject.reason() == bridge::v1::REJECT_REASON_BUSY;
  last_error_ = absl::StrCat(busy ? "rejected busy" : "declined",
                             reject.detail().empty() ? "" : ": ", reject.detail());
  log::Write(log::Level::kInfo, "backend_rejected", context_.call_id,
             {{"attempt", attempts_}, {"detail", last_error_}});
  if (busy && ++busy_rejects_ < options_.backend_attempts) {
    Dial();
  } else {
    context_.host->EndCall(bridge::v1::CALL_END_REASON_ALL_BACKENDS_REJECTED,
                           absl::StrCat(attempts_, " attempt(s); last: ", last_error_));
  }
}

}  // namespace audiosocket
