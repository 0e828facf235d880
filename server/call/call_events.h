#ifndef AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_EVENTS_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_EVENTS_H_

// What describes a call to the registry (CallInfo) and to its backend
// (CallStarted, CallEnded), and what each end reason means for the caller's
// side of the call.

#include <string>
#include <string_view>

#include "absl/time/time.h"
#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/wire/wire.h"

namespace audiosocket {

// What a call is, from its UUID on.
struct CallFacts {
  std::string call_id;
  std::string listener;
  wire::Dialect dialect = wire::Dialect::kAsterisk;
  bridge::v1::AudioEncoding encoding = bridge::v1::AUDIO_ENCODING_LINEAR16;
  std::string peer_address;
  absl::Time start_time;
};

// The registry's record of a call waiting for its backend.
bridge::v1::CallInfo WaitingCallInfo(const CallFacts& facts, int call_rate_hz);
// The first event a backend gets.
bridge::v1::CallEvent CallStartedEvent(const CallFacts& facts, int call_rate_hz,
                                       int backend_rate_hz);

// The reason without its CALL_END_REASON_ prefix ("BACKEND_LOST"), for logs.
std::string_view ReasonName(bridge::v1::CallEndReason reason);
// Reasons after which the caller hears the fallback audio, if configured.
bool WantsFallback(bridge::v1::CallEndReason reason);
// Reasons where the socket is already gone or must not be written to.
bool CallerSideEnd(bridge::v1::CallEndReason reason);

// `asterisk_error`: the 0xff message that ended the call, if one did.
bridge::v1::CallEvent CallEndedEvent(bridge::v1::CallEndReason reason, const std::string& detail,
                                     const wire::Error* asterisk_error,
                                     const bridge::v1::CallStats& stats);

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_EVENTS_H_
