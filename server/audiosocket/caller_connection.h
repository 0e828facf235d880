#ifndef AUDIOSOCKET_BRIDGE_SERVER_AUDIOSOCKET_CALLER_CONNECTION_H_
#define AUDIOSOCKET_BRIDGE_SERVER_AUDIOSOCKET_CALLER_CONNECTION_H_

// One call's AudioSocket socket: reads and decodes what Asterisk sends,
// watches that it keeps sending whole messages, writes what the call sends
// back (buffered within a bound while Asterisk is behind), and closes, after
// a hang-up lingering until Asterisk closes its end.
//
// Threads: confined to the event loop that watches the socket. Ownership:
// owned by its call; the delegate (the call) outlives it. The delegate may
// close the connection from any callback; the connection stops touching
// the socket at once.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lib/event/dispatcher.h"
#include "lib/wire/wire.h"
#include "server/config/config.h"
#include "server/ops/counters.h"

namespace audiosocket {

class CallerConnection final : public event::FdHandler {
 public:
  class Delegate {
   public:
    virtual ~Delegate() = default;
    virtual void OnCallerMessage(const wire::Message& message) = 0;
    // The bytes were not AudioSocket (including a connection closed in the
    // middle of a message).
    virtual void OnCallerProtocolError(const absl::Status& status) = 0;
    // Asterisk closed or reset the connection.
    virtual void OnCallerClosed(std::string detail) = 0;
    // Asterisk stopped sending whole messages (see StartIdleWatch).
    virtual void OnCallerIdle(std::string detail) = 0;
    // A write failed (`stalled` false) or Asterisk has not read for longer
    // than the write-stall timeout (`stalled` true).
    virtual void OnCallerWriteFailed(bool stalled, std::string detail) = 0;
    // The socket is closed; nothing of the connection runs after this
    // round of the loop.
    virtual void OnConnectionClosed() = 0;
  };

  struct Options {
    wire::DecoderOptions decoder;
    // No complete message for this long ends the call (zero: never).
    absl::Duration idle_timeout = absl::ZeroDuration();
    // Asterisk not reading for this long while audio waits ends the call.
    absl::Duration write_stall_timeout = absl::Seconds(2);
  };
  // The options for a connection accepted on `listener`.
  static Options OptionsFor(const ListenerConfig& listener, const BridgeConfig& config);

  // Takes ownership of `fd`. `counters` outlives the connection.
  CallerConnection(event::Dispatcher* loop, int fd, Options options, BridgeCounters* counters,
                   Delegate* delegate);
  ~CallerConnection() override;

  // Starts reading. Timers run only while `owner` (the object that owns
  // this connection) is alive.
  absl::Status Start(std::weak_ptr<void> owner);
  // From now on: a complete message at least every idle_timeout, and no
  // message left incomplete for long (Asterisk writes each in one write).
  void StartIdleWatch();
  bool closed() const { return state_ == State::kClosed; }

  // Writes an encoded message whole. A droppable message (an audio frame)
  // is dropped when more than `max_unsent_bytes` wait for Asterisk already.
  void Write(const uint8_t* data, size_t size, bool droppable);
  // Encodes and writes a message that must not be dropped. False when the
  // connection is closed (or closes writing it).
  bool WriteMessage(const wire::Message& message);
  void set_max_unsent_bytes(size_t bytes) { max_unsent_bytes_ = bytes; }

  // Closes the socket. With `send_hangup`, sends 0x00 first (when nothing
  // is waiting to be written) and then reads and drops what Asterisk still
  // sends until it closes its end, for at most kLingerAfterHangup.
  void Close(bool send_hangup);

  uint64_t bytes_read() const { return bytes_read_; }
  uint64_t bytes_written() const { return bytes_written_; }
  // Bytes of an incomplete message at the end of what was read.
  size_t buffered() const { return decoder_.buffered(); }
  // Bytes of memory the decoder holds: none while Asterisk's messages
  // arrive whole, since reads share one buffer per thread.
  size_t decoder_capacity() const { return decoder_.capacity(); }

  // event::FdHandler.
  void OnReadable() override;
  void OnWritable() override;

 private:
  enum class State { kOpen, kLingering, kClosed };

  void ArmIdleTimer();
  void CheckIdle();
  void WatchPartialMessage();
  void CheckPartialMessage();
  void FlushPending();
  void DrainLingering();
  void FinishClose();

  event::Dispatcher* const loop_;
  int fd_;
  const Options options_;
  BridgeCounters* const counters_;
  Delegate* const delegate_;
  std::weak_ptr<void> owner_;
  State state_ = State::kOpen;
  wire::Decoder decoder_;
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;

  // Inbound idleness.
  bool idle_watch_ = false;
  event::MonoTime last_message_at_{};  // the last complete message
  // The incomplete message at the end of what was read: where it starts
  // (decoder offset) and since when it has been waiting for its rest.
  uint64_t partial_offset_ = 0;
  event::MonoTime partial_since_{};
  event::Dispatcher::TimerId idle_timer_ = 0;
  event::Dispatcher::TimerId partial_timer_ = 0;

  // Outbound.
  size_t max_unsent_bytes_ = 0;
  std::vector<uint8_t> pending_;  // bytes Asterisk has not taken yet
  size_t pending_offset_ = 0;
  bool watching_writable_ = false;
  event::MonoTime stalled_since_{};
  std::vector<uint8_t> message_buffer_;  // WriteMessage's encoding

  event::Dispatcher::TimerId linger_timer_ = 0;
};

// How long a connection that sent its hang-up keeps reading (and dropping)
// what Asterisk still sends before closing the socket itself.
inline constexpr std::chrono::milliseconds kLingerAfterHangup{2000};

// Asterisk writes each message with one write (and hangs up itself when a
// payload comes more than a few ms after its header): a message still
// incomplete after this long is not Asterisk being slow.
inline constexpr absl::Duration kPartialMessageTimeout = absl::Seconds(2);

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_AUDIOSOCKET_CALLER_CONNECTION_H_
