#ifndef AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_TEST_BACKENDS_H_
#define AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_TEST_BACKENDS_H_

// Scripted backends for end-to-end tests, in both modes, behind one call
// interface: a push backend (a CallHandlerService server the bridge dials) and a
// pull worker (a ClaimCall client). Tests read events and send commands.
//
// Threads: each call has a reader thread filling a queue; the test thread
// reads the queue and writes commands. Guarded by each call's mutex.

#include <grpcpp/grpcpp.h>

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"

namespace audiosocket::testing {

using bridge::v1::CallCommand;
using bridge::v1::CallEvent;

class BackendCall {
 public:
  virtual ~BackendCall() = default;

  // The next event, in order, or nullopt after `timeout` / at end of stream.
  std::optional<CallEvent> Next(absl::Duration timeout = absl::Seconds(10));
  // Skips events until one matches.
  std::optional<CallEvent> NextMatching(const std::function<bool(const CallEvent&)>& match,
                                        absl::Duration timeout = absl::Seconds(10));
  // Shorthands.
  std::optional<CallEvent> NextEnded(absl::Duration timeout = absl::Seconds(10)) {
    return NextMatching([](const CallEvent& e) { return e.has_ended(); }, timeout);
  }
  std::optional<CallEvent> NextResult(const std::string& command_id,
                                      absl::Duration timeout = absl::Seconds(10));

  virtual bool Send(const CallCommand& command) = 0;
  // Push only (HandleCallResponse's accept and reject); a pull worker cannot
  // send them and returns false.
  virtual bool SendAccept(const bridge::v1::AcceptCall& /*accept*/) { return false; }
  virtual bool SendReject(const bridge::v1::RejectCall& /*reject*/) { return false; }
  // Push: finish the RPC with OK. Pull: half-close.
  virtual void CloseWrites() = 0;
  // Abandon the stream (push: cancel the RPC; pull: cancel the call).
  virtual void Cancel() = 0;

  // Stop / resume reading from the bridge (simulates a stalled backend).
  void PauseReading();
  void ResumeReading();

  // Every event received so far.
  std::vector<CallEvent> History() const;
  // The "authorization" metadata the bridge sent (push mode).
  std::string authorization() const {
    absl::MutexLock lock(&mu_);
    return authorization_;
  }
  bool stream_ended() const;

  // Convenience commands.
  bool Accept(uint32_t sample_rate_hz = 0);
  bool Play(const std::vector<int16_t>& samples, const std::string& response_id = "",
            const std::string& command_id = "", uint32_t sample_rate_hz = 0);
  bool Hangup(bool after_playout = false, const std::string& command_id = "");

 protected:
  // Called by the reader thread.
  void Deliver(CallEvent event);
  void MarkEnded();
  // Blocks the reader while paused; returns false when it should stop.
  void WaitWhilePaused();

  mutable absl::Mutex mu_;
  std::deque<CallEvent> queue_ ABSL_GUARDED_BY(mu_);
  std::vector<CallEvent> history_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
  std::string authorization_ ABSL_GUARDED_BY(mu_);
};

// A CallHandlerService server on 127.0.0.1:0.
class PushBackend {
 public:
  explicit PushBackend(
      std::shared_ptr<grpc::ServerCredentials> credentials = grpc::InsecureServerCredentials(),
      int port = 0);
  // A backend on a given port (e.g. one that comes up late).
  explicit PushBackend(int port) : PushBackend(grpc::InsecureServerCredentials(), port) {}
  ~PushBackend();
  int port() const { return port_; }
  std::string target() const;
  // The next call the bridge opened.
  std::shared_ptr<BackendCall> NextCall(absl::Duration timeout = absl::Seconds(10));
  // The next call, once its first event (CallStarted) came and the accept
  // was sent; null when either did not happen, each waited for `timeout`.
  std::shared_ptr<BackendCall> AcceptNextCall(absl::Duration timeout = absl::Seconds(10));
  int calls_opened() const;

  class Service;

 private:
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

// A pull-mode worker: one ClaimCall stream.
class PullWorker : public BackendCall {
 public:
  // Opens the stream and sends the claim (call_id or listener, one set).
  PullWorker(int grpc_port, bridge::v1::ClaimCall claim);
  ~PullWorker() override;

  bool Send(const CallCommand& command) override;
  void CloseWrites() override;
  void Cancel() override;
  grpc::Status status();  // after the stream ended

 private:
  std::unique_ptr<bridge::v1::BridgeService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<
      grpc::ClientReaderWriter<bridge::v1::ClaimCallRequest, bridge::v1::ClaimCallResponse>>
      stream_;
  std::thread reader_;
  absl::Mutex write_mu_;
  grpc::Status status_;
  bool finished_ = false;
};

bridge::v1::ClaimCall ClaimAny();
bridge::v1::ClaimCall ClaimById(const std::string& call_id);

// A plaintext BridgeService client of the bridge on 127.0.0.1:`grpc_port`;
// the stub holds its channel.
std::unique_ptr<bridge::v1::BridgeService::Stub> BridgeServiceStub(int grpc_port);

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_TEST_BACKENDS_H_
