#ifndef AUDIOSOCKET_BRIDGE_SERVER_CALL_TESTING_PUSH_CALL_SERVICES_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CALL_TESTING_PUSH_CALL_SERVICES_H_

// What a Call needs from its bridge in push mode, with the backend's end of
// each stream made by the test instead of dialled over gRPC: the call still
// runs its own PushConnector, so the accept, the retries and every command
// go through the code the bridge runs.
//
// Thread-safety: none; the test sets it up, then the call reads it on its
// loop.

#include <memory>
#include <utility>

#include "server/backend/backend_connector.h"
#include "server/backend/push_connector.h"
#include "server/call/call.h"
#include "server/call/call_registry.h"
#include "server/config/config.h"
#include "server/ops/counters.h"

namespace audiosocket {

struct PushCallServices {
  explicit PushCallServices(PushConnector::LinkFactory open_link) {
    config.mode = BackendMode::kPush;
    services.config = &config;
    services.registry = &registry;
    services.counters = &counters;
    // Reads `config` per call (the bridge reads it once, at start) so that a
    // test may change the timeouts after construction.
    auto connect = [this, open_link = std::move(open_link)](BackendConnector::Context context) {
      PushConnector::Options options;
      options.accept_timeout = config.accept_timeout;
      options.backend_attempts = config.backend_attempts;
      return std::make_shared<PushConnector>(std::move(context), options, open_link);
    };
    services.connect_backend = std::move(connect);
  }
  // `services` points into this object.
  PushCallServices(const PushCallServices&) = delete;
  PushCallServices& operator=(const PushCallServices&) = delete;

  BridgeConfig config;
  ListenerConfig listener;  // the call's; a test lists it in config.listeners
  CallRegistry registry;
  BridgeCounters counters;
  CallServices services;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CALL_TESTING_PUSH_CALL_SERVICES_H_
