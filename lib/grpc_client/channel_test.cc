// Channel and Connection against real gRPC C++ servers on loopback: round
// robin, refused addresses, deadlines, errors a server or the client finds.

#include "lib/grpc_client/channel.h"

#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/grpc_client/message_reader.h"

namespace audiosocket::grpc_client {
namespace {

namespace v1 = ::audiosocket::bridge::v1;
using ::testing::HasSubstr;

constexpr absl::Duration kWait = absl::Seconds(20);  // only bounds a broken test
const char kHandleCall[] = "/audiosocket.bridge.v1.CallHandlerService/HandleCall";

using ServerStream = grpc::ServerReaderWriter<v1::HandleCallResponse, v1::HandleCallRequest>;

// Answers each stream with one command naming the server, then echoes the
// count of events it read when the client half-closes.
class NamedBackend final : public v1::CallHandlerService::Service {
 public:
  explicit NamedBackend(std::string name, absl::Duration stall = absl::ZeroDuration())
      : name_(std::move(name)), stall_(stall) {}
  grpc::Status HandleCall(grpc::ServerContext* context, ServerStream* stream) override {
    ++streams_;
    if (stall_ > absl::ZeroDuration()) {
      absl::SleepFor(stall_);
      return grpc::Status::OK;
    }
    v1::HandleCallResponse response;
    response.mutable_command()->set_command_id(name_);
    stream->Write(response);
    v1::HandleCallRequest request;
    int events = 0;
    while (stream->Read(&request)) ++events;
    return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, absl::StrCat(name_, " read ", events));
  }
  int streams() const { return streams_; }

 private:
  const std::string name_;
  const absl::Duration stall_;
  std::atomic<int> streams_{0};
};

struct Server {
  explicit Server(std::string name, absl::Duration stall = absl::ZeroDuration())
      : service(std::move(name), stall) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&service);
    server = builder.BuildAndStart();
  }
  ~Server() { server->Shutdown(std::chrono::system_clock::now()); }
  NamedBackend service;
  int port = 0;
  std::unique_ptr<grpc::Server> server;
};

// Sends `events` framed HandleCallRequests, then ends the body; records
// what comes back.
class RecordingStream final : public StreamHandler {
 public:
  explicit RecordingStream(int events = 0) {
    for (int i = 0; i < events; ++i) {
      v1::HandleCallRequest request;
      request.mutable_event()->mutable_mark()->set_name("m");
      std::string bytes = request.SerializeAsString();
      AppendMessagePrefix(bytes.size(), &body_);
      body_ += bytes;
    }
  }
  size_t ReadBody(uint8_t* out, size_t size, bool* end) override {
    const size_t n = std::min(size, body_.size() - sent_);
    std::memcpy(out, body_.data() + sent_, n);
    sent_ += n;
    *end = sent_ == body_.size() && !hold_open_;
    return n;
  }
  void OnMessage(absl::string_view message) override {
    v1::HandleCallResponse response;
    response.ParseFromArray(message.data(), static_cast<int>(message.size()));
    absl::MutexLock lock(&mu_);
    commands_.push_back(response.command().command_id());
  }
  void OnClose(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    status_ = status;
  }
  absl::Status WaitClosed() {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithTimeout(
        absl::Condition(
            +[](std::optional<absl::Status>* s) { return s->has_value(); }, &status_),
        kWait);
    return status_.value_or(absl::InternalError("the test timed out"));
  }
  std::vector<std::string> commands() {
    absl::MutexLock lock(&mu_);
    return commands_;
  }
  // More body, on the loop; the caller resumes the stream.
  void Append(const std::string& message) {
    AppendMessagePrefix(message.size(), &body_);
    body_ += message;
  }
  bool hold_open_ = false;  // never end the body (set before opening)

 private:
  std::string body_;
  size_t sent_ = 0;
  absl::Mutex mu_;
  std::vector<std::string> commands_ ABSL_GUARDED_BY(mu_);
  std::optional<absl::Status> status_ ABSL_GUARDED_BY(mu_);
};

// A port nothing listens on: bound, then closed.
int RefusingPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  socklen_t length = sizeof(address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

class ChannelTest : public ::testing::Test {
 protected:
  void Make(const std::string& target, Channel::Options options = {}) {
    auto channel = Channel::Create(&loop_, target, options);
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = *std::move(channel);
    loop_.StartThread();
  }
  // Opens a stream on the loop; the error, if opening failed.
  absl::Status Open(std::shared_ptr<RecordingStream> stream,
                    absl::Duration timeout = absl::Seconds(30), std::string path = kHandleCall) {
    absl::Notification opened;
    absl::Status result;
    loop_.Post([&] {
      {
        auto id = channel_->OpenStream(path, {}, timeout, stream);
        result = id.status();
      }  // everything the task made is gone before the test goes on
      opened.Notify();
    });
    opened.WaitForNotification();
    return result;
  }
  void TearDown() override {
    if (channel_ != nullptr) {
      absl::Notification closed;
      loop_.Post([&] {
        channel_->Shutdown(absl::CancelledError("test over"));
        closed.Notify();
      });
      closed.WaitForNotification();
      loop_.Stop();
      loop_.Join();
      channel_ = nullptr;
    }
  }
  event::EpollDispatcher loop_;
  std::shared_ptr<Channel> channel_;
};

TEST_F(ChannelTest, StreamsCarryMessagesBothWaysAndEndWithTheServersStatus) {
  Server server("a");
  Make(absl::StrCat("127.0.0.1:", server.port));
  auto stream = std::make_shared<RecordingStream>(3);
  ASSERT_TRUE(Open(stream).ok());
  absl::Status status = stream->WaitClosed();
  EXPECT_EQ(status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(status.message(), "a read 3");
  EXPECT_THAT(stream->commands(), ::testing::ElementsAre("a"));
}

TEST_F(ChannelTest, EveryStreamsFramesOfALoopRoundLeaveInOneWrite) {
  Server server("a");
  Make(absl::StrCat("127.0.0.1:", server.port));
  constexpr int kStreams = 50;
  std::vector<std::shared_ptr<RecordingStream>> streams;
  std::vector<Channel::OpenedStream> opened;
  absl::Notification ready;
  loop_.Post([&] {
    for (int i = 0; i < kStreams; ++i) {
      auto stream = std::make_shared<RecordingStream>();
      stream->hold_open_ = true;
      auto id = channel_->OpenStream(kHandleCall, {}, absl::Seconds(30), stream);
      ASSERT_TRUE(id.ok()) << id.status();
      streams.push_back(stream);
      opened.push_back(*id);
    }
    ready.Notify();
  });
  ready.WaitForNotification();
  // Every server stream answered: the connection is up and idle.
  for (int i = 0; i < kStreams; ++i) {
    while (streams[i]->commands().empty()) absl::SleepFor(absl::Milliseconds(1));
  }
  absl::Notification sent;
  uint64_t before = 0;
  uint64_t after = 0;
  loop_.Post([&] {
    before = opened[0].connection->writes();
    v1::HandleCallRequest request;
    request.mutable_event()->mutable_audio()->set_pcm(std::string(320, 'a'));
    for (int i = 0; i < kStreams; ++i) {
      streams[i]->Append(request.SerializeAsString());
      opened[i].connection->ResumeSending(opened[i].stream_id);
    }
    // Registered after the connection's flush, so it runs right after it,
    // in the same round: a write the server's own frames (a PING ack) ask
    // for in a later round is not counted.
    loop_.RunAfterRound([&] {
      after = opened[0].connection->writes();
      sent.Notify();
    });
  });
  sent.WaitForNotification();
  // 50 streams' frames (about 18 KB) in one write; a flush per stream
  // would be 50.
  EXPECT_EQ(after - before, 1u);
  for (auto& o : opened) EXPECT_EQ(o.connection, opened[0].connection);
}

TEST_F(ChannelTest, StreamsGoRoundRobinAcrossTheAddresses) {
  Server a("a"), b("b");
  Make(absl::StrCat("ipv4:127.0.0.1:", a.port, ",127.0.0.1:", b.port));
  std::vector<std::string> served;
  for (int i = 0; i < 4; ++i) {
    auto stream = std::make_shared<RecordingStream>(1);
    ASSERT_TRUE(Open(stream).ok());
    ASSERT_TRUE(stream->WaitClosed().code() == absl::StatusCode::kOutOfRange);
    served.push_back(stream->commands().at(0));
  }
  EXPECT_THAT(served, ::testing::ElementsAre("a", "b", "a", "b"));
}

TEST_F(ChannelTest, ARefusedAddressFailsItsStreamThenIsSkipped) {
  Server live("live");
  Make(absl::StrCat("ipv4:127.0.0.1:", RefusingPort(), ",127.0.0.1:", live.port));
  auto first = std::make_shared<RecordingStream>(1);
  ASSERT_TRUE(Open(first).ok());  // fails once the connect does
  absl::Status refused = first->WaitClosed();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.message(), HasSubstr("cannot connect"));
  // Within the backoff, every stream goes to the live address.
  for (int i = 0; i < 3; ++i) {
    auto stream = std::make_shared<RecordingStream>(1);
    ASSERT_TRUE(Open(stream).ok());
    EXPECT_EQ(stream->WaitClosed().code(), absl::StatusCode::kOutOfRange);
  }
  EXPECT_EQ(live.service.streams(), 3);
}

TEST_F(ChannelTest, WithEveryAddressRefusedOpeningFailsAtOnceWithTheReason) {
  Make(absl::StrCat("127.0.0.1:", RefusingPort()));
  auto first = std::make_shared<RecordingStream>();
  ASSERT_TRUE(Open(first).ok());
  EXPECT_EQ(first->WaitClosed().code(), absl::StatusCode::kUnavailable);
  absl::Status second = Open(std::make_shared<RecordingStream>());
  EXPECT_EQ(second.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.message(), HasSubstr("cannot connect"));
}

TEST_F(ChannelTest, AStreamPastItsDeadlineEndsDeadlineExceeded) {
  Server slow("slow", absl::Seconds(3));
  Make(absl::StrCat("127.0.0.1:", slow.port));
  auto stream = std::make_shared<RecordingStream>();
  stream->hold_open_ = true;
  ASSERT_TRUE(Open(stream, absl::Milliseconds(200)).ok());
  absl::Status status = stream->WaitClosed();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
}

TEST_F(ChannelTest, AnUnknownMethodIsUnimplemented) {
  Server server("a");
  Make(absl::StrCat("127.0.0.1:", server.port));
  auto stream = std::make_shared<RecordingStream>();
  ASSERT_TRUE(Open(stream, absl::Seconds(30), "/no.Such/Method").ok());
  EXPECT_EQ(stream->WaitClosed().code(), absl::StatusCode::kUnimplemented);
}

TEST_F(ChannelTest, ShutdownEndsOpenStreamsAndRefusesNewOnes) {
  Server server("a");
  Make(absl::StrCat("127.0.0.1:", server.port));
  auto stream = std::make_shared<RecordingStream>();
  stream->hold_open_ = true;
  ASSERT_TRUE(Open(stream).ok());
  absl::Notification done;
  loop_.Post([&] {
    channel_->Shutdown(absl::UnavailableError("going down"));
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_EQ(stream->WaitClosed().message(), "going down");
  EXPECT_EQ(Open(std::make_shared<RecordingStream>()).code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace audiosocket::grpc_client
