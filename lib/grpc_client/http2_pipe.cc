#include "lib/grpc_client/http2_pipe.h"

#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/str_cat.h"

namespace audiosocket::grpc_client {

nghttp2_nv Header(absl::string_view name, absl::string_view value) {
  return nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
                    const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())),
                    name.size(), value.size(), NGHTTP2_NV_FLAG_NONE};
}

namespace {

// nghttp2's frames are taken into out_ until this much waits to be written:
// past it the socket is full, and holding back keeps flow control (and the
// streams' own queues, which drop stale audio) in charge of what waits.
constexpr size_t kMaxPendingOut = Http2Pipe::kFlushBatchBytes;
constexpr size_t kReadChunk = Http2Pipe::kReadChunkBytes;
constexpr int kMaxReadsPerCall = static_cast<int>(Http2Pipe::kMaxReadBytes / kReadChunk);

}  // namespace

void SubmitLocalSettings(nghttp2_session* session, bool client, int32_t stream_window_bytes,
                         int32_t connection_window_bytes) {
  nghttp2_settings_entry settings[3];
  size_t count = 0;
  if (client) settings[count++] = {NGHTTP2_SETTINGS_ENABLE_PUSH, 0};
  settings[count++] = {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE,
                       static_cast<uint32_t>(stream_window_bytes)};
  // Every stream is one call of equal weight: without RFC 7540's priority
  // tree nghttp2 schedules DATA from a flat queue and keeps no closed
  // streams, which is less work per frame (peers ignore the setting).
  settings[count++] = {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1};
  nghttp2_submit_settings(session, NGHTTP2_FLAG_NONE, settings, count);
  nghttp2_session_set_local_window_size(session, NGHTTP2_FLAG_NONE, 0, connection_window_bytes);
}

Http2Pipe::Http2Pipe(event::Dispatcher* loop, std::string peer)
    : loop_(loop), peer_(std::move(peer)) {}

Http2Pipe::~Http2Pipe() { CloseSocket(); }

absl::Status Http2Pipe::Open(int fd, event::FdHandler* handler, bool writable) {
  if (absl::Status watched = loop_->Watch(fd, handler, writable); !watched.ok()) {
    ::close(fd);
    return watched;
  }
  fd_ = fd;
  handler_ = handler;
  watching_writable_ = writable;
  return absl::OkStatus();
}

void Http2Pipe::CloseSocket() {
  if (fd_ < 0) return;
  loop_->Unwatch(fd_);
  ::close(fd_);
  fd_ = -1;
  watching_writable_ = false;
}

absl::Status Http2Pipe::Flush(nghttp2_session* session, absl::FunctionRef<bool()> stopped) {
  bool blocked = false;
  bool wrote = false;
  while (true) {
    while (out_.size() - out_offset_ < kMaxPendingOut) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session, &data);
      if (n < 0) {
        return absl::InternalError(
            absl::StrCat("HTTP/2 error: ", nghttp2_strerror(static_cast<int>(n))));
      }
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (stopped() || fd_ < 0) return absl::OkStatus();  // a handler closed the connection
    if (out_offset_ == out_.size()) break;
    if (wrote && loop_->TimerDue()) {
      // The rest waits for a tick that came due (kFlushBatchBytes):
      // epoll reports the socket writable next round, after the timers,
      // and OnWritable flushes on.
      blocked = true;
      break;
    }
    const ssize_t written =
        ::send(fd_, out_.data() + out_offset_, out_.size() - out_offset_, MSG_NOSIGNAL);
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        blocked = true;
        break;
      }
      return absl::UnavailableError(
          absl::StrCat("writing to ", peer_, " failed: ", std::strerror(errno)));
    }
    ++writes_;
    wrote = true;
    out_offset_ += static_cast<size_t>(written);
    if (out_offset_ == out_.size()) {
      out_.clear();
      out_offset_ = 0;
    }
  }
  if (blocked != watching_writable_) {
    watching_writable_ = blocked;
    (void)loop_->SetWritable(fd_, handler_, blocked);
  }
  return absl::OkStatus();
}

absl::Status Http2Pipe::Read(nghttp2_session* session, absl::FunctionRef<bool()> stopped) {
  if (read_buffer_ == nullptr) read_buffer_ = std::make_unique<uint8_t[]>(kReadChunk);
  uint8_t* const buffer = read_buffer_.get();
  for (int i = 0; i < kMaxReadsPerCall; ++i) {
    const ssize_t n = ::recv(fd_, buffer, kReadChunk, 0);
    if (n == 0) return absl::UnavailableError(absl::StrCat(peer_, " closed the connection"));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return absl::UnavailableError(
          absl::StrCat("reading from ", peer_, " failed: ", std::strerror(errno)));
    }
    const ssize_t used = nghttp2_session_mem_recv(session, buffer, static_cast<size_t>(n));
    if (used < 0) {
      return absl::InternalError(
          absl::StrCat(peer_, " broke HTTP/2: ", nghttp2_strerror(static_cast<int>(used))));
    }
    if (stopped()) return absl::OkStatus();
    if (static_cast<size_t>(n) < kReadChunk) break;
    // The rest waits for a tick that came due (kReadChunkBytes); epoll
    // reports it next round, after the timers.
    if (loop_->TimerDue()) break;
  }
  return absl::OkStatus();
}

void Http2Pipe::ScheduleFlush(std::weak_ptr<void> owner, std::function<void()> flush) {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  loop_->RunAfterRound([this, owner = std::move(owner), flush = std::move(flush)] {
    // The pipe is the owner's member: alive while the owner is.
    if (auto alive = owner.lock()) {
      flush_scheduled_ = false;
      flush();
    }
  });
}

}  // namespace audiosocket::grpc_client
