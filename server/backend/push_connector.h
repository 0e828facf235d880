#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PUSH_CONNECTOR_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PUSH_CONNECTOR_H_

// Push mode: the bridge dials a backend's CallHandlerService.HandleCall for the
// call and waits for AcceptCall. A stream that fails before the accept is
// retried after a backoff (a restarting backend refuses connections for a
// moment), a busy rejection is tried on the next backend (up to
// --backend_attempts), until --accept_timeout.

#include <functional>
#include <memory>
#include <string>

#include "absl/time/time.h"
#include "server/backend/backend_connector.h"

namespace audiosocket {

class PushConnector final : public BackendConnector {
 public:
  struct Options {
    absl::Duration accept_timeout = absl::Seconds(5);
    int backend_attempts = 3;  // busy rejections tolerated, plus one
  };
  // Opens a stream to the next backend; the link reports to `observer`.
  using LinkFactory = std::function<std::shared_ptr<BackendLink>(
      uint64_t link_id, std::weak_ptr<LinkObserver> observer)>;

  PushConnector(Context context, Options options, LinkFactory open_link);

  void Connect() override;
  void Stop() override;
  bool HandleSetupMessage(BackendMessageRef message, bool waiting) override;
  bool HandleLinkClosedWhileWaiting(const grpc::Status& status) override;

 private:
  void Dial();
  void RetryLater();
  void OnDeadline();
  void Accept(const bridge::v1::AcceptCall& accept);
  void Reject(const bridge::v1::RejectCall& reject);

  const Context context_;
  const Options options_;
  const LinkFactory open_link_;
  std::shared_ptr<BackendLink> link_;
  uint64_t link_id_ = 0;
  bool stopped_ = false;
  int attempts_ = 0;
  int busy_rejects_ = 0;  // counted against --backend_attempts
  // The call's rate CallStarted announced on the latest stream (what an
  // accept with sample_rate_hz 0 gets, even when the rate changed since).
  int announced_rate_hz_ = 0;
  std::string last_error_;
  absl::Duration backoff_ = absl::ZeroDuration();
  event::Dispatcher::TimerId deadline_timer_ = 0;
  event::Dispatcher::TimerId retry_timer_ = 0;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_PUSH_CONNECTOR_H_
