#include "server/call/call_end.h"

namespace audiosocket {

std::string_view ReasonName(bridge::v1::CallEndReason reason) {
  const std::string& name = bridge::v1::CallEndReason_Name(reason);
  constexpr std::string_view kPrefix = "CALL_END_REASON_";
  std::string_view view(name);
  if (view.substr(0, kPrefix.size()) == kPrefix) view.remove_prefix(kPrefix.size());
  return view;
}

bool WantsFallback(bridge::v1::CallEndReason reason) {
  switch (reason) {
    case bridge::v1::CALL_END_REASON_BACKEND_LOST:
    case bridge::v1::CALL_END_REASON_ACCEPT_TIMEOUT:
    case bridge::v1::CALL_END_REASON_CLAIM_TIMEOUT:
    case bridge::v1::CALL_END_REASON_ALL_BACKENDS_REJECTED:
      return true;
    default:
      return false;
  }
}

bool CallerSideEnd(bridge::v1::CallEndReason reason) {
  return reason == bridge::v1::CALL_END_REASON_CALLER_HUNG_UP ||
         reason == bridge::v1::CALL_END_REASON_CALLER_UNRESPONSIVE ||
         reason == bridge::v1::CALL_END_REASON_ASTERISK_ERROR;
}

bridge::v1::CallEvent CallEndedEvent(bridge::v1::CallEndReason reason, const std::string& detail,
                                     const wire::Error* asterisk_error,
                                     const bridge::v1::CallStats& stats) {
  bridge::v1::CallEvent ended;
  auto* end = ended.mutable_ended();
  end->set_reason(reason);
  end->set_detail(detail);
  if (asterisk_error != nullptr) {
    auto* error = end->mutable_asterisk_error();
    const uint8_t flags = asterisk_error->flags();
    error->set_flags(flags);
    error->set_caller_hangup(flags & wire::kErrorCallerHangup);
    error->set_frame_forwarding(flags & wire::kErrorFrameForwarding);
    error->set_memory(flags & wire::kErrorMemory);
    error->set_payload(asterisk_error->payload.data(), asterisk_error->payload.size());
  }
  *end->mutable_stats() = stats;
  return ended;
}

}  // namespace audiosocket
