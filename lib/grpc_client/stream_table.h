#ifndef AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_STREAM_TABLE_H_
#define AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_STREAM_TABLE_H_

// The streams of one nghttp2 session on an event loop, by id, and the part
// of their bookkeeping that does not depend on which side opened them: a
// handler that hears the stream's end once, a deadline that resets it, and
// a body nghttp2 pulls, paused while the handler has nothing to send.
// Shared by the client's connections (connection.h) and the server's
// (lib/grpc_server), which keep their own fields in `Stream` and decide
// with which status a stream that nghttp2 closed ends.
//
// `Stream` has `handler` (a std::shared_ptr to a handler with
// OnClose(const absl::Status&)), null once the stream ended for it;
// `deadline_timer` (event::Dispatcher::TimerId, 0 for none); and
// `sending_paused` (bool).
//
// Threads: not thread-safe; a member of one connection, used on its loop.
// Ownership: owns the entries; a deadline's timer holds the connection
// only weakly and does nothing once it is gone.

#include <nghttp2/nghttp2.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lib/event/dispatcher.h"

namespace audiosocket::grpc_client {

template <typename Stream>
class StreamTable {
 public:
  // `schedule_flush` asks the connection to send, after the loop's round,
  // what the table's work queued in the session.
  StreamTable(event::Dispatcher* loop, std::function<void()> schedule_flush)
      : loop_(loop), schedule_flush_(std::move(schedule_flush)) {}
  StreamTable(const StreamTable&) = delete;
  StreamTable& operator=(const StreamTable&) = delete;

  Stream* Find(int32_t stream_id) {
    auto it = streams_.find(stream_id);
    return it == streams_.end() ? nullptr : it->second.get();
  }
  // Keeps the entry already there, if any.
  void Add(int32_t stream_id, std::unique_ptr<Stream> stream) {
    streams_.emplace(stream_id, std::move(stream));
  }
  size_t size() const { return streams_.size(); }
  bool empty() const { return streams_.empty(); }

  // Once `timeout` has passed, unless the stream ended first, resets it
  // (RST_STREAM CANCEL) and fails it DEADLINE_EXCEEDED. `owner` is the
  // connection that holds this table and `session`.
  void ArmDeadline(Stream& stream, int32_t stream_id, absl::Duration timeout,
                   nghttp2_session* session, std::weak_ptr<const void> owner) {
    stream.deadline_timer = loop_->RunAt(
        loop_->Now() + absl::ToChronoNanoseconds(timeout),
        [this, owner = std::move(owner), session, stream_id, timeout] {
          // Held through the handler's OnClose, which may drop the last
          // other reference.
          const std::shared_ptr<const void> alive = owner.lock();
          if (alive == nullptr) return;
          Stream* s = Find(stream_id);
          if (s == nullptr) return;
          s->deadline_timer = 0;
          nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
          Fail(stream_id,
               absl::DeadlineExceededError(absl::StrCat("the stream's deadline of ",
                                                        absl::FormatDuration(timeout), " passed")));
          schedule_flush_();
        });
  }

  // The stream's handler has body to send again.
  void ResumeSending(nghttp2_session* session, int32_t stream_id) {
    Stream* stream = Find(stream_id);
    if (stream == nullptr || !stream->sending_paused) return;
    stream->sending_paused = false;
    nghttp2_session_resume_data(session, stream_id);
    schedule_flush_();
  }

  // Ends the stream for its handler, which hears nothing more; the entry
  // stays until nghttp2 closes the stream. False when it had ended already
  // (or is unknown): then there is nothing to reset.
  bool Release(int32_t stream_id) {
    Stream* stream = Find(stream_id);
    if (stream == nullptr || stream->handler == nullptr) return false;
    stream->handler = nullptr;
    CancelDeadline(*stream);
    return true;
  }

  // Ends the stream for its handler now, with `status`; the entry stays
  // until nghttp2 closes the stream.
  void Fail(int32_t stream_id, const absl::Status& status) {
    Stream* stream = Find(stream_id);
    if (stream == nullptr || stream->handler == nullptr) return;
    // Taken first: OnClose may call back and must find the stream ended.
    auto handler = std::move(stream->handler);
    CancelDeadline(*stream);
    handler->OnClose(status);
  }

  // Takes out the entry of a stream nghttp2 closed, its deadline cancelled;
  // null when there is none.
  std::unique_ptr<Stream> Remove(int32_t stream_id) {
    auto it = streams_.find(stream_id);
    if (it == streams_.end()) return nullptr;
    std::unique_ptr<Stream> stream = std::move(it->second);
    streams_.erase(it);
    CancelDeadline(*stream);
    return stream;
  }

  // Ends every stream with `status` (the connection closed). The table is
  // empty before any handler hears it.
  void CloseAll(const absl::Status& status) {
    auto streams = std::move(streams_);
    streams_.clear();
    for (auto& [id, stream] : streams) {
      CancelDeadline(*stream);
      if (stream->handler != nullptr) stream->handler->OnClose(status);
    }
  }

  // The body of nghttp2's data source read callback for a stream:
  // `read(Stream&, bool* end) -> size_t` has the handler copy its body
  // into nghttp2's buffer and, at `*end`, sets the callback's flags.
  template <typename Read>
  ssize_t ReadBody(int32_t stream_id, Read read) {
    Stream* stream = Find(stream_id);
    if (stream == nullptr || stream->handler == nullptr) {
      return NGHTTP2_ERR_DEFERRED;  // being reset: nothing more goes out
    }
    bool end = false;
    const size_t n = read(*stream, &end);
    if (end || n > 0) return static_cast<ssize_t>(n);
    // Asked again only after ResumeSending, not at once in a busy loop.
    stream->sending_paused = true;
    return NGHTTP2_ERR_DEFERRED;
  }

 private:
  void CancelDeadline(Stream& stream) {
    loop_->CancelTimer(stream.deadline_timer);
    stream.deadline_timer = 0;
  }

  event::Dispatcher* const loop_;
  const std::function<void()> schedule_flush_;
  absl::flat_hash_map<int32_t, std::unique_ptr<Stream>> streams_;
};

}  // namespace audiosocket::grpc_client

#endif  // AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_STREAM_TABLE_H_
