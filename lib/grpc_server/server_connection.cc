#include "lib/grpc_server/server_connection.h"

#include <nghttp2/nghttp2.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "lib/grpc_client/grpc_status.h"

namespace audiosocket::grpc_server {
namespace {

using grpc_client::Header;

// The "grpc-status" and "grpc-message" headers for `status`.
struct StatusHeaders {
  explicit StatusHeaders(const absl::Status& status)
      : code(absl::StrCat(static_cast<int>(status.code()))),
        message(grpc_client::PercentEncode(status.message())) {}
  void AppendTo(std::vector<nghttp2_nv>* headers) const {
    headers->push_back(Header("grpc-status", code));
    if (!message.empty()) headers->push_back(Header("grpc-message", message));
  }
  std::string code;
  std::string message;
};

}  // namespace

std::optional<absl::string_view> RequestHead::Find(absl::string_view name) const {
  for (const auto& [key, value] : metadata) {
    if (key == name) return absl::string_view(value);
  }
  return std::nullopt;
}

struct ServerConnection::Stream {
  RequestHead head;
  std::string method;
  std::string content_type;
  bool bad_timeout = false;
  std::shared_ptr<StreamHandler> handler;  // null before routing and once done
  bool routed = false;
  bool request_ended = false;
  bool status_submitted = false;
  bool sending_paused = false;
  event::Dispatcher::TimerId deadline_timer = 0;
};

// nghttp2's callbacks, with the connection as user data.
struct ServerConnection::Callbacks {
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto* self = static_cast<ServerConnection*>(user_data);
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      self->streams_.Add(frame->hd.stream_id, std::make_unique<Stream>());
    }
    return 0;
  }

  static int OnHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                      size_t name_length, const uint8_t* value, size_t value_length, uint8_t,
                      void* user_data) {
    auto* self = static_cast<ServerConnection*>(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    Stream* stream = self->streams_.Find(frame->hd.stream_id);
    if (stream == nullptr) return 0;
    const absl::string_view key(reinterpret_cast<const char*>(name), name_length);
    const absl::string_view text(reinterpret_cast<const char*>(value), value_length);
    if (key == ":path") {
      stream->head.path = std::string(text);
    } else if (key == ":method") {
      stream->method = std::string(text);
    } else if (key == "content-type") {
      stream->content_type = std::string(text);
    } else if (key == "grpc-timeout") {
      std::optional<absl::Duration> timeout = grpc_client::ParseGrpcTimeout(text);
      if (timeout.has_value()) {
        stream->head.timeout = timeout;
      } else {
        stream->bad_timeout = true;
      }
    } else if (!key.empty() && key[0] != ':' && key != "te") {
      stream->head.metadata.emplace_back(std::string(key), std::string(text));
    }
    return 0;
  }

  static int OnFrameReceived(nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
    auto* self = static_cast<ServerConnection*>(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) return 0;
    const int32_t id = frame->hd.stream_id;
    Stream* stream = self->streams_.Find(id);
    if (stream == nullptr) return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
      self->Route(id, *stream);
      stream = self->streams_.Find(id);  // routing may have ended it
      if (stream == nullptr) return 0;
    }
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0 && !stream->request_ended) {
      stream->request_ended = true;
      if (stream->handler != nullptr) {
        std::shared_ptr<StreamHandler> handler = stream->handler;
        handler->OnRequestEnd();
      }
    }
    return 0;
  }

  static int OnFrameSent(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
    auto* self = static_cast<ServerConnection*>(user_data);
    if (frame->hd.type != NGHTTP2_HEADERS || (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) == 0) {
      return 0;
    }
    // The status went out while the client still sends: as gRPC servers
    // do, end its side too, so the stream does not linger.
    Stream* stream = self->streams_.Find(frame->hd.stream_id);
    if (stream != nullptr && !stream->request_ended) {
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
  }

  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data,
                         size_t length, void* user_data) {
    auto* self = static_cast<ServerConnection*>(user_data);
    Stream* stream = self->streams_.Find(stream_id);
    if (stream == nullptr || stream->handler == nullptr) return 0;
    std::shared_ptr<StreamHandler> handler = stream->handler;
    handler->OnRequestData(absl::string_view(reinterpret_cast<const char*>(data), length));
    return 0;
  }

  static int OnStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                           void* user_data) {
    static_cast<ServerConnection*>(user_data)->FinishStream(stream_id, error_code);
    return 0;
  }

  static ssize_t ReadBody(nghttp2_session* session, int32_t stream_id, uint8_t* buffer,
                          size_t length, uint32_t* data_flags, nghttp2_data_source*,
                          void* user_data) {
    return static_cast<ServerConnection*>(user_data)->streams_.ReadBody(
        stream_id, [&](Stream& stream, bool* end) {
          absl::Status status;
          const size_t n = stream.handler->ReadBody(buffer, length, end, &status);
          if (*end) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
            const StatusHeaders status_headers(status);
            std::vector<nghttp2_nv> trailers;
            status_headers.AppendTo(&trailers);  // nghttp2 copies them
            nghttp2_submit_trailer(session, stream_id, trailers.data(), trailers.size());
            stream.status_submitted = true;
          }
          return n;
        });
  }
};

absl::StatusOr<std::shared_ptr<ServerConnection>> ServerConnection::Start(event::Dispatcher* loop,
                                                                          int fd, Router router,
                                                                          Options options) {
  std::shared_ptr<ServerConnection> connection(
      new ServerConnection(loop, std::move(router), std::move(options)));
  if (absl::Status opened = connection->pipe_.Open(fd, connection.get(), /*writable=*/false);
      !opened.ok()) {
    return opened;
  }
  connection->ScheduleFlush();  // our SETTINGS
  return connection;
}

ServerConnection::ServerConnection(event::Dispatcher* loop, Router router, Options options)
    : loop_(loop),
      router_(std::move(router)),
      options_(std::move(options)),
      pipe_(loop, absl::StrCat("the client at ", options_.peer)),
      streams_(loop, [this] { ScheduleFlush(); }) {
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks, &Callbacks::OnBeginHeaders);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &Callbacks::OnHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Callbacks::OnFrameReceived);
  nghttp2_session_callbacks_set_on_frame_send_callback(callbacks, &Callbacks::OnFrameSent);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, &Callbacks::OnDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, &Callbacks::OnStreamClose);
  nghttp2_session_server_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  grpc_client::SubmitLocalSettings(session_, /*client=*/false, options_.stream_window_bytes,
                                   options_.connection_window_bytes);
}

ServerConnection::~ServerConnection() {
  pipe_.CloseSocket();
  nghttp2_session_del(session_);
}

void ServerConnection::Route(int32_t stream_id, Stream& stream) {
  stream.routed = true;
  const nghttp2_nv status_200 = Header(":status", "200");
  const nghttp2_nv grpc_type = Header("content-type", "application/grpc");
  if (stream.method != "POST" || !absl::StartsWith(stream.content_type, "application/grpc")) {
    // Not gRPC: HTTP's own refusal, as gRPC servers answer.
    const nghttp2_nv headers[] = {Header(":status", "415")};
    nghttp2_submit_response(session_, stream_id, headers, 1, nullptr);
    stream.status_submitted = true;
    ScheduleFlush();
    return;
  }
  absl::StatusOr<std::shared_ptr<StreamHandler>> handler =
      stream.bad_timeout ? absl::InvalidArgumentError("malformed grpc-timeout")
                         : router_(this, stream_id, stream.head);
  if (!handler.ok()) {
    const StatusHeaders status_headers(handler.status());
    std::vector<nghttp2_nv> headers = {status_200, grpc_type};
    status_headers.AppendTo(&headers);
    nghttp2_submit_response(session_, stream_id, headers.data(), headers.size(), nullptr);
    stream.status_submitted = true;
    ScheduleFlush();
    return;
  }
  stream.handler = std::move(*handler);
  nghttp2_data_provider body{};
  body.read_callback = &Callbacks::ReadBody;
  const nghttp2_nv headers[] = {status_200, grpc_type};
  nghttp2_submit_response(session_, stream_id, headers, 2, &body);
  if (stream.head.timeout.has_value()) {
    streams_.ArmDeadline(stream, stream_id, *stream.head.timeout, session_, weak_from_this());
  }
  ScheduleFlush();
}

void ServerConnection::ResumeSending(int32_t stream_id) {
  if (!closed_) streams_.ResumeSending(session_, stream_id);
}

void ServerConnection::Reset(int32_t stream_id) {
  if (!streams_.Release(stream_id) || closed_) return;
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
  ScheduleFlush();
}

void ServerConnection::GoAway() {
  if (closed_ || going_away_) return;
  going_away_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  ScheduleFlush();
}

void ServerConnection::Shutdown(const absl::Status& status) {
  if (closed_) return;
  GoAway();
  (void)pipe_.Flush(session_, [this] { return closed_; });
  Close(status);
}

void ServerConnection::FinishStream(int32_t stream_id, uint32_t error_code) {
  std::unique_ptr<Stream> stream = streams_.Remove(stream_id);
  if (stream == nullptr || stream->handler == nullptr) return;
  absl::Status status;
  if (!stream->status_submitted) {
    status = error_code == NGHTTP2_CANCEL || error_code == NGHTTP2_NO_ERROR
                 ? absl::CancelledError("the client cancelled the stream")
                 : absl::CancelledError(absl::StrCat("the client reset the stream (",
                                                     nghttp2_http2_strerror(error_code), ")"));
  }
  stream->handler->OnClose(status);
}

void ServerConnection::Close(const absl::Status& status) {
  if (closed_) return;
  closed_ = true;
  pipe_.CloseSocket();
  // The loop may still report this round's events to us: stay alive.
  loop_->RunAfterRound([self = shared_from_this()] {});
  streams_.CloseAll(status);
  if (options_.on_closed) options_.on_closed(this);
}

void ServerConnection::CloseIfDone() {
  if (closed_ || pipe_.write_blocked()) return;
  if (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0) {
    Close(absl::UnavailableError(absl::StrCat("the connection to ", options_.peer, " ended")));
  }
}

void ServerConnection::ScheduleFlush() {
  if (closed_ || pipe_.flush_scheduled()) return;
  pipe_.ScheduleFlush(weak_from_this(), [this] { Flush(); });
}

void ServerConnection::Flush() {
  if (closed_) return;
  auto keep_alive = shared_from_this();
  absl::Status flushed = pipe_.Flush(session_, [this] { return closed_; });
  if (closed_) return;
  if (!flushed.ok()) {
    Close(flushed);
    return;
  }
  CloseIfDone();
}

void ServerConnection::OnWritable() { Flush(); }

void ServerConnection::OnReadable() {
  if (closed_) return;
  auto keep_alive = shared_from_this();
  absl::Status read = pipe_.Read(session_, [this] { return closed_; });
  if (closed_) return;
  if (!read.ok()) {
    Close(read);
    return;
  }
  // Answers, acknowledgements and window updates the input asked for.
  ScheduleFlush();
}

}  // namespace audiosocket::grpc_server
