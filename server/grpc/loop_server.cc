#include "server/grpc/loop_server.h"

#include <grpcpp/server_posix.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "lib/grpc_client/message_inflater.h"
#include "server/backend/grpc_status_convert.h"
#include "server/backend/loop_claim_stream.h"
#include "server/grpc/proxy_stream.h"
#include "server/ops/log.h"

namespace audiosocket {
namespace {

const std::string& ClaimCallPath() {
  static const std::string* const path = new std::string(
      absl::StrCat("/", bridge::v1::BridgeService::service_full_name(), "/ClaimCall"));
  return *path;
}

}  // namespace

LoopServer::LoopServer(std::vector<event::Dispatcher*> loops, BridgeService* service)
    : service_(service) {
  for (event::Dispatcher* loop : loops) {
    auto per_loop = std::make_unique<PerLoop>();
    per_loop->loop = loop;
    loops_.push_back(std::move(per_loop));
  }
}

LoopServer::~LoopServer() = default;

absl::Status LoopServer::Bind(const std::string& listen) {
  ListenerConfig config;
  config.name = "grpc";
  config.address = listen;
  listener_ = std::make_unique<Listener>(
      loops_[0]->loop, config,
      [this](int fd, const ListenerConfig*, std::string peer) { Accept(fd, std::move(peer)); },
      &accepted_, &rejected_);
  if (absl::Status bound = listener_->Bind(); !bound.ok()) return bound;
  const std::string& address = listener_->bound();
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port_)) {
    return absl::InternalError(absl::StrCat("cannot read the bound port of ", address));
  }
  return absl::OkStatus();
}

void LoopServer::Start(grpc::Server* inner) {
  inner_server_ = inner;
  started_ = true;
  Listener* listener = listener_.get();
  loops_[0]->loop->Post([listener] {
    if (absl::Status watched = listener->StartAccepting(); !watched.ok()) {
      log::Error("grpc_accept_failed", {{"error", std::string(watched.message())}});
    }
  });
}

void LoopServer::Accept(int fd, std::string peer) {
  PerLoop* per_loop = loops_[next_loop_++ % loops_.size()].get();
  per_loop->loop->Post([this, per_loop, fd, peer = std::move(peer)]() mutable {
    Serve(per_loop, fd, std::move(peer));
  });
}

void LoopServer::Serve(PerLoop* per_loop, int fd, std::string peer) {
  grpc_server::ServerConnection::Options options;
  options.peer = std::move(peer);
  options.on_closed = [per_loop](grpc_server::ServerConnection* connection) {
    per_loop->connections.erase(connection);
  };
  absl::StatusOr<std::shared_ptr<grpc_server::ServerConnection>> connection =
      grpc_server::ServerConnection::Start(
          per_loop->loop, fd,
          [this, per_loop](grpc_server::ServerConnection* connection, int32_t stream_id,
                           const grpc_server::RequestHead& head) {
            return Route(per_loop, connection, stream_id, head);
          },
          std::move(options));
  if (!connection.ok()) {
    log::Error("grpc_connection_failed", {{"error", std::string(connection.status().message())}});
    return;
  }
  per_loop->connections.emplace(connection->get(), *connection);
}

absl::StatusOr<std::shared_ptr<grpc_server::StreamHandler>> LoopServer::Route(
    PerLoop* per_loop, grpc_server::ServerConnection* connection, int32_t stream_id,
    const grpc_server::RequestHead& head) {
  if (head.path == ClaimCallPath()) {
    std::optional<std::string_view> authorization;
    if (std::optional<absl::string_view> header = head.Find("authorization")) {
      authorization = std::string_view(header->data(), header->size());
    }
    if (grpc::Status admitted = service_->AdmitClaim(authorization); !admitted.ok()) {
      return ToAbsl(admitted);
    }
    // A worker that compresses its messages (gzip, deflate) is read as
    // gRPC's server reads it; one using another encoding is told which.
    absl::StatusOr<grpc_client::MessageEncoding> encoding =
        grpc_client::ParseMessageEncoding(head.Find("grpc-encoding").value_or(""));
    if (!encoding.ok()) {
      if (service_->options().counters != nullptr) {
        service_->options().counters->pull_streams_rejected++;
      }
      return encoding.status();
    }
    const BridgeService::Options& service_options = service_->options();
    LoopClaimStream::Options options;
    options.encoding = *encoding;
    options.max_queued_audio_events = service_options.max_queued_audio_events;
    options.counters = service_options.counters;
    options.inbound_latency = service_options.inbound_latency;
    options.streams = service_options.streams;
    return LoopClaimStream::Create(connection, stream_id, service_->dispatcher(), options);
  }
  absl::StatusOr<grpc_client::Connection*> inner = Inner(per_loop);
  if (!inner.ok()) return inner.status();
  return ProxyStream::Open(connection, stream_id, head, *inner);
}

absl::StatusOr<grpc_client::Connection*> LoopServer::Inner(PerLoop* per_loop) {
  if (per_loop->inner != nullptr && per_loop->inner->takes_new_streams()) {
    return per_loop->inner.get();
  }
  grpc::Server* server = inner_server_.load();
  if (server == nullptr) return absl::UnavailableError("the bridge is not serving yet");
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    return absl::UnavailableError(absl::StrCat(
        "the bridge cannot reach its own services: socketpair: ", std::strerror(errno)));
  }
  // gRPC takes fds[1] and serves it as a connection of its own.
  grpc::AddInsecureChannelFromFd(server, fds[1]);
  grpc_client::Connection::Options options;
  options.authority = "localhost";
  // The client's own limit applies to what gRPC's server answers (a
  // ListCalls of many calls), not this hop's.
  options.max_message_bytes = 64 << 20;
  absl::StatusOr<std::shared_ptr<grpc_client::Connection>> connection =
      grpc_client::Connection::Adopt(per_loop->loop, fds[0], "the bridge's own services", options);
  if (!connection.ok()) return connection.status();
  per_loop->inner = *connection;
  return per_loop->inner.get();
}

void LoopServer::OnEveryLoop(const std::function<void(PerLoop*)>& task) {
  struct Pending {
    absl::Mutex mu;
    size_t left ABSL_GUARDED_BY(mu) = 0;
  };
  auto pending = std::make_shared<Pending>();
  {
    absl::MutexLock lock(&pending->mu);
    pending->left = loops_.size();
  }
  for (auto& per_loop : loops_) {
    PerLoop* p = per_loop.get();
    p->loop->Post([task, pending, p] {
      task(p);
      absl::MutexLock lock(&pending->mu);
      pending->left--;
    });
  }
  // Bounded: a loop that no longer runs must not hang the shutdown.
  absl::MutexLock lock(&pending->mu);
  auto all_done = [&pending]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(pending->mu) { return pending->left == 0; };
  pending->mu.AwaitWithTimeout(absl::Condition(&all_done), absl::Seconds(5));
}

void LoopServer::StopAccepting() {
  if (listener_ == nullptr) return;
  if (!started_) {
    listener_->Close();  // the loops never ran: nothing else touches it
    return;
  }
  Listener* listener = listener_.get();
  OnEveryLoop([listener, first = loops_[0].get()](PerLoop* p) {
    if (p == first) listener->Close();
  });
}

void LoopServer::Close() {
  if (!started_) return;
  OnEveryLoop([](PerLoop* p) {
    auto connections = std::move(p->connections);
    p->connections.clear();
    for (auto& [raw, connection] : connections) {
      connection->Shutdown(absl::UnavailableError("the bridge is shutting down"));
    }
    if (p->inner != nullptr) p->inner->Close(absl::UnavailableError("the bridge is shutting down"));
    p->inner = nullptr;
  });
}

}  // namespace audiosocket
