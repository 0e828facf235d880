#include "server/call/call_events.h"

#include <google/protobuf/util/time_util.h>

namespace audiosocket {
namespace {

bridge::v1::Dialect DialectOf(wire::Dialect dialect) {
  return dialect == wire::Dialect::kAsterisk ? bridge::v1::DIALECT_ASTERISK
                                             : bridge::v1::DIALECT_EXTENDED;
}

google::protobuf::Timestamp TimestampOf(absl::Time time) {
  return google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(time));
}

}  // namespace

bridge::v1::CallInfo WaitingCallInfo(const CallFacts& facts, int call_rate_hz) {
  bridge::v1::CallInfo info;
  info.set_call_id(facts.call_id);
  info.set_listener(facts.listener);
  info.set_dialect(DialectOf(facts.dialect));
  info.set_peer_address(facts.peer_address);
  info.set_call_sample_rate_hz(call_rate_hz);
  info.set_state(bridge::v1::CALL_STATE_WAITING);
  *info.mutable_start_time() = TimestampOf(facts.start_time);
  return info;
}

bridge::v1::CallEvent CallStartedEvent(const CallFacts& facts, int call_rate_hz,
                                       int backend_rate_hz) {
  bridge::v1::CallEvent event;
  auto* started = event.mutable_started();
  started->set_call_id(facts.call_id);
  started->set_listener(facts.listener);
  started->set_dialect(DialectOf(facts.dialect));
  started->set_peer_address(facts.peer_address);
  started->set_call_sample_rate_hz(call_rate_hz);
  started->set_backend_sample_rate_hz(backend_rate_hz);
  started->set_call_encoding(facts.encoding);
  *started->mutable_start_time() = TimestampOf(facts.start_time);
  return event;
}

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
