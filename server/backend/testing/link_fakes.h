#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_TESTING_LINK_FAKES_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_TESTING_LINK_FAKES_H_

// Test doubles for the BackendLink seam (backend/backend_link.h) and a
// record of the replies a call sends over it.
//
// Thread-safety: none; tests use them on one thread (the call's loop is the
// test's thread).

#include <grpcpp/support/status.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "server/backend/backend_link.h"

namespace audiosocket {

// The backend's end of one stream: records what it is given, drops nothing.
class RecordingLink final : public BackendLink {
 public:
  void SendEvent(bridge::v1::CallEvent&& event) override { events.push_back(std::move(event)); }
  void ExtendAudioQueue(uint64_t audio_events) override { extended += audio_events; }
  void CloseAfterQueued() override { ++closes; }
  void Abort() override { ++aborts; }
  uint64_t dropped_audio_samples() const override { return 0; }
  uint64_t dropped_audio_events() const override { return 0; }

  std::vector<bridge::v1::CallEvent> events;
  uint64_t extended = 0;  // the sum of every ExtendAudioQueue
  int closes = 0;
  int aborts = 0;
};

// What a call's Reply (BackendConnector::Host, CallCommands::Host) was
// given: the result of one command, as the backend will hear it.
struct ReplyRecord {
  std::string command_id;
  bridge::v1::CommandKind kind;
  bridge::v1::ResultCode code;
  std::string message;
  uint32_t backend_rate_hz;
};

// A link's observer that ignores what it hears.
class NullObserver final : public LinkObserver {
 public:
  void OnBackendCommand(uint64_t, BackendMessage) override {}
  void OnBackendClosed(uint64_t, grpc::Status) override {}
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_TESTING_LINK_FAKES_H_
