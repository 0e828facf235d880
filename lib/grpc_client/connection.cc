#include "lib/grpc_client/connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "lib/grpc_client/grpc_status.h"
#include "lib/grpc_client/http2_pipe.h"
#include "lib/grpc_client/message_inflater.h"
#include "lib/grpc_client/message_reader.h"

namespace audiosocket::grpc_client {

struct Connection::Stream {
  explicit Stream(size_t max_message_bytes) : reader(max_message_bytes) {}
  std::shared_ptr<StreamHandler> handler;  // null once cancelled
  MessageReader reader;
  std::optional<int> http_status;
  std::optional<std::string> grpc_status;
  std::string grpc_message;
  bool sending_paused = false;
  event::Dispatcher::TimerId deadline_timer = 0;
};

// nghttp2's callbacks, with the connection as user data.
struct Connection::Callbacks {
  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                      void* user_data) {
    auto* self = static_cast<Connection*>(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* stream = self->streams_.Find(frame->hd.stream_id);
    if (stream == nullptr) return 0;
    const absl::string_view key(reinterpret_cast<const char*>(name), name_length);
    const absl::string_view text(reinterpret_cast<const char*>(value), value_length);
    if (key == ":status") {
      int status = 0;
      if (absl::SimpleAtoi(text, &status)) stream->http_status = status;
    } else if (key == "grpc-status") {
      stream->grpc_status = std::string(text);
    } else if (key == "grpc-message") {
      stream->grpc_message = std::string(text);
    } else if (key == "grpc-encoding") {
      // Compressed messages of an encoding this side does not read end the
      // stream (some servers compress without looking at what was accepted).
      if (absl::StatusOr<MessageEncoding> encoding = ParseMessageEncoding(text); encoding.ok()) {
        stream->reader.set_encoding(*encoding);
      }
    }
    return 0;
  }

  static int OnFrameReceived(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto* self = static_cast<Connection*>(user_data);
    if (frame->hd.type == NGHTTP2_GOAWAY && self->state_ != State::kClosed) {
      // Streams above last_stream_id are closed by nghttp2 (REFUSED_STREAM,
      // safe to retry); the rest finish. New streams go elsewhere.
      self->state_ = State::kDraining;
      self->CloseIfDrained();
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t length, void* user_data) {
    auto* self = static_cast<Connection*>(user_data);
    Stream* stream = self->streams_.Find(stream_id);
    if (stream == nullptr || stream->handler == nullptr) return 0;
    absl::Status read =
        stream->reader.Feed(absl::string_view(reinterpret_cast<const char*>(data), length),
                            [stream](absl::string_view message) {
                              // A handler may cancel its stream while reading it.
                              if (stream->handler != nullptr) stream->handler->OnMessage(message);
                            });
    if (!read.ok()) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
      self->streams_.Fail(stream_id, read);
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data) {
    static_cast<Connection*>(user_data)->FinishStream(stream_id, error_code);
    return 0;
  }

  static ssize_t ReadBody(nghttp2_session*, int32_t stream_id, uint8_t* buffer, size_t length,
                          uint32_t* data_flags, nghttp2_data_source*, void* user_data) {
    return static_cast<Connection*>(user_data)->streams_.ReadBody(
        stream_id, [&](Stream& stream, bool* end) {
          const size_t n = stream.handler->ReadBody(buffer, length, end);
          if (*end) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
          return n;
        });
  }
};

std::shared_ptr<Connection> Connection::Start(event::Dispatcher* loop, const Address& address,
                                              Options options) {
  std::shared_ptr<Connection> connection(new Connection(loop, address, std::move(options)));
  connection->Connect(address);
  return connection;
}

absl::StatusOr<std::shared_ptr<Connection>> Connection::Adopt(event::Dispatcher* loop, int fd,
                                                              absl::string_view peer,
                                                              Options options) {
  Address address;
  address.text = std::string(peer);
  std::shared_ptr<Connection> connection(new Connection(loop, address, std::move(options)));
  if (absl::Status opened = connection->pipe_.Open(fd, connection.get(), /*writable=*/false);
      !opened.ok()) {
    return opened;
  }
  connection->state_ = State::kReady;
  connection->ever_ready_ = true;
  connection->ScheduleFlush();  // the preface and SETTINGS
  return connection;
}

Connection::Connection(event::Dispatcher* loop, const Address& address, Options options)
    : loop_(loop),
      options_(std::move(options)),
      peer_(address.text),
      pipe_(loop, absl::StrCat("the backend at ", address.text)),
      streams_(loop, [this] { ScheduleFlush(); }) {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &Callbacks::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Callbacks::OnFrameReceived);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Callbacks::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Callbacks::OnStreamClose);
  nghttp2_option* option = nullptr;
  nghttp2_option_new(&option);
  // Until the backend's SETTINGS arrive nghttp2 would assume 100: calls
  // that arrive while connecting must not wait for them.
  nghttp2_option_set_peer_max_concurrent_streams(option, 1u << 20);
  nghttp2_session_client_new2(&session_, callbacks, this, option);
  nghttp2_option_del(option);
  nghttp2_session_callbacks_del(callbacks);
  SubmitLocalSettings(session_, /*client=*/true, options_.stream_window_bytes,
                      options_.connection_window_bytes);
}

Connection::~Connection() {
  pipe_.CloseSocket();
  nghttp2_session_del(session_);
}

void Connection::Connect(const Address& address) {
  const int fd = ::socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    Close(absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno))));
    return;
  }
  if (address.storage.ss_family != AF_UNIX) {
    // Frames are small and already batched per loop round.
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  const int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&address.storage), address.length);
  if (rc != 0 && errno != EINPROGRESS) {
    const int error = errno;
    ::close(fd);
    Close(absl::UnavailableError(
        absl::StrCat("cannot connect to the backend at ", peer_, ": ", std::strerror(error))));
    return;
  }
  // A connect in progress reports its end as writability.
  if (absl::Status opened = pipe_.Open(fd, this, /*writable=*/true); !opened.ok()) {
    Close(opened);
    return;
  }
  connect_timer_ =
      loop_->RunAt(loop_->Now() + absl::ToChronoNanoseconds(options_.connect_timeout),
                   [weak = std::weak_ptr<Connection>(shared_from_this())] {
                     auto self = weak.lock();
                     if (self == nullptr || self->state_ != State::kConnecting) return;
                     self->connect_timer_ = 0;
                     self->Close(absl::UnavailableError(absl::StrCat(
                         "connecting to the backend at ", self->peer_, " took more than ",
                         absl::FormatDuration(self->options_.connect_timeout))));
                   });
}

void Connection::OnConnected() {
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(pipe_.fd(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error != 0) {
    Close(absl::UnavailableError(
        absl::StrCat("cannot connect to the backend at ", peer_, ": ", std::strerror(error))));
    return;
  }
  loop_->CancelTimer(connect_timer_);
  connect_timer_ = 0;
  state_ = draining_requested_ ? State::kDraining : State::kReady;
  ever_ready_ = true;
  Flush();
}

absl::StatusOr<int32_t> Connection::OpenStream(absl::string_view path, const Metadata& metadata,
                                               absl::Duration timeout,
                                               std::shared_ptr<StreamHandler> handler) {
  if (!takes_new_streams()) {
    return absl::UnavailableError(
        absl::StrCat("the connection to the backend at ", peer_, " takes no new streams",
                     close_status_.ok() ? std::string(" (it is going away)")
                                        : absl::StrCat(": ", close_status_.message())));
  }
  const std::string timeout_text = GrpcTimeoutHeader(timeout);
  std::vector<nghttp2_nv> headers = {
      Header(":method", "POST"),
      Header(":scheme", "http"),
      Header(":path", path),
      Header(":authority", options_.authority),
      Header("content-type", "application/grpc"),
      Header("te", "trailers"),
      Header("user-agent", "audiosocket-bridge"),
      Header("grpc-timeout", timeout_text),
      // What gRPC's own clients say: a backend may compress what it sends
      // (grpc-java and grpc-go compress only what the client says it reads).
      Header("grpc-accept-encoding", kAcceptedMessageEncodings),
  };
  for (const auto& [name, value] : metadata) headers.push_back(Header(name, value));
  nghttp2_data_provider body{};
  body.read_callback = &Callbacks::ReadBody;
  const int32_t id =
      nghttp2_submit_request(session_, nullptr, headers.data(), headers.size(), &body, nullptr);
  if (id < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open a stream to ", peer_, ": ", nghttp2_strerror(id)));
  }
  auto stream = std::make_unique<Stream>(options_.max_message_bytes);
  stream->handler = std::move(handler);
  streams_.ArmDeadline(*stream, id, timeout, session_, weak_from_this());
  streams_.Add(id, std::move(stream));
  ScheduleFlush();
  return id;
}

void Connection::ResumeSending(int32_t stream_id) { streams_.ResumeSending(session_, stream_id); }

void Connection::Cancel(int32_t stream_id) {
  if (!streams_.Release(stream_id) || state_ == State::kClosed) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
  ScheduleFlush();
}

absl::Status Connection::EndStatus(Stream& stream, uint32_t error_code) {
  if (stream.grpc_status.has_value()) {
    absl::Status status = StatusFromTrailers(*stream.grpc_status, stream.grpc_message);
    if (status.ok() && !stream.reader.at_message_boundary()) {
      return absl::InternalError("the backend's stream ended inside a message");
    }
    return status;
  }
  if (stream.http_status.has_value() && *stream.http_status != 200) {
    return absl::Status(StatusCodeForHttpStatus(*stream.http_status),
                        absl::StrCat("the backend at ", peer_, " answered HTTP status ",
                                     *stream.http_status, ", not gRPC"));
  }
  switch (error_code) {
    case NGHTTP2_NO_ERROR:
      return absl::InternalError("the backend ended the stream without a grpc-status");
    case NGHTTP2_REFUSED_STREAM:
      return absl::UnavailableError(
          absl::StrCat("the backend at ", peer_, " refused the stream (going away or busy)"));
    case NGHTTP2_CANCEL:
      return absl::CancelledError("the backend cancelled the stream");
    default:
      return absl::InternalError(
          absl::StrCat("the backend reset the stream (", nghttp2_http2_strerror(error_code), ")"));
  }
}

void Connection::FinishStream(int32_t stream_id, uint32_t error_code) {
  std::unique_ptr<Stream> stream = streams_.Remove(stream_id);
  if (stream == nullptr) return;
  if (stream->handler != nullptr) stream->handler->OnClose(EndStatus(*stream, error_code));
  CloseIfDrained();
}

void Connection::CloseWhenIdle() {
  if (state_ == State::kClosed) return;
  if (state_ == State::kConnecting) {
    draining_requested_ = true;
    if (streams_.empty()) Close(absl::CancelledError("no longer needed"));
    return;
  }
  state_ = State::kDraining;
  CloseIfDrained();
}

void Connection::CloseIfDrained() {
  if (state_ == State::kDraining && streams_.empty()) {
    Close(absl::UnavailableError(
        absl::StrCat("the connection to the backend at ", peer_, " was drained")));
  }
}

void Connection::Close(const absl::Status& status) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  close_status_ = status;
  loop_->CancelTimer(connect_timer_);
  connect_timer_ = 0;
  pipe_.CloseSocket();
  // The loop may still report this round's events to us: stay alive.
  loop_->RunAfterRound([self = shared_from_this()] {});
  streams_.CloseAll(status);
}

void Connection::ScheduleFlush() {
  if (state_ == State::kClosed || pipe_.flush_scheduled()) return;
  pipe_.ScheduleFlush(weak_from_this(), [this] { Flush(); });
}

void Connection::Flush() {
  if (state_ == State::kConnecting || state_ == State::kClosed) return;
  auto keep_alive = shared_from_this();
  absl::Status flushed = pipe_.Flush(session_, [this] { return state_ == State::kClosed; });
  if (state_ != State::kClosed && !flushed.ok()) Close(flushed);
}

void Connection::OnWritable() {
  if (state_ == State::kConnecting) {
    OnConnected();
    return;
  }
  Flush();
}

void Connection::OnReadable() {
  if (state_ == State::kConnecting) {
    OnConnected();  // a failed connect reports as an error here
    return;
  }
  if (state_ == State::kClosed) return;
  auto keep_alive = shared_from_this();
  absl::Status read = pipe_.Read(session_, [this] { return state_ == State::kClosed; });
  if (state_ == State::kClosed) return;
  if (!read.ok()) {
    Close(read);
    return;
  }
  // Acknowledgements and window updates the input asked for.
  ScheduleFlush();
}

}  // namespace audiosocket::grpc_client
