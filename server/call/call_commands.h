#ifndef AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_COMMANDS_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_COMMANDS_H_

// The commands a backend sends once it has the call, checked and applied:
// audio, marks, clears and DTMF go to the playout queue, controls to the
// caller, a hang-up back to the call. Each refusal is a CommandResult that
// says what to change.
//
// Threads: the call's loop. Ownership: owned by its call; the host (the
// call) outlives it.

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/wire/wire.h"
#include "server/backend/command_kind.h"
#include "server/playout/playout.h"

namespace audiosocket {

class CallCommands {
 public:
  class Host {
   public:
    virtual ~Host() = default;
    virtual void Reply(const std::string& command_id, bridge::v1::CommandKind kind,
                       bridge::v1::ResultCode code, std::string message,
                       uint32_t backend_rate_hz) = 0;
    virtual void SendToBackend(bridge::v1::CallEvent event) = 0;
    // False when the caller is gone.
    virtual bool WriteToCaller(const wire::Message& message) = 0;
    // Hangup: now, or once everything queued before it has played.
    virtual void HangupFromBackend(bool after_playout) = 0;
  };

  // `max_playout_ms` bounds what DTMF a command may queue.
  CallCommands(wire::Dialect dialect, uint32_t max_playout_ms, Host* host)
      : dialect_(dialect), max_playout_ms_(max_playout_ms), host_(host) {}

  // A PlayAudio command's fields, from a parsed CallCommand or read from
  // the message's bytes (DecodePlayCommand).
  struct PlayRequest {
    absl::string_view command_id;
    absl::string_view pcm;
    uint32_t sample_rate_hz = 0;
    absl::string_view response_id;
  };

  // `backend_rate_hz` is what PlayAudio's rate 0 means.
  void Execute(const bridge::v1::CallCommand& command, Playout& playout, int backend_rate_hz);
  void Play(const PlayRequest& play, Playout& playout, int backend_rate_hz);

 private:
  void Clear(const bridge::v1::CallCommand& command, Playout& playout);
  void SendDtmf(const bridge::v1::CallCommand& command, Playout& playout);
  void SendControl(const bridge::v1::CallCommand& command);
  void Reply(const bridge::v1::CallCommand& command, bridge::v1::ResultCode code,
             std::string message) {
    host_->Reply(command.command_id(), CommandKindOf(command), code, std::move(message), 0);
  }
  void Reply(const PlayRequest& play, bridge::v1::ResultCode code, std::string message) {
    host_->Reply(std::string(play.command_id), bridge::v1::COMMAND_KIND_PLAY, code,
                 std::move(message), 0);
  }

  const wire::Dialect dialect_;
  const uint32_t max_playout_ms_;
  Host* const host_;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_COMMANDS_H_
