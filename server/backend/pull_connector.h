#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PULL_CONNECTOR_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PULL_CONNECTOR_H_

// Pull mode: the call waits in the ClaimDispatcher for a worker's ClaimCall
// stream, until --claim_timeout. The claim is the acceptance: its media
// options apply, CallStarted goes out on the stream, and the call is the
// backend's.

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "server/backend/backend_connector.h"
#include "server/backend/claim_dispatcher.h"

namespace audiosocket {

class PullConnector final : public BackendConnector,
                            public WaitingCall,
                            public std::enable_shared_from_this<PullConnector> {
 public:
  PullConnector(Context context, absl::Duration claim_timeout, ClaimDispatcher* dispatcher);

  void Connect() override;
  void Stop() override;
  bool HandleSetupMessage(BackendMessageRef message, bool waiting) override;
  bool HandleLinkClosedWhileWaiting(const grpc::Status& status) override;

  // WaitingCall (any thread).
  const std::string& call_id() const override { return context_.call_id; }
  const std::string& listener_name() const override { return context_.listener; }
  event::Dispatcher* loop() const override { return context_.loop; }
  void OnClaimed(std::shared_ptr<ClaimSlot> stream) override;

 private:
  void HandleClaimed(std::shared_ptr<ClaimSlot> stream);

  const Context context_;
  const absl::Duration claim_timeout_;
  ClaimDispatcher* const dispatcher_;
  bool waiting_ = false;  // offered, not yet claimed, timed out or stopped
  event::Dispatcher::TimerId deadline_timer_ = 0;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PULL_CONNECTOR_H_
