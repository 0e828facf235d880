// ServerConnection against gRPC C++'s client on loopback: unary and bidi
// streams, statuses in trailers and trailers-only refusals, cancellation by
// the client, a server that ends first, and GOAWAY.

#include "lib/grpc_server/server_connection.h"

#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/grpc_client/message_reader.h"
#include "lib/net/net.h"

namespace audiosocket::grpc_server {
namespace {

namespace v1 = ::audiosocket::bridge::v1;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(20);  // only bounds a broken test

std::string Framed(const google::protobuf::Message& message) {
  std::string out;
  grpc_client::AppendMessagePrefix(message.ByteSizeLong(), &out);
  out += message.SerializeAsString();
  return out;
}

// What handlers saw, for the test thread.
struct Seen {
  absl::Mutex mu;
  std::vector<absl::Status> closes ABSL_GUARDED_BY(mu);
  void Closed(const absl::Status& status) {
    absl::MutexLock lock(&mu);
    closes.push_back(status);
  }
  std::vector<absl::Status> WaitForCloses(size_t n) {
    absl::MutexLock lock(&mu);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return closes.size() >= n; };
    mu.AwaitWithTimeout(absl::Condition(&enough), kWait);
    return closes;
  }
};

// Answers each ClaimCallRequest with `answers_per_request` events naming
// its command; once the client half-closes (or after `end_after`
// requests), ends with OUT_OF_RANGE "read N".
class EchoHandler final : public StreamHandler {
 public:
  EchoHandler(ServerConnection* connection, int32_t id, Seen* seen, int answers_per_request,
              int end_after)
      : connection_(connection),
        id_(id),
        seen_(seen),
        answers_per_request_(answers_per_request),
        end_after_(end_after),
        reader_(4 << 20) {}

  void OnRequestData(absl::string_view data) override {
    (void)reader_.Feed(data, [this](absl::string_view message) {
      v1::ClaimCallRequest request;
      request.ParseFromArray(message.data(), static_cast<int>(message.size()));
      ++read_;
      for (int i = 0; i < answers_per_request_; ++i) {
        v1::ClaimCallResponse response;
        response.mutable_event()->mutable_result()->set_command_id(request.command().command_id());
        out_ += Framed(response);
      }
      if (read_ == end_after_) ending_ = true;
    });
    connection_->ResumeSending(id_);
  }
  void OnRequestEnd() override {
    ending_ = true;
    connection_->ResumeSending(id_);
  }
  size_t ReadBody(uint8_t* out, size_t size, bool* end, absl::Status* status) override {
    const size_t n = std::min(size, out_.size() - offset_);
    std::memcpy(out, out_.data() + offset_, n);
    offset_ += n;
    if (offset_ == out_.size() && ending_) {
      *end = true;
      *status =
          end_after_ > 0 ? absl::OkStatus() : absl::OutOfRangeError(absl::StrCat("read ", read_));
    }
    return n;
  }
  void OnClose(const absl::Status& status) override { seen_->Closed(status); }

 private:
  ServerConnection* const connection_;
  const int32_t id_;
  Seen* const seen_;
  const int answers_per_request_;
  const int end_after_;
  grpc_client::MessageReader reader_;
  std::string out_;
  size_t offset_ = 0;
  int read_ = 0;
  bool ending_ = false;
};

// Answers a unary ListCalls with two calls.
class ListHandler final : public StreamHandler {
 public:
  explicit ListHandler(Seen* seen) : seen_(seen) {
    v1::ListCallsResponse response;
    response.add_calls()->set_call_id("a");
    response.add_calls()->set_call_id("b");
    out_ = Framed(response);
  }
  void OnRequestData(absl::string_view) override {}
  void OnRequestEnd() override {}
  size_t ReadBody(uint8_t* out, size_t size, bool* end, absl::Status* status) override {
    const size_t n = std::min(size, out_.size() - offset_);
    std::memcpy(out, out_.data() + offset_, n);
    offset_ += n;
    *end = offset_ == out_.size();
    *status = absl::OkStatus();
    return n;
  }
  void OnClose(const absl::Status& status) override { seen_->Closed(status); }

 private:
  Seen* const seen_;
  std::string out_;
  size_t offset_ = 0;
};

// A loop serving one listening socket with ServerConnections.
class ServerConnectionTest : public ::testing::Test, public event::FdHandler {
 protected:
  void SetUp() override {
    net::SocketAddress address = *net::Resolve(*net::ParseHostPort("127.0.0.1:0"));
    listen_fd_ = *net::ListenTcp(address);
    port_ = net::LocalAddress(listen_fd_)->port();
    absl::Notification watched;
    loop_.StartThread();
    loop_.Post([&] {
      (void)loop_.Watch(listen_fd_, this, false);
      watched.Notify();
    });
    watched.WaitForNotification();
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port_), grpc::InsecureChannelCredentials());
    stub_ = v1::BridgeService::NewStub(channel_);
  }
  void TearDown() override {
    stub_.reset();
    channel_.reset();
    absl::Notification closed;
    loop_.Post([&] {
      loop_.Unwatch(listen_fd_);
      ::close(listen_fd_);
      for (auto& connection : connections_) connection->Close(absl::CancelledError("test over"));
      connections_.clear();
      closed.Notify();
    });
    closed.WaitForNotification();
    loop_.Stop();
    loop_.Join();
  }

  void OnReadable() override {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    ServerConnection::Options options;
    options.peer = "test client";
    options.on_closed = [this](ServerConnection*) { connections_closed_++; };
    auto connection = ServerConnection::Start(
        &loop_, fd,
        [this](ServerConnection* connection, int32_t id,
               const RequestHead& head) -> absl::StatusOr<std::shared_ptr<StreamHandler>> {
          last_head_ = head;
          if (head.path == "/audiosocket.bridge.v1.BridgeService/ClaimCall") {
            return std::make_shared<EchoHandler>(connection, id, &seen_, answers_per_request_,
                                                 end_after_);
          }
          if (head.path == "/audiosocket.bridge.v1.BridgeService/ListCalls") {
            return std::make_shared<ListHandler>(&seen_);
          }
          if (head.path == "/audiosocket.bridge.v1.BridgeService/HangupCall") {
            return absl::NotFoundError("no call \"x\": 100% gone, caf\xc3\xa9");
          }
          return absl::UnimplementedError(absl::StrCat("unknown method ", head.path));
        },
        options);
    ASSERT_TRUE(connection.ok()) << connection.status();
    connections_.push_back(*connection);
  }
  void OnWritable() override {}

  // Runs `task` on the loop and waits for it.
  template <typename Task>
  void OnLoop(Task task) {
    absl::Notification done;
    loop_.Post([&] {
      task();
      done.Notify();
    });
    done.WaitForNotification();
  }

  event::EpollDispatcher loop_;
  int listen_fd_ = -1;
  int port_ = 0;
  Seen seen_;
  int answers_per_request_ = 1;
  int end_after_ = 0;
  RequestHead last_head_;  // loop thread, read after a call completed
  std::atomic<int> connections_closed_{0};
  std::vector<std::shared_ptr<ServerConnection>> connections_;  // loop thread
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::BridgeService::Stub> stub_;
};

TEST_F(ServerConnectionTest, AnswersAUnaryCallWithItsMessageAndOk) {
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer t0ken");
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  v1::ListCallsResponse response;
  grpc::Status status = stub_->ListCalls(&context, v1::ListCallsRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(response.calls_size(), 2);
  EXPECT_EQ(response.calls(1).call_id(), "b");
  EXPECT_TRUE(seen_.WaitForCloses(1)[0].ok());
  OnLoop([&] {
    EXPECT_EQ(last_head_.Find("authorization"), "Bearer t0ken");
    ASSERT_TRUE(last_head_.timeout.has_value());
    EXPECT_GT(*last_head_.timeout, absl::Seconds(10));
    EXPECT_EQ(last_head_.Find("te"), std::nullopt);
  });
}

TEST_F(ServerConnectionTest, CarriesABidiStreamBothWaysThenItsStatus) {
  answers_per_request_ = 3;  // the server sends more than it reads
  grpc::ClientContext context;
  auto stream = stub_->ClaimCall(&context);
  constexpr int kRequests = 300;
  for (int i = 0; i < kRequests; ++i) {
    v1::ClaimCallRequest request;
    request.mutable_command()->set_command_id(absl::StrCat("c", i));
    ASSERT_TRUE(stream->Write(request));
  }
  stream->WritesDone();
  v1::ClaimCallResponse response;
  int read = 0;
  while (stream->Read(&response)) {
    EXPECT_EQ(response.event().result().command_id(), absl::StrCat("c", read / 3));
    ++read;
  }
  EXPECT_EQ(read, 3 * kRequests);
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(status.error_message(), absl::StrCat("read ", kRequests));
  EXPECT_TRUE(seen_.WaitForCloses(1)[0].ok());
}

TEST_F(ServerConnectionTest, RefusesWithTheRoutersStatusInTrailersOnly) {
  grpc::ClientContext context;
  v1::HangupCallResponse response;
  grpc::Status status = stub_->HangupCall(&context, v1::HangupCallRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "no call \"x\": 100% gone, caf\xc3\xa9");

  grpc::ClientContext other;
  v1::WatchCallsRequest request;
  auto reader = stub_->WatchCalls(&other, request);
  v1::WatchCallsResponse change;
  EXPECT_FALSE(reader->Read(&change));
  status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_THAT(status.error_message(), HasSubstr("/audiosocket.bridge.v1.BridgeService/WatchCalls"));
}

TEST_F(ServerConnectionTest, TheClientsCancelReachesTheHandler) {
  grpc::ClientContext context;
  auto stream = stub_->ClaimCall(&context);
  v1::ClaimCallRequest request;
  request.mutable_command()->set_command_id("first");
  ASSERT_TRUE(stream->Write(request));
  v1::ClaimCallResponse response;
  ASSERT_TRUE(stream->Read(&response));
  context.TryCancel();
  std::vector<absl::Status> closes = seen_.WaitForCloses(1);
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

TEST_F(ServerConnectionTest, AServerThatEndsFirstEndsTheStreamForBoth) {
  end_after_ = 1;  // OK after the first request, while the client still sends
  grpc::ClientContext context;
  auto stream = stub_->ClaimCall(&context);
  v1::ClaimCallRequest request;
  ASSERT_TRUE(stream->Write(request));
  v1::ClaimCallResponse response;
  EXPECT_TRUE(stream->Read(&response));
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_TRUE(seen_.WaitForCloses(1)[0].ok());
  // The client's side was reset (NO_ERROR): nothing is left open here.
  size_t open = 1;
  for (absl::Time deadline = absl::Now() + kWait; open != 0 && absl::Now() < deadline;) {
    OnLoop([&] { open = connections_.empty() ? 0 : connections_[0]->open_streams(); });
    if (open != 0) absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(open, 0u);
}

TEST_F(ServerConnectionTest, GoAwayLetsTheOpenStreamFinishThenCloses) {
  grpc::ClientContext context;
  auto stream = stub_->ClaimCall(&context);
  v1::ClaimCallRequest request;
  ASSERT_TRUE(stream->Write(request));
  v1::ClaimCallResponse response;
  ASSERT_TRUE(stream->Read(&response));
  OnLoop([&] { connections_[0]->GoAway(); });
  // The stream still works after GOAWAY, and ends as usual.
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  stream->WritesDone();
  EXPECT_FALSE(stream->Read(&response));
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::OUT_OF_RANGE);
  for (absl::Time deadline = absl::Now() + kWait;
       connections_closed_.load() == 0 && absl::Now() < deadline;) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(connections_closed_.load(), 1);
  // The channel reconnects for the next call.
  grpc::ClientContext next;
  v1::ListCallsResponse list;
  EXPECT_TRUE(stub_->ListCalls(&next, v1::ListCallsRequest(), &list).ok());
}

}  // namespace
}  // namespace audiosocket::grpc_server
