#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_COMMAND_KIND_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_COMMAND_KIND_H_

// What a CommandResult says it answers, taken from the command itself so
// that every result names its command the same way, whatever path refused
// or accepted it.

#include "audiosocket/bridge/v1/bridge.pb.h"

namespace audiosocket {

inline bridge::v1::CommandKind CommandKindOf(const bridge::v1::CallCommand& command) {
  using bridge::v1::CallCommand;
  switch (command.command_case()) {
    case CallCommand::kPlay:
      return bridge::v1::COMMAND_KIND_PLAY;
    case CallCommand::kMark:
      return bridge::v1::COMMAND_KIND_MARK;
    case CallCommand::kClear:
      return bridge::v1::COMMAND_KIND_CLEAR;
    case CallCommand::kSendDtmf:
      return bridge::v1::COMMAND_KIND_SEND_DTMF;
    case CallCommand::kSendControl:
      return bridge::v1::COMMAND_KIND_SEND_CONTROL;
    case CallCommand::kHangup:
      return bridge::v1::COMMAND_KIND_HANGUP;
    case CallCommand::COMMAND_NOT_SET:
      break;
  }
  return bridge::v1::COMMAND_KIND_UNSPECIFIED;
}

// Fills the result's command_id and command kind from `command`.
inline void DescribeCommand(const bridge::v1::CallCommand& command,
                            bridge::v1::CommandResult* result) {
  result->set_command_id(command.command_id());
  result->set_command(CommandKindOf(command));
}

// The same for a pull stream's message: a claim, or a CallCommand.
inline void DescribeCommand(const bridge::v1::ClaimCallRequest& request,
                            bridge::v1::CommandResult* result) {
  if (request.has_claim()) {
    result->set_command_id(request.claim().command_id());
    result->set_command(bridge::v1::COMMAND_KIND_CLAIM);
    return;
  }
  DescribeCommand(request.command(), result);
}

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_COMMAND_KIND_H_
