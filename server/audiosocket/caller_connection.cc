#include "server/audiosocket/caller_connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"

namespace audiosocket {
namespace {

std::chrono::nanoseconds ToNanos(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

// Bytes one read(2) takes at most.
constexpr size_t kReadChunk = 16384;

// One read buffer per event-loop thread, shared by the thread's calls: what
// a read brings is decoded in place (wire::Decoder::DecodeFrom) and only a
// message split across reads is copied into the call's decoder. A call then
// holds no read buffer of its own (16 KiB each, most of a call's memory,
// when every decoder read into its own). OnReadable is never re-entered on a
// thread (the delegate does not run the loop), so one buffer suffices.
absl::Span<uint8_t> ThreadReadBuffer() {
  thread_local const std::unique_ptr<uint8_t[]> buffer(new uint8_t[kReadChunk]);
  return absl::MakeSpan(buffer.get(), kReadChunk);
}

}  // namespace

CallerConnection::Options CallerConnection::OptionsFor(const ListenerConfig& listener,
                                                       const BridgeConfig& config) {
  Options options;
  options.decoder = wire::DecoderOptions{
      .dialect = listener.dialect,
      .max_payload = config.max_payload,
      .unknown_kinds = wire::UnknownKindPolicy::kReject,
      // G.711 listeners carry one byte a sample.
      .audio_bytes_per_sample = listener.encoding == bridge::v1::AUDIO_ENCODING_LINEAR16 ? 2 : 1,
  };
  options.idle_timeout = config.caller_idle_timeout;
  options.write_stall_timeout = config.write_stall_timeout;
  return options;
}

CallerConnection::CallerConnection(event::Dispatcher* loop, int fd, Options options,
                                   BridgeCounters* counters, Delegate* delegate)
    : loop_(loop),
      fd_(fd),
      options_(std::move(options)),
      counters_(counters),
      delegate_(delegate),
      decoder_(options_.decoder) {}

CallerConnection::~CallerConnection() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status CallerConnection::Start(std::weak_ptr<void> owner) {
  owner_ = std::move(owner);
  return loop_->Watch(fd_, this, false);
}

// ------------------------------------------------------------------ input

void CallerConnection::OnReadable() {
  if (state_ == State::kLingering) {
    DrainLingering();
    return;
  }
  // Bounded work per wake-up keeps one busy caller from starving the rest.
  for (int round = 0; round < 8 && state_ == State::kOpen; ++round) {
    absl::Span<uint8_t> space = ThreadReadBuffer();
    const ssize_t n = ::read(fd_, space.data(), space.size());
    if (n > 0) {
      bytes_read_ += static_cast<uint64_t>(n);
      const uint64_t consumed_before = decoder_.consumed();
      const absl::Status decoded = decoder_.DecodeFrom(space.first(static_cast<size_t>(n)),
                                                       [this](const wire::Message& message) {
                                                         delegate_->OnCallerMessage(message);
                                                         return state_ == State::kOpen;
                                                       });
      if (!decoded.ok()) {
        delegate_->OnCallerProtocolError(decoded);
        return;
      }
      if (state_ != State::kOpen) return;
      // Activity is a complete message, not a byte: a caller trickling
      // bytes does not keep its call.
      if (decoder_.consumed() != consumed_before) last_message_at_ = loop_->Now();
      WatchPartialMessage();
      if (static_cast<size_t>(n) < space.size()) return;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    // End of stream in the middle of a message: the bytes were not
    // AudioSocket (a truncated header or payload), not a hang-up.
    if (n == 0 && decoder_.buffered() > 0) {
      delegate_->OnCallerProtocolError(absl::InvalidArgumentError(
          absl::StrCat("truncated message: the connection closed ", decoder_.buffered(),
                       " byte(s) into a message at offset ", decoder_.consumed())));
      return;
    }
    // End of stream or reset: the caller hung up. Real Asterisk closes the
    // socket rather than sending 0x00.
    delegate_->OnCallerClosed(n == 0 ? std::string("Asterisk closed the connection")
                                     : absl::StrCat("read: ", std::strerror(errno)));
    return;
  }
}

void CallerConnection::StartIdleWatch() {
  idle_watch_ = true;
  last_message_at_ = loop_->Now();
  ArmIdleTimer();
}

void CallerConnection::ArmIdleTimer() {
  if (options_.idle_timeout <= absl::ZeroDuration()) return;
  // One timer per timeout period, not one per message: it re-arms from the
  // last message when it fires early.
  idle_timer_ =
      loop_->RunAt(last_message_at_ + ToNanos(options_.idle_timeout), [this, owner = owner_] {
        if (owner.lock() == nullptr) return;
        idle_timer_ = 0;
        CheckIdle();
      });
}

void CallerConnection::CheckIdle() {
  if (state_ != State::kOpen) return;
  if (loop_->Now() - last_message_at_ < ToNanos(options_.idle_timeout)) {
    ArmIdleTimer();
    return;
  }
  delegate_->OnCallerIdle(
      absl::StrCat("no complete AudioSocket message from Asterisk for ",
                   absl::FormatDuration(options_.idle_timeout),
                   decoder_.buffered() > 0
                       ? absl::StrCat(" (", decoder_.buffered(), " byte(s) of an incomplete one)")
                       : std::string(),
                   "; --caller_idle_timeout"));
}

void CallerConnection::WatchPartialMessage() {
  if (!idle_watch_ || decoder_.buffered() == 0) return;
  if (partial_since_ == event::MonoTime{} || partial_offset_ != decoder_.consumed()) {
    partial_offset_ = decoder_.consumed();
    partial_since_ = loop_->Now();
  }
  if (partial_timer_ != 0) return;
  partial_timer_ =
      loop_->RunAt(partial_since_ + ToNanos(kPartialMessageTimeout), [this, owner = owner_] {
        if (owner.lock() == nullptr) return;
        partial_timer_ = 0;
        CheckPartialMessage();
      });
}

void CallerConnection::CheckPartialMessage() {
  if (state_ != State::kOpen || decoder_.buffered() == 0) return;
  if (partial_offset_ != decoder_.consumed() ||
      loop_->Now() - partial_since_ < ToNanos(kPartialMessageTimeout)) {
    WatchPartialMessage();  // another message is incomplete now: its own time
    return;
  }
  delegate_->OnCallerIdle(absl::StrCat(
      "a message from Asterisk at offset ", partial_offset_, " is still incomplete after ",
      absl::FormatDuration(kPartialMessageTimeout), " (", decoder_.buffered(),
      " byte(s) arrived); Asterisk sends each message in one write"));
}

// ----------------------------------------------------------------- output

bool CallerConnection::WriteMessage(const wire::Message& message) {
  if (state_ != State::kOpen) return false;
  message_buffer_.clear();
  if (absl::Status encoded =
          wire::Encode(message, options_.decoder.dialect, wire::Peer::kAsterisk, &message_buffer_);
      !encoded.ok()) {
    return false;
  }
  Write(message_buffer_.data(), message_buffer_.size(), /*droppable=*/false);
  return state_ == State::kOpen;
}

void CallerConnection::Write(const uint8_t* data, size_t size, bool droppable) {
  if (state_ != State::kOpen) return;
  const size_t unsent = pending_.size() - pending_offset_;
  if (unsent > 0) {
    // Asterisk is behind. Audio frames beyond the bound are dropped whole
    // (never a partial message); a stall past the timeout ends the call.
    if (droppable && unsent >= max_unsent_bytes_) {
      counters_->outbound_dropped_frames++;
      if (loop_->Now() - stalled_since_ > ToNanos(options_.write_stall_timeout)) {
        delegate_->OnCallerWriteFailed(
            /*stalled=*/true, absl::StrCat("Asterisk has not read for ",
                                           absl::FormatDuration(options_.write_stall_timeout)));
      }
      return;
    }
    pending_.insert(pending_.end(), data, data + size);
    // Counted as sent once queued whole: FlushPending writes bytes, not frames.
    if (droppable) counters_->frames_out++;
    return;
  }
  // One write per message, header and payload together.
  ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      delegate_->OnCallerWriteFailed(/*stalled=*/false,
                                     absl::StrCat("write: ", std::strerror(errno)));
      return;
    }
    n = 0;
  }
  counters_->bytes_out += static_cast<uint64_t>(n);
  bytes_written_ += static_cast<uint64_t>(n);
  if (droppable) counters_->frames_out++;
  if (static_cast<size_t>(n) < size) {
    pending_.assign(data + n, data + size);
    pending_offset_ = 0;
    stalled_since_ = loop_->Now();
    if (!watching_writable_) {
      watching_writable_ = true;
      (void)loop_->SetWritable(fd_, this, true);
    }
  }
}

void CallerConnection::FlushPending() {
  while (pending_offset_ < pending_.size()) {
    const ssize_t n = ::send(fd_, pending_.data() + pending_offset_,
                             pending_.size() - pending_offset_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      delegate_->OnCallerWriteFailed(/*stalled=*/false,
                                     absl::StrCat("write: ", std::strerror(errno)));
      return;
    }
    pending_offset_ += static_cast<size_t>(n);
    counters_->bytes_out += static_cast<uint64_t>(n);
    bytes_written_ += static_cast<uint64_t>(n);
    stalled_since_ = loop_->Now();
  }
  pending_.clear();
  pending_offset_ = 0;
  if (watching_writable_) {
    watching_writable_ = false;
    (void)loop_->SetWritable(fd_, this, false);
  }
}

void CallerConnection::OnWritable() {
  if (state_ != State::kOpen) return;
  FlushPending();
}

// ---------------------------------------------------------------- closing

void CallerConnection::Close(bool send_hangup) {
  if (state_ != State::kOpen) return;
  bool hangup_sent = false;
  if (send_hangup && pending_offset_ == pending_.size()) {
    const uint8_t hangup[3] = {0x00, 0x00, 0x00};
    hangup_sent = ::send(fd_, hangup, sizeof(hangup), MSG_NOSIGNAL | MSG_DONTWAIT) == 3;
  }
  state_ = State::kLingering;
  loop_->CancelTimer(idle_timer_);
  loop_->CancelTimer(partial_timer_);
  idle_timer_ = partial_timer_ = 0;
  if (hangup_sent) {
    // Asterisk's channel driver writes the bridged audio from another
    // thread than the one reading our hang-up: closing now would make its
    // next write fail ("Broken pipe", an error in its log). Half-close and
    // read until Asterisk closes its end, for a bounded time.
    ::shutdown(fd_, SHUT_WR);
    (void)loop_->SetWritable(fd_, this, false);
    linger_timer_ = loop_->RunAt(loop_->Now() + kLingerAfterHangup, [this, owner = owner_] {
      if (owner.lock() == nullptr) return;
      linger_timer_ = 0;
      FinishClose();
    });
    return;
  }
  FinishClose();
}

void CallerConnection::DrainLingering() {
  uint8_t discard[4096];
  while (true) {
    const ssize_t n = ::read(fd_, discard, sizeof(discard));
    if (n > 0) continue;
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    FinishClose();  // Asterisk closed its end (or the socket failed)
    return;
  }
}

void CallerConnection::FinishClose() {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  loop_->CancelTimer(linger_timer_);
  linger_timer_ = 0;
  loop_->Unwatch(fd_);
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  fd_ = -1;
  delegate_->OnConnectionClosed();
}

}  // namespace audiosocket
