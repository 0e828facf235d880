#ifndef AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_END_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_END_H_

// What each end reason means for the caller's side of the call, and the
// CallEnded event the backend gets.

#include <string>
#include <string_view>

#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/wire/wire.h"

namespace audiosocket {

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

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_END_H_
