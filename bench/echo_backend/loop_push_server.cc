#include "bench/echo_backend/loop_push_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "bench/echo_backend/echo_stats.h"
#include "bench/echo_backend/framed_replies.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/grpc_client/message_reader.h"
#include "lib/grpc_server/server_connection.h"
#include "proto/audiosocket/bridge/v1/bridge.grpc.pb.h"

namespace audiosocket::echo_backend {
namespace {

namespace v1 = bridge::v1;

const std::string& HandleCallPath() {
  static const std::string* const path = new std::string(
      absl::StrCat("/", v1::CallHandlerService::service_full_name(), "/HandleCall"));
  return *path;
}

// One HandleCall stream: an AcceptCall for the call's start, then a
// PlayAudio for every AudioChunk. Held by its connection until it ends.
class EchoStream final : public grpc_server::StreamHandler {
 public:
  EchoStream(grpc_server::ServerConnection* connection, int32_t stream_id)
      : connection_(connection), stream_id_(stream_id), reader_(4 << 20) {}

  void OnRequestData(absl::string_view data) override {
    const absl::Status fed =
        reader_.Feed(data, [this](absl::string_view message) { OnMessage(message); });
    if (!fed.ok()) {
      g_stats.streams_failed.fetch_add(1, std::memory_order_relaxed);
      connection_->Reset(stream_id_);
      return;
    }
    Resume();
  }

  void OnRequestEnd() override {
    request_ended_ = true;
    Resume();
  }

  size_t ReadBody(uint8_t* out, size_t size, bool* end, absl::Status* status) override {
    const size_t n = outgoing_.Read(out, size);
    // The bridge half-closes when the call ends: the stream ends OK once
    // every reply is out.
    *end = request_ended_ && outgoing_.empty();
    if (*end) *status = absl::OkStatus();
    paused_ = n == 0 && !*end;
    return n;
  }

  void OnClose(const absl::Status& status) override {
    if (!status.ok()) g_stats.streams_failed.fetch_add(1, std::memory_order_relaxed);
  }

 private:
  void OnMessage(absl::string_view message) {
    if (!request_.ParseFromArray(message.data(), static_cast<int>(message.size()))) {
      g_stats.streams_failed.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    const v1::CallEvent& event = request_.event();
    if (event.has_audio()) {
      response_.Clear();
      OnAudio(event.audio(), &next_offset_, response_.mutable_command());
      outgoing_.Append(response_);
      return;
    }
    g_stats.other_events.fetch_add(1, std::memory_order_relaxed);
    if (event.has_started()) {
      g_stats.calls.fetch_add(1, std::memory_order_relaxed);
      v1::HandleCallResponse accept;
      accept.mutable_accept();
      outgoing_.Append(accept);
    }
    if (event.has_ended()) g_stats.calls_ended.fetch_add(1, std::memory_order_relaxed);
  }

  void Resume() {
    if (!paused_ || (outgoing_.empty() && !request_ended_)) return;
    paused_ = false;
    connection_->ResumeSending(stream_id_);
  }

  grpc_server::ServerConnection* const connection_;  // outlives its streams
  const int32_t stream_id_;
  grpc_client::MessageReader reader_;
  FramedReplies outgoing_;  // responses not taken by ReadBody yet
  bool paused_ = false;     // ReadBody returned nothing: ResumeSending wakes it
  bool request_ended_ = false;
  uint64_t next_offset_ = 0;
  // Reused for every message: parsing into it keeps its buffers.
  v1::HandleCallRequest request_;
  v1::HandleCallResponse response_;
};

// Accepts connections and serves each on the loop. Loop thread only.
class Server final : public event::FdHandler {
 public:
  Server(event::Dispatcher* loop, int fd) : loop_(loop), fd_(fd) {}

  void OnReadable() override {
    while (true) {
      const int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a failure the next readiness retries
      grpc_server::ServerConnection::Options options;
      options.peer = "bridge";
      options.on_closed = [this](grpc_server::ServerConnection* connection) {
        connections_.erase(connection);
      };
      absl::StatusOr<std::shared_ptr<grpc_server::ServerConnection>> connection =
          grpc_server::ServerConnection::Start(
              loop_, fd,
              [](grpc_server::ServerConnection* connection, int32_t stream_id,
                 const grpc_server::RequestHead& head)
                  -> absl::StatusOr<std::shared_ptr<grpc_server::StreamHandler>> {
                if (head.path != HandleCallPath()) {
                  return absl::UnimplementedError(absl::StrCat(head.path, " is not served here"));
                }
                return std::make_shared<EchoStream>(connection, stream_id);
              },
              std::move(options));
      if (connection.ok()) connections_.emplace(connection->get(), *std::move(connection));
    }
  }
  void OnWritable() override {}

 private:
  event::Dispatcher* const loop_;
  const int fd_;
  absl::flat_hash_map<grpc_server::ServerConnection*,
                      std::shared_ptr<grpc_server::ServerConnection>>
      connections_;
};

// Serves the listening socket `fd` on a new loop thread.
absl::Status Serve(int fd, absl::Duration round_window) {
  // Both live until the process exits (echo-backend ends with _Exit), held
  // from a static so that leak checkers see them as reachable: the loop
  // knows the server only through the kernel's epoll registration.
  static auto* const running = new std::vector<std::pair<event::EpollDispatcher*, Server*>>();
  auto* loop = new event::EpollDispatcher();
  loop->set_round_window(absl::ToChronoNanoseconds(round_window));
  auto* server = new Server(loop, fd);
  running->emplace_back(loop, server);
  if (absl::Status watched = loop->Watch(fd, server, /*writable=*/false); !watched.ok()) {
    return watched;
  }
  loop->StartThread();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int> StartLoopPushServer(int port, absl::Duration round_window) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(port));
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), length) != 0 || listen(fd, 1024) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    const int error = errno;
    close(fd);
    return absl::ErrnoToStatus(error, absl::StrCat("listen on 127.0.0.1:", port));
  }
  if (absl::Status served = Serve(fd, round_window); !served.ok()) return served;
  return static_cast<int>(ntohs(address.sin_port));
}

absl::Status StartLoopPushServerOnUnixSocket(const std::string& path, absl::Duration round_window) {
  sockaddr_un address{};
  if (path.empty() || path.size() >= sizeof(address.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a unix socket path needs 1 to ", sizeof(address.sun_path) - 1, " bytes"));
  }
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::ErrnoToStatus(errno, "socket");
  // A socket left by an earlier run is replaced; any other file is not.
  struct stat existing {};
  if (lstat(path.c_str(), &existing) == 0 && S_ISSOCK(existing.st_mode)) unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      listen(fd, 1024) != 0) {
    const int error = errno;
    close(fd);
    return absl::ErrnoToStatus(error, absl::StrCat("listen on unix:", path));
  }
  return Serve(fd, round_window);
}

}  // namespace audiosocket::echo_backend
