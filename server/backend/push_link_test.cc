// Both push links against an in-process CallHandlerService (gRPC's
// synchronous API, on 127.0.0.1:0): what the link writes, what it reports,
// how it ends. PushLink (gRPC C++'s client) and LoopPushLink (the loop's own
// HTTP/2 client) must behave the same, so every test runs on each.

#include "server/backend/push_link.h"

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/grpc_client/channel.h"
#include "server/backend/loop_push_link.h"
#include "server/backend/stream_tracker.h"

namespace audiosocket {
namespace {

namespace v1 = ::audiosocket::bridge::v1;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;

constexpr absl::Duration kWait = absl::Seconds(10);  // only bounds a broken test

using ServerStream = grpc::ServerReaderWriter<v1::HandleCallResponse, v1::HandleCallRequest>;

// The backend: runs the test's handler for each stream and records what it
// received.
class FakeBackend final : public v1::CallHandlerService::Service {
 public:
  using Handler = std::function<grpc::Status(grpc::ServerContext*, ServerStream*)>;
  explicit FakeBackend(Handler handler) : handler_(std::move(handler)) {}

  grpc::Status HandleCall(grpc::ServerContext* context, ServerStream* stream) override {
    {
      absl::MutexLock lock(&mu_);
      auto it = context->client_metadata().find("authorization");
      authorization_.push_back(it == context->client_metadata().end()
                                   ? std::string("<none>")
                                   : std::string(it->second.data(), it->second.size()));
    }
    return handler_(context, stream);
  }

  std::vector<std::string> authorization() const {
    absl::MutexLock lock(&mu_);
    return authorization_;
  }

 private:
  const Handler handler_;
  mutable absl::Mutex mu_;
  std::vector<std::string> authorization_ ABSL_GUARDED_BY(mu_);
};

// Reads events until the bridge half-closes (or the stream fails).
class EventLog {
 public:
  void ReadAll(ServerStream* stream) {
    v1::HandleCallRequest request;
    while (stream->Read(&request)) {
      absl::MutexLock lock(&mu_);
      events_.push_back(request.event());
    }
    absl::MutexLock lock(&mu_);
    half_closed_ = true;
  }
  std::vector<v1::CallEvent> events() const {
    absl::MutexLock lock(&mu_);
    return events_;
  }
  bool WaitHalfClosed() const {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&half_closed_), kWait);
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<v1::CallEvent> events_ ABSL_GUARDED_BY(mu_);
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;
};

class RecordingObserver final : public LinkObserver {
 public:
  void OnBackendCommand(uint64_t link_id, BackendMessage message) override {
    // A push link hands over its stream's messages as they came.
    v1::CallCommand command = std::get<v1::HandleCallResponse>(message).command();
    absl::MutexLock lock(&mu_);
    commands_.emplace_back(link_id, std::move(command));
  }
  bool OnBackendCommandBytes(uint64_t link_id, BackendMessageKind kind,
                             absl::string_view bytes) override {
    {
      absl::MutexLock lock(&mu_);
      kinds_as_bytes_.push_back(kind);
      if (refuse_bytes_) return false;
    }
    return LinkObserver::OnBackendCommandBytes(link_id, kind, bytes);
  }
  void OnBackendClosed(uint64_t link_id, grpc::Status status) override {
    absl::MutexLock lock(&mu_);
    closed_.emplace_back(link_id, std::move(status));
  }

  // Answers every OnBackendCommandBytes as if the bytes were not a message.
  void RefuseBytes() {
    absl::MutexLock lock(&mu_);
    refuse_bytes_ = true;
  }
  // The kinds of the messages handed over as bytes, in order.
  std::vector<BackendMessageKind> kinds_as_bytes() const {
    absl::MutexLock lock(&mu_);
    return kinds_as_bytes_;
  }

  bool WaitCommands(size_t n) const {
    absl::MutexLock lock(&mu_);
    auto enough = [&] {
      mu_.AssertHeld();
      return commands_.size() >= n;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), kWait);
  }
  // The stream's end as reported, once it was.
  std::vector<std::pair<uint64_t, grpc::Status>> WaitClosed() const {
    absl::MutexLock lock(&mu_);
    auto any = [&] {
      mu_.AssertHeld();
      return !closed_.empty();
    };
    mu_.AwaitWithTimeout(absl::Condition(&any), kWait);
    return closed_;
  }
  std::vector<std::pair<uint64_t, v1::CallCommand>> commands() const {
    absl::MutexLock lock(&mu_);
    return commands_;
  }
  std::vector<std::pair<uint64_t, grpc::Status>> closed() const {
    absl::MutexLock lock(&mu_);
    return closed_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::pair<uint64_t, v1::CallCommand>> commands_ ABSL_GUARDED_BY(mu_);
  std::vector<std::pair<uint64_t, grpc::Status>> closed_ ABSL_GUARDED_BY(mu_);
  std::vector<BackendMessageKind> kinds_as_bytes_ ABSL_GUARDED_BY(mu_);
  bool refuse_bytes_ ABSL_GUARDED_BY(mu_) = false;
};

v1::CallEvent Mark(int i) {
  v1::CallEvent event;
  event.mutable_mark()->set_name("m" + std::to_string(i));
  return event;
}

std::vector<std::string> MarkNames(const std::vector<v1::CallEvent>& events) {
  std::vector<std::string> names;
  for (const auto& event : events) names.push_back(event.mark().name());
  return names;
}

enum class Transport { kGrpc, kLoop };

class PushLinkTest : public ::testing::TestWithParam<Transport> {
 protected:
  void Serve(FakeBackend::Handler handler) {
    backend_ = std::make_unique<FakeBackend>(std::move(handler));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(backend_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    const std::string target = "127.0.0.1:" + std::to_string(port);
    if (GetParam() == Transport::kGrpc) {
      channel_ = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
      stub_ = v1::CallHandlerService::NewStub(channel_);
    } else {
      auto channel = grpc_client::Channel::Create(&loop_, target, {});
      ASSERT_TRUE(channel.ok()) << channel.status();
      loop_channel_ = *std::move(channel);
      loop_.StartThread();
    }
  }

  std::shared_ptr<BackendLink> Open(uint64_t link_id, std::string token = "") {
    PushLink::Options options;
    options.bearer_token = std::move(token);
    options.streams = &tracker_;
    options.deadline = absl::Seconds(30);
    if (GetParam() == Transport::kGrpc) {
      return PushLink::Start(stub_.get(), link_id, observer_, options);
    }
    return LoopPushLink::Start(loop_channel_.get(), link_id, observer_, options);
  }

  void TearDown() override {
    // Every client stream reaches OnDone before the channel goes.
    tracker_.AbortAll();
    EXPECT_TRUE(tracker_.WaitIdle(absl::Now() + kWait));
    if (loop_channel_ != nullptr) {
      absl::Notification closed;
      loop_.Post([&] {
        loop_channel_->Shutdown(absl::CancelledError("test over"));
        closed.Notify();
      });
      closed.WaitForNotification();
      loop_.Stop();
      loop_.Join();
      loop_channel_ = nullptr;
    }
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    }
  }

  StreamTracker tracker_;
  std::shared_ptr<RecordingObserver> observer_ = std::make_shared<RecordingObserver>();
  std::unique_ptr<FakeBackend> backend_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::CallHandlerService::Stub> stub_;
  event::EpollDispatcher loop_;
  std::shared_ptr<grpc_client::Channel> loop_channel_;
};

INSTANTIATE_TEST_SUITE_P(Transports, PushLinkTest,
                         ::testing::Values(Transport::kGrpc, Transport::kLoop),
                         [](const ::testing::TestParamInfo<Transport>& info) {
                           return info.param == Transport::kGrpc ? "Grpc" : "Loop";
                         });

TEST_P(PushLinkTest, EventsArriveInOrderWithTheBearerToken) {
  EventLog log;
  Serve([&](grpc::ServerContext*, ServerStream* stream) {
    log.ReadAll(stream);
    return grpc::Status::OK;
  });
  auto link = Open(1, "s3cret");
  std::vector<std::string> sent;
  for (int i = 0; i < 200; ++i) {
    link->SendEvent(Mark(i));
    sent.push_back("m" + std::to_string(i));
  }
  link->CloseAfterQueued();
  ASSERT_TRUE(log.WaitHalfClosed());
  EXPECT_THAT(MarkNames(log.events()), ElementsAreArray(sent));
  EXPECT_THAT(backend_->authorization(), ElementsAre("Bearer s3cret"));
  auto closed = observer_->WaitClosed();
  ASSERT_THAT(closed, SizeIs(1));
  EXPECT_EQ(closed[0].first, 1u);
  EXPECT_TRUE(closed[0].second.ok()) << closed[0].second.error_message();
}

TEST_P(PushLinkTest, NoTokenSendsNoAuthorization) {
  EventLog log;
  Serve([&](grpc::ServerContext*, ServerStream* stream) {
    log.ReadAll(stream);
    return grpc::Status::OK;
  });
  auto link = Open(1);
  link->CloseAfterQueued();
  ASSERT_TRUE(log.WaitHalfClosed());
  EXPECT_THAT(backend_->authorization(), ElementsAre("<none>"));
  EXPECT_THAT(log.events(), IsEmpty());
}

TEST_P(PushLinkTest, CommandsReachTheObserverWithTheLinkId) {
  EventLog log;
  Serve([&](grpc::ServerContext*, ServerStream* stream) {
    for (const char* id : {"a", "b", "c"}) {
      v1::HandleCallResponse response;
      response.mutable_command()->set_command_id(id);
      response.mutable_command()->mutable_mark()->set_name(id);
      stream->Write(response);
    }
    log.ReadAll(stream);
    return grpc::Status::OK;
  });
  auto link = Open(42);
  link->SendEvent(Mark(0));
  ASSERT_TRUE(observer_->WaitCommands(3));
  auto commands = observer_->commands();
  ASSERT_THAT(commands, SizeIs(3));
  std::vector<std::string> ids;
  for (const auto& [link_id, command] : commands) {
    EXPECT_EQ(link_id, 42u);
    ids.push_back(command.command_id());
  }
  EXPECT_THAT(ids, ElementsAre("a", "b", "c"));
  // The loop's link hands its messages over as bytes, for the call to parse
  // into its arena; gRPC C++'s has them parsed already.
  if (GetParam() == Transport::kLoop) {
    EXPECT_THAT(observer_->kinds_as_bytes(), ElementsAre(BackendMessageKind::kHandleCallResponse,
                                                         BackendMessageKind::kHandleCallResponse,
                                                         BackendMessageKind::kHandleCallResponse));
  } else {
    EXPECT_THAT(observer_->kinds_as_bytes(), IsEmpty());
  }
  link->CloseAfterQueued();
  ASSERT_TRUE(log.WaitHalfClosed());
  auto closed = observer_->WaitClosed();
  ASSERT_THAT(closed, SizeIs(1));
  EXPECT_EQ(closed[0].first, 42u);
}

TEST_P(PushLinkTest, BytesTheObserverCannotParseEndTheStreamAsInternal) {
  if (GetParam() == Transport::kGrpc) GTEST_SKIP() << "gRPC C++ parses messages itself";
  // Reads until the link cancels; nothing of the test's stack, which the
  // handler may outlive.
  Serve([](grpc::ServerContext*, ServerStream* stream) {
    v1::HandleCallResponse response;
    response.mutable_command()->mutable_mark()->set_name("a");
    stream->Write(response);
    v1::HandleCallRequest request;
    while (stream->Read(&request)) {
    }
    return grpc::Status::OK;
  });
  observer_->RefuseBytes();
  auto link = Open(7);
  link->SendEvent(Mark(0));
  auto closed = observer_->WaitClosed();
  ASSERT_THAT(closed, SizeIs(1));
  EXPECT_EQ(closed[0].first, 7u);
  EXPECT_EQ(closed[0].second.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_THAT(closed[0].second.error_message(), HasSubstr("not a HandleCallResponse"));
  EXPECT_THAT(observer_->commands(), IsEmpty());
}

TEST_P(PushLinkTest, CloseAfterQueuedEndsTheStreamOnlyAfterWhatWasQueued) {
  // The backend reads nothing until released: the link's writes queue up.
  absl::Notification release;
  EventLog log;
  Serve([&](grpc::ServerContext*, ServerStream* stream) {
    release.WaitForNotificationWithTimeout(kWait);
    log.ReadAll(stream);
    return grpc::Status::OK;
  });
  auto link = Open(1);
  std::vector<std::string> sent;
  for (int i = 0; i < 500; ++i) {
    v1::CallEvent event = Mark(i);
    event.mutable_mark()->set_name(std::string(1000, 'x') + std::to_string(i));  // ~500 KB
    sent.push_back(event.mark().name());
    link->SendEvent(std::move(event));
  }
  link->CloseAfterQueued();
  link->SendEvent(Mark(-1));  // after the close: dropped
  release.Notify();
  ASSERT_TRUE(log.WaitHalfClosed());
  EXPECT_THAT(MarkNames(log.events()), ElementsAreArray(sent));
  auto closed = observer_->WaitClosed();
  ASSERT_THAT(closed, SizeIs(1));
  EXPECT_TRUE(closed[0].second.ok()) << closed[0].second.error_message();
}

TEST_P(PushLinkTest, AbortCancelsTheStream) {
  absl::Notification reading;
  absl::Notification cancelled;
  Serve([&](grpc::ServerContext* context, ServerStream* stream) {
    v1::HandleCallRequest request;
    while (stream->Read(&request)) {
      if (!reading.HasBeenNotified()) reading.Notify();
    }
    if (context->IsCancelled()) cancelled.Notify();
    return grpc::Status::OK;
  });
  auto link = Open(3);
  link->SendEvent(Mark(0));
  ASSERT_TRUE(reading.WaitForNotificationWithTimeout(kWait));
  link->Abort();
  auto closed = observer_->WaitClosed();
  ASSERT_THAT(closed, SizeIs(1));
  EXPECT_EQ(closed[0].first, 3u);
  EXPECT_EQ(closed[0].second.error_code(), grpc::StatusCode::CANCELLED);
  EXPECT_TRUE(cancelled.WaitForNotificationWithTimeout(kWait));
}

TEST_P(PushLinkTest, OnBackendClosedReportsTheBackendsStatusOnce) {
  Serve([&](grpc::ServerContext*, ServerStream*) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many calls");
  });
  auto link = Open(5);
  link->SendEvent(Mark(0));
  auto closed = observer_->WaitClosed();
  ASSERT_THAT(closed, SizeIs(1));
  EXPECT_EQ(closed[0].first, 5u);
  EXPECT_EQ(closed[0].second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(closed[0].second.error_message(), "too many calls");
  // Calls on the finished link do nothing.
  link->SendEvent(Mark(1));
  link->CloseAfterQueued();
  link->Abort();
  ASSERT_TRUE(tracker_.WaitIdle(absl::Now() + kWait));
  EXPECT_THAT(observer_->closed(), SizeIs(1));
}

TEST_P(PushLinkTest, TheTrackerSeesTheStreamUntilOnDone) {
  absl::Notification release;
  Serve([&](grpc::ServerContext*, ServerStream* stream) {
    release.WaitForNotificationWithTimeout(kWait);
    v1::HandleCallRequest request;
    while (stream->Read(&request)) {
    }
    return grpc::Status::OK;
  });
  auto link = Open(1);
  EXPECT_EQ(tracker_.open(), 1u);
  link->CloseAfterQueued();
  // Half-closed, but the backend has not finished: still open.
  EXPECT_FALSE(tracker_.WaitIdle(absl::Now() + absl::Milliseconds(100)));
  EXPECT_EQ(tracker_.open(), 1u);
  EXPECT_THAT(observer_->closed(), IsEmpty());
  release.Notify();
  EXPECT_TRUE(tracker_.WaitIdle(absl::Now() + kWait));
  EXPECT_THAT(observer_->closed(), SizeIs(1));
}

TEST_P(PushLinkTest, TrackerAbortAllCancelsOpenStreams) {
  Serve([&](grpc::ServerContext* context, ServerStream* stream) {
    v1::HandleCallRequest request;
    while (stream->Read(&request)) {
    }
    return grpc::Status::OK;
  });
  auto first = Open(1);
  auto second = Open(2);
  EXPECT_EQ(tracker_.open(), 2u);
  tracker_.AbortAll();
  EXPECT_TRUE(tracker_.WaitIdle(absl::Now() + kWait));
  auto closed = observer_->closed();
  ASSERT_THAT(closed, SizeIs(2));
  for (const auto& [link_id, status] : closed) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED) << link_id;
  }
}

}  // namespace
}  // namespace audiosocket
