#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_COMMAND_KIND_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_COMMAND_KIND_H_

// What a CommandResult says it answers, taken from the command itself so
// that every result names its command the same way, whatever path refused
// or accepted it.

#include <string>

#include "audiosocket/bridge/v1/bridge.pb.h"

namespace audiosocket {

inline bridge::v1::CommandKind CommandKindOf(const bridge::v1::CallCommand& command) {
  using bridge::v1::CallCommand;
  switch (command.command_case()) {
    case CallCommand::kAccept:
      return bridge::v1::COMMAND_KIND_ACCEPT;
    case CallCommand::kReject:
      return bridge::v1::COMMAND_KIND_REJECT;
    case CallCommand::kClaim:
      return bridge::v1::COMMAND_KIND_CLAIM;
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

// The CallCommand field the command set ("play", "send_dtmf", ...), or "".
inline std::string CommandFieldName(const bridge::v1::CallCommand& command) {
  const auto* field =
      bridge::v1::CallCommand::descriptor()->FindFieldByNumber(command.command_case());
  return field == nullptr ? std::string() : field->name();
}

// Fills the result's command_id, kind and (older) command name from `command`.
inline void DescribeCommand(const bridge::v1::CallCommand& command,
                            bridge::v1::CommandResult* result) {
  result->set_command_id(command.command_id());
  result->set_kind(CommandKindOf(command));
  result->set_command(CommandFieldName(command));
}

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_COMMAND_KIND_H_
