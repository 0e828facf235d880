#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_BACKEND_CONNECTOR_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_BACKEND_CONNECTOR_H_

// How a call finds its backend. Push (PushConnector) dials a backend per
// call, with retries and failover, until one accepts; pull (PullConnector)
// offers the call to workers' ClaimCall streams until one claims it. The
// call does not know which: it asks its connector to connect, hands it the
// commands and stream ends that only matter before the backend has the
// call, and hears back through Host.
//
// Threads: a connector is confined to its call's loop, except where a
// method says otherwise. Ownership: owned by its call; it runs timers and
// posted tasks only while `Context::owner` (the call) is alive.

#include <grpcpp/support/status.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/event/dispatcher.h"
#include "server/backend/backend_link.h"
#include "server/ops/counters.h"

namespace audiosocket {

class BackendConnector {
 public:
  // The call, as its connector sees it. Called on the call's loop.
  class Host {
   public:
    virtual ~Host() = default;
    // `link` is now the call's link to (a candidate) backend: events go to
    // it, and commands and its end arrive tagged with `link_id`.
    virtual void UseLink(std::shared_ptr<BackendLink> link, uint64_t link_id) = 0;
    virtual bridge::v1::CallEvent StartedEvent() const = 0;
    virtual int call_rate_hz() const = 0;
    // Applies the backend's media options; a rate of 0 means
    // `announced_rate_hz` (what CallStarted told the backend).
    virtual absl::Status ApplyMedia(const bridge::v1::MediaOptions& media,
                                    int announced_rate_hz) = 0;
    // The backend has the call; `attempts` it took. With `announce`, the
    // call sends CallStarted first (pull: the claim is the acceptance, so
    // the worker hears of the call only now).
    virtual void OnBackendConnected(int attempts, bool announce) = 0;
    // Answers the command `command_id` of kind `kind` (always on error; on
    // OK when it has an id).
    virtual void Reply(const std::string& command_id, bridge::v1::CommandKind kind,
                       bridge::v1::ResultCode code, std::string message,
                       uint32_t backend_rate_hz) = 0;
    virtual void EndCall(bridge::v1::CallEndReason reason, std::string detail) = 0;
  };

  struct Context {
    event::Dispatcher* loop = nullptr;
    Host* host = nullptr;
    std::weak_ptr<void> owner;             // the call
    std::weak_ptr<LinkObserver> observer;  // the call, for the links
    std::string call_id;
    std::string listener;
    BridgeCounters* counters = nullptr;
  };

  virtual ~BackendConnector() = default;
  // Starts looking for a backend; the deadline runs from now.
  virtual void Connect() = 0;
  // Stops looking (the call ended): timers cancelled, offers withdrawn.
  virtual void Stop() = 0;
  // A message from the call's link that only the connector understands
  // (push: AcceptCall and RejectCall; pull: a claim sent again). True when
  // it was one; false for an in-call CallCommand. `waiting`: no backend has
  // the call yet.
  virtual bool HandleSetupMessage(BackendMessageRef message, bool waiting) = 0;
  // The call's link ended before a backend had the call. True when the
  // connector handles it (push retries); false ends the call.
  virtual bool HandleLinkClosedWhileWaiting(const grpc::Status& status) = 0;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_BACKEND_CONNECTOR_H_
