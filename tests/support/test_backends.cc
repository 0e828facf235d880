#include "tests/support/test_backends.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace audiosocket::testing {

using bridge::v1::ClaimCallRequest;
using bridge::v1::ClaimCallResponse;
using bridge::v1::HandleCallRequest;
using bridge::v1::HandleCallResponse;

// ------------------------------------------------------------ BackendCall

std::optional<CallEvent> BackendCall::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !queue_.empty() || ended_; };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (queue_.empty()) return std::nullopt;
  CallEvent event = std::move(queue_.front());
  queue_.pop_front();
  return event;
}

std::optional<CallEvent> BackendCall::NextMatching(
    const std::function<bool(const CallEvent&)>& match, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::optional<CallEvent> event = Next(deadline - absl::Now());
    if (!event.has_value()) return std::nullopt;
    if (match(*event)) return event;
  }
}

std::optional<CallEvent> BackendCall::NextResult(const std::string& command_id,
                                                 absl::Duration timeout) {
  return NextMatching(
      [&](const CallEvent& e) { return e.has_result() && e.result().command_id() == command_id; },
      timeout);
}

void BackendCall::PauseReading() {
  absl::MutexLock lock(&mu_);
  paused_ = true;
}

void BackendCall::ResumeReading() {
  absl::MutexLock lock(&mu_);
  paused_ = false;
}

void BackendCall::WaitWhilePaused() {
  absl::MutexLock lock(&mu_);
  auto resumed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !paused_; };
  mu_.Await(absl::Condition(&resumed));
}

std::vector<CallEvent> BackendCall::History() const {
  absl::MutexLock lock(&mu_);
  return history_;
}

bool BackendCall::stream_ended() const {
  absl::MutexLock lock(&mu_);
  return ended_;
}

void BackendCall::Deliver(CallEvent event) {
  absl::MutexLock lock(&mu_);
  history_.push_back(event);
  queue_.push_back(std::move(event));
}

void BackendCall::MarkEnded() {
  absl::MutexLock lock(&mu_);
  ended_ = true;
}

bool BackendCall::Accept(uint32_t sample_rate_hz) {
  bridge::v1::AcceptCall accept;
  accept.mutable_media()->set_sample_rate_hz(sample_rate_hz);
  return SendAccept(accept);
}

bool BackendCall::Play(const std::vector<int16_t>& samples, const std::string& response_id,
                       const std::string& command_id, uint32_t sample_rate_hz) {
  CallCommand command;
  command.set_command_id(command_id);
  auto* play = command.mutable_play();
  play->set_pcm(reinterpret_cast<const char*>(samples.data()), samples.size() * 2);
  play->set_response_id(response_id);
  play->set_sample_rate_hz(sample_rate_hz);
  return Send(command);
}

bool BackendCall::Hangup(bool after_playout, const std::string& command_id) {
  CallCommand command;
  command.set_command_id(command_id);
  command.mutable_hangup()->set_after_playout(after_playout);
  return Send(command);
}

// ------------------------------------------------------------ PushBackend

namespace {

class PushCall : public BackendCall {
 public:
  PushCall(grpc::ServerContext* context,
           grpc::ServerReaderWriter<HandleCallResponse, HandleCallRequest>* stream)
      : context_(context), stream_(stream) {
    auto it = context->client_metadata().find("authorization");
    if (it != context->client_metadata().end()) {
      absl::MutexLock lock(&mu_);
      authorization_ = std::string(it->second.data(), it->second.size());
    }
  }

  bool Send(const CallCommand& command) override {
    absl::MutexLock lock(&write_mu_);
    if (finished_) return false;
    HandleCallResponse response;
    *response.mutable_command() = command;
    return stream_->Write(response);
  }

  bool SendAccept(const bridge::v1::AcceptCall& accept) override {
    absl::MutexLock lock(&write_mu_);
    if (finished_) return false;
    HandleCallResponse response;
    *response.mutable_accept() = accept;
    return stream_->Write(response);
  }

  bool SendReject(const bridge::v1::RejectCall& reject) override {
    absl::MutexLock lock(&write_mu_);
    if (finished_) return false;
    HandleCallResponse response;
    *response.mutable_reject() = reject;
    return stream_->Write(response);
  }

  void CloseWrites() override {
    absl::MutexLock lock(&finish_mu_);
    finish_requested_ = true;
    finish_status_ = grpc::Status::OK;
  }

  void Cancel() override {
    absl::MutexLock lock(&finish_mu_);
    finish_requested_ = true;
    finish_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "test backend went away");
    // gRPC destroys the context once the handler returns.
    if (serving_) context_->TryCancel();
  }

  // Runs on the handler thread: reads until the bridge half-closes, then
  // waits for the test's decision (or finishes OK after the bridge closed).
  grpc::Status Serve() {
    HandleCallRequest request;
    while (true) {
      WaitWhilePaused();
      {
        absl::MutexLock lock(&finish_mu_);
        if (finish_requested_ && !finish_status_.ok()) break;
      }
      if (!stream_->Read(&request)) break;
      Deliver(std::move(*request.mutable_event()));
    }
    MarkEnded();
    absl::MutexLock lock(&finish_mu_);
    auto decided = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(finish_mu_) { return finish_requested_; };
    finish_mu_.AwaitWithTimeout(absl::Condition(&decided), absl::Seconds(2));
    {
      absl::MutexLock wlock(&write_mu_);
      finished_ = true;
    }
    serving_ = false;
    return finish_status_;
  }

 private:
  grpc::ServerContext* context_;
  grpc::ServerReaderWriter<HandleCallResponse, HandleCallRequest>* stream_;
  absl::Mutex write_mu_;
  bool finished_ ABSL_GUARDED_BY(write_mu_) = false;
  absl::Mutex finish_mu_;
  bool finish_requested_ ABSL_GUARDED_BY(finish_mu_) = false;
  grpc::Status finish_status_ ABSL_GUARDED_BY(finish_mu_);
  bool serving_ ABSL_GUARDED_BY(finish_mu_) = true;
};

}  // namespace

class PushBackend::Service final : public bridge::v1::CallHandlerService::Service {
 public:
  grpc::Status HandleCall(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<HandleCallResponse, HandleCallRequest>* stream) override {
    auto call = std::make_shared<PushCall>(context, stream);
    {
      absl::MutexLock lock(&mu_);
      pending_.push_back(call);
      all_.push_back(call);
      ++opened_;
    }
    return call->Serve();
  }

  std::shared_ptr<BackendCall> Next(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !pending_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return nullptr;
    auto call = pending_.front();
    pending_.pop_front();
    return call;
  }

  int opened() const {
    absl::MutexLock lock(&mu_);
    return opened_;
  }

  // Unblocks paused readers and finishes every open call, for shutdown.
  void ResumeAll() {
    absl::MutexLock lock(&mu_);
    for (auto& weak : all_) {
      if (auto call = weak.lock()) {
        call->ResumeReading();
        call->Cancel();
      }
    }
  }

 private:
  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<BackendCall>> pending_ ABSL_GUARDED_BY(mu_);
  int opened_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::weak_ptr<BackendCall>> all_ ABSL_GUARDED_BY(mu_);
};

PushBackend::PushBackend(std::shared_ptr<grpc::ServerCredentials> credentials, int port)
    : service_(std::make_unique<Service>()) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat("127.0.0.1:", port), credentials, &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
}

PushBackend::~PushBackend() {
  service_->ResumeAll();
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  server_->Wait();
}

std::string PushBackend::target() const { return absl::StrCat("ipv4:127.0.0.1:", port_); }

std::shared_ptr<BackendCall> PushBackend::NextCall(absl::Duration timeout) {
  return service_->Next(timeout);
}

std::shared_ptr<BackendCall> PushBackend::AcceptNextCall(absl::Duration timeout) {
  std::shared_ptr<BackendCall> call = NextCall(timeout);
  if (call == nullptr || !call->Next(timeout).has_value() || !call->Accept()) return nullptr;
  return call;
}

int PushBackend::calls_opened() const { return service_->opened(); }

// ------------------------------------------------------------- PullWorker

PullWorker::PullWorker(int grpc_port, bridge::v1::ClaimCall claim)
    : stub_(BridgeServiceStub(grpc_port)) {
  context_.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(5));
  stream_ = stub_->ClaimCall(&context_);
  ClaimCallRequest request;
  *request.mutable_claim() = std::move(claim);
  stream_->Write(request);
  reader_ = std::thread([this] {
    ClaimCallResponse response;
    while (true) {
      WaitWhilePaused();
      if (!stream_->Read(&response)) break;
      Deliver(std::move(*response.mutable_event()));
    }
    MarkEnded();
  });
}

PullWorker::~PullWorker() {
  context_.TryCancel();
  ResumeReading();
  status();
}

bool PullWorker::Send(const CallCommand& command) {
  absl::MutexLock lock(&write_mu_);
  ClaimCallRequest request;
  *request.mutable_command() = command;
  return stream_->Write(request);
}

void PullWorker::CloseWrites() {
  absl::MutexLock lock(&write_mu_);
  stream_->WritesDone();
}

void PullWorker::Cancel() { context_.TryCancel(); }

grpc::Status PullWorker::status() {
  if (reader_.joinable()) reader_.join();
  if (!finished_) {
    finished_ = true;
    status_ = stream_->Finish();
  }
  return status_;
}

bridge::v1::ClaimCall ClaimAny() {
  bridge::v1::ClaimCall claim;
  claim.set_listener("");
  return claim;
}

bridge::v1::ClaimCall ClaimById(const std::string& call_id) {
  bridge::v1::ClaimCall claim;
  claim.set_call_id(call_id);
  return claim;
}

std::unique_ptr<bridge::v1::BridgeService::Stub> BridgeServiceStub(int grpc_port) {
  return bridge::v1::BridgeService::NewStub(grpc::CreateChannel(
      absl::StrCat("127.0.0.1:", grpc_port), grpc::InsecureChannelCredentials()));
}

}  // namespace audiosocket::testing
