#ifndef AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_H_

// One call, from the AudioSocket connection's UUID to its typed end: the
// state machine that ties together the caller's connection
// (audiosocket/), the media pipelines (media/), playout (playout/) and the
// backend (backend/), whichever mode found it. It ends exactly once, with a
// reason, and every accepted connection ends in one counted outcome.
//
// Threads: a Call is confined to its event loop. The LinkObserver and
// RegisteredCall methods and Shutdown are the only ones called from other
// threads; they post to the loop. Ownership: the call keeps itself alive
// (self_) from Start() until its socket is closed; links, the registry and
// the bridge hold weak pointers and find an ended call inert.

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "audiosocket/bridge/v1/bridge.pb.h"
#include "google/protobuf/arena.h"
#include "lib/event/dispatcher.h"
#include "lib/wire/wire.h"
#include "server/audiosocket/caller_connection.h"
#include "server/backend/backend_connector.h"
#include "server/backend/backend_link.h"
#include "server/backend/command_budget.h"
#include "server/backend/play_command_decoder.h"
#include "server/call/call_commands.h"
#include "server/call/call_events.h"
#include "server/call/call_registry.h"
#include "server/config/config.h"
#include "server/media/backend_feed.h"
#include "server/media/caller_audio.h"
#include "server/ops/counters.h"
#include "server/ops/log.h"
#include "server/ops/metrics.h"
#include "server/playout/fallback_audio.h"
#include "server/playout/playout.h"

namespace audiosocket {

// What all calls share. Outlives every call.
struct CallServices {
  const BridgeConfig* config = nullptr;
  CallRegistry* registry = nullptr;
  BridgeCounters* counters = nullptr;
  Metrics* metrics = nullptr;  // optional
  // The calls' loop's playout ticks (each loop's copy has its own).
  SlotTicker* ticker = nullptr;
  // What the caller hears when the backend side fails; empty: nothing.
  const FallbackAudio* fallback_audio = nullptr;
  // Finds each call its backend (push or pull: backend/).
  std::function<std::shared_ptr<BackendConnector>(BackendConnector::Context)> connect_backend;
};

// Bytes of backend commands a call may have waiting for its loop (four of
// gRPC's largest messages). A backend that sends faster than its call can
// act past this has its call ended (BACKEND_LOST).
inline constexpr uint64_t kMaxPendingCommandBytes = 16 << 20;

// Backend commands (and other reports of its link) a call acts on per
// round of its loop. The rest of a flood (a backend's stream window holds
// some 20,000 marks) waits for the next round, after the timers and
// sockets of the loop's other calls.
inline constexpr size_t kReportsPerRound = 256;

// Bytes a call's command arena and its copies of play commands may hold
// together. They are emptied only once every waiting command is handled; a
// backend that keeps commands waiting round after round would keep them
// from ever being emptied, so past this its commands are parsed on the heap
// instead, each freed once handled.
inline constexpr uint64_t kMaxCommandArenaBytes = 256 << 10;

class Call final : public LinkObserver,
                   public RegisteredCall,
                   public BackendConnector::Host,
                   public CallCommands::Host,
                   public CallerConnection::Delegate,
                   public Playout::Delegate,
                   public std::enable_shared_from_this<Call> {
 public:
  Call(event::Dispatcher* loop, int fd, const ListenerConfig* listener, std::string peer_address,
       const CallServices* services);
  ~Call() override;

  // Starts reading and the UUID timer. On the loop thread.
  void Start();
  // Ends the call with SHUTDOWN (thread-safe).
  void Shutdown();

  // LinkObserver (any thread).
  void OnBackendCommand(uint64_t link_id, BackendMessage message) override;
  bool OnBackendCommandBytes(uint64_t link_id, BackendMessageKind kind,
                             absl::string_view bytes) override;
  void OnBackendClosed(uint64_t link_id, grpc::Status status) override;
  // RegisteredCall (any thread).
  void RequestHangup() override;

  // Reads what the caller sent now rather than when the loop next polls
  // (on the loop thread): lets the fuzz harness run inputs deterministically.
  void ReadCallerNowForTesting() { connection_.OnReadable(); }
  // What the command arena holds now, its own first block included.
  uint64_t CommandArenaBytesForTesting() const { return command_arena_.SpaceAllocated(); }
  // What the copies of play commands waiting to be handled hold now.
  size_t PlayBytesCapacityForTesting() const { return play_bytes_.capacity(); }

 private:
  enum class State {
    kAwaitingUuid,    // connected, nothing valid received yet
    kAwaitingAudio,   // UUID received; learning the rate from the first audio
    kWaitingBackend,  // the connector is looking for a backend
    kConnected,       // a backend has the call
    kFallback,        // ended for the backend; playing the fallback audio
    kClosed,          // socket closed (or closing)
  };

  // CallerConnection::Delegate.
  void OnCallerMessage(const wire::Message& message) override;
  void OnCallerProtocolError(const absl::Status& status) override;
  void OnCallerClosed(std::string detail) override;
  void OnCallerIdle(std::string detail) override;
  void OnCallerWriteFailed(bool stalled, std::string detail) override;
  void OnConnectionClosed() override;

  // Playout::Delegate.
  void OnPlayoutFrame(absl::Span<const uint8_t> message) override;
  void OnPlayoutNotices(const std::vector<PlayoutNotice>& notices, bool before_frame) override;

  // BackendConnector::Host.
  void UseLink(std::shared_ptr<BackendLink> link, uint64_t link_id) override;
  bridge::v1::CallEvent StartedEvent() const override;
  int call_rate_hz() const override { return call_rate_hz_; }
  absl::Status ApplyMedia(const bridge::v1::MediaOptions& media, int announced_rate_hz) override;
  void OnBackendConnected(int attempts, bool announce) override;
  void EndCall(bridge::v1::CallEndReason reason, std::string detail) override {
    End(reason, std::move(detail));
  }

  // CallCommands::Host (Reply is BackendConnector::Host's too).
  void Reply(const std::string& command_id, bridge::v1::CommandKind kind,
             bridge::v1::ResultCode code, std::string message, uint32_t backend_rate_hz) override;
  void SendToBackend(bridge::v1::CallEvent event) override;
  bool WriteToCaller(const wire::Message& message) override;
  void HangupFromBackend(bool after_playout) override;

  CallFacts Facts() const;
  void HandleUuid(const wire::CallUuid& uuid);
  void HandleAudio(const wire::Audio& audio);
  // The call's real rate, from an audio message's kind. Before any audio
  // has been carried the rate may still change (the listener's default was
  // only a guess); after, a change is a protocol error.
  absl::Status AdoptRate(int sample_rate_hz);
  void ConnectBackend();
  void HandleMessage(uint64_t link_id, BackendMessageRef message);
  void HandleCommandOverflow(uint64_t link_id);
  // What a link reported (a command, its stream's close, or a command past
  // the budget), kept in order and acted on after the loop's round: a link
  // on this loop reports from inside its reading, where the call must not
  // end it. One queue and one task per round, not a closure per message:
  // at every frame of every call it counts. At most kReportsPerRound per
  // round (see there). A command is a BackendMessage (OnBackendCommand), a
  // reference into command_arena_, or a play command's bytes copied into
  // play_bytes_ (both OnBackendCommandBytes).
  struct CommandOverflow {};
  struct QueuedPlay {
    size_t offset;  // of the command's bytes in play_bytes_
    size_t size;
    PlayCommandFields fields;
  };
  struct LinkReport {
    uint64_t link_id;
    uint64_t bytes;  // held in command_budget_ until handled
    std::variant<BackendMessage, BackendMessageRef, QueuedPlay, grpc::Status, CommandOverflow> what;
  };
  void HandlePlay(uint64_t link_id, const QueuedPlay& play);
  // An in-call command that came before the call was connected is refused
  // (HandleMessage, HandlePlay): true when it was. A view: the id is copied
  // only for a refusal, not for every play of a connected call.
  bool RefusedBeforeConnected(absl::string_view command_id, bridge::v1::CommandKind kind);
  // From any thread: queues `report` on the loop.
  void Report(LinkReport report);
  void QueueLinkReport(LinkReport report);
  void HandleLinkReports();
  void HandleBackendClosed(uint64_t link_id, const grpc::Status& status);
  void ProtocolError(const absl::Status& status);

  // Ending.
  void End(bridge::v1::CallEndReason reason, std::string detail,
           const wire::Error* asterisk_error = nullptr);
  // Tells the backend (CallEndNotifier): leftovers, then `ended`.
  void FinishForBackend(bridge::v1::CallEvent ended, State previous,
                        PlayoutQueue::Leftovers leftovers);
  void CloseSocket(bool send_hangup);
  // Closes a connection that never became a call: counts it in `rejected`
  // (one of BridgeCounters' connections_rejected_*) and logs
  // connection_closed, so every accepted connection has one counted outcome.
  void CloseBeforeUuid(std::atomic<uint64_t>& rejected, absl::string_view reason,
                       absl::string_view detail, log::Level level, bool send_hangup);

  event::Dispatcher* const loop_;
  const ListenerConfig* const listener_;
  const std::string peer_address_;
  const CallServices* const services_;
  const BridgeConfig& config_;
  std::shared_ptr<Call> self_;

  State state_ = State::kAwaitingUuid;
  bool ended_ = false;  // End() ran: CallEnded was sent
  std::string call_id_;
  absl::Time start_time_;
  event::MonoTime start_mono_{};
  bool registered_ = false;

  // The rate of Asterisk's audio: the listener's default until the first
  // audio message sets it.
  int call_rate_hz_;
  bool rate_known_ = false;
  // The rate the backend exchanges audio at, fixed at accept / claim.
  int backend_rate_hz_ = 0;
  uint64_t inbound_offset_ = 0;  // samples at the call rate
  uint64_t sequence_ = 0;

  CallerConnection connection_;
  CallerAudio caller_audio_;
  BackendFeed feed_;
  std::vector<bridge::v1::CallEvent> detected_;  // scratch: in-band DTMF found
  std::optional<Playout> playout_;
  CallCommands commands_;

  std::shared_ptr<BackendConnector> connector_;
  std::shared_ptr<BackendLink> link_;
  uint64_t link_id_ = 0;
  // Commands queued or posted to the loop and not yet handled (reserved in
  // OnBackendCommand, on any thread); past the bound the call ends.
  CommandBudget command_budget_{kMaxPendingCommandBytes};
  std::atomic<bool> command_overflow_{false};
  // Loop thread only: see LinkReport. Handled from link_reports_next_ on;
  // cleared when all are, so its capacity stays (up to a bound: a flood's
  // is freed).
  std::vector<LinkReport> link_reports_;
  // Where OnBackendCommandBytes parses, so a command's nested messages cost
  // no allocation and free of their own; emptied whenever every report is
  // handled. Its first block is the call's own (a round's echo, a command or
  // two, fits). Past kMaxCommandArenaBytes, commands are parsed on the heap.
  alignas(8) char command_arena_block_[1024];
  google::protobuf::Arena command_arena_{command_arena_block_, sizeof(command_arena_block_)};
  bool command_arena_used_ = false;  // parsed into since its last Reset
  // The bytes of play commands waiting to be handled, read without a parse
  // (DecodePlayCommand): a frame's play costs a copy, not a message. Emptied
  // with the arena; a capacity past kPlayBytesKept (a round's plays fit)
  // is then freed.
  static constexpr size_t kPlayBytesKept = 4096;
  std::vector<char> play_bytes_;
  size_t link_reports_next_ = 0;
  bool link_reports_due_ = false;  // a task to handle them is queued
  bool backend_hangup_pending_ = false;

  event::Dispatcher::TimerId uuid_timer_ = 0;
  event::Dispatcher::TimerId audio_timer_ = 0;  // first audio deadline
  bridge::v1::CallStats stats_;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_H_
