#ifndef AUDIOSOCKET_BRIDGE_SERVER_CALL_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CALL_H_

// One AudioSocket connection and the call it carries: decodes what
// Asterisk sends into CallEvents for the backend, plays the backend's audio
// out in paced 20 ms frames, and ends exactly once with a typed reason.
//
// Threads: a Call is confined to its event loop. The LinkObserver,
// WaitingCall and RegisteredCall methods are the only ones called from other
// threads; they post to the loop. Ownership: the call keeps itself alive
// (self_) from Start() until its socket is closed; links and the registry
// hold weak or shared pointers and find an ended call inert.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "lib/dsp/dtmf_detector.h"
#include "lib/dsp/dtmf_generator.h"
#include "lib/dsp/g711.h"
#include "lib/dsp/resampler.h"
#include "lib/event/dispatcher.h"
#include "lib/event/frame_pacer.h"
#include "lib/event/time_source.h"
#include "lib/wire/wire.h"
#include "server/backend_link.h"
#include "server/call_registry.h"
#include "server/claim_service.h"
#include "server/command_budget.h"
#include "server/config.h"
#include "server/counters.h"
#include "server/dtmf_dedup.h"
#include "server/log.h"
#include "server/metrics.h"
#include "server/playout_queue.h"
#include "server/push_link.h"

namespace audiosocket {

// What all calls share. Outlives every call.
struct CallServices {
  const BridgeConfig* config = nullptr;
  CallRegistry* registry = nullptr;
  ClaimDispatcher* dispatcher = nullptr;                      // pull mode
  bridge::v1::CallHandlerService::Stub* push_stub = nullptr;  // push mode
  BridgeCounters* counters = nullptr;
  // Fallback audio at 8 kHz (empty: none); see BridgeConfig::fallback_wav.
  const std::vector<int16_t>* fallback_audio = nullptr;
  int fallback_sample_rate_hz = 8000;
  std::string bearer_token;  // push mode: sent to backends
  Metrics* metrics = nullptr;
  // Push mode: opens a call's backend stream. Empty: PushLink::Start on
  // push_stub. A seam for tests and fuzzing (tests/fuzz/call_harness.h).
  std::function<std::shared_ptr<BackendLink>(uint64_t link_id, std::weak_ptr<LinkObserver>,
                                             const PushLink::Options&)>
      push_link_factory;
};

// In-band DTMF toward the caller (asterisk dialect): renders each digit's
// tone with lib/dsp's generator as the playout queue reaches it.
class InbandToneRenderer final : public ToneRenderer {
 public:
  explicit InbandToneRenderer(int sample_rate_hz) : rate_(sample_rate_hz) {}
  void Render(char digit, uint64_t offset, uint64_t tone_samples, absl::Span<int16_t> out) override;

 private:
  const int rate_;
  std::optional<dsp::DtmfGenerator> generator_;
};

// Converts backend audio toward the caller to the playout rate, one
// streaming resampler per input rate, as the playout queue reaches it.
// Owned by one call on its loop, like the queue it serves.
class OutboundConverter final : public RateConverter {
 public:
  explicit OutboundConverter(int output_rate_hz) : output_rate_(output_rate_hz) {}
  int output_rate_hz() const { return output_rate_; }
  // Makes sure audio at `input_rate_hz` can be converted (INVALID_ARGUMENT
  // naming the rate otherwise). Cheap after the first call for a rate.
  absl::Status Prepare(int input_rate_hz);
  void Convert(int input_rate_hz, absl::Span<const int16_t> in, std::vector<int16_t>* out) override;

 private:
  const int output_rate_;
  absl::flat_hash_map<int, dsp::Resampler> resamplers_;  // by input rate
};

// Bytes of backend commands a call may have waiting for its loop (four of
// gRPC's largest messages). A backend that sends faster than its call can
// act past this has its call ended (BACKEND_LOST).
inline constexpr uint64_t kMaxPendingCommandBytes = 16 << 20;

// How long a call that sent its hang-up keeps reading (and dropping) what
// Asterisk still sends before closing the socket itself.
inline constexpr std::chrono::milliseconds kLingerAfterHangup{2000};

class Call final : public event::FdHandler,
                   public LinkObserver,
                   public WaitingCall,
                   public RegisteredCall,
                   public std::enable_shared_from_this<Call> {
 public:
  Call(event::Dispatcher* loop, int fd, const ListenerConfig* listener, std::string peer_address,
       const CallServices* services);
  ~Call() override;

  // Starts reading and the UUID timer. On the loop thread.
  void Start();
  // Ends the call with SHUTDOWN (thread-safe).
  void Shutdown();

  // event::FdHandler (loop thread).
  void OnReadable() override;
  void OnWritable() override;

  // LinkObserver (any thread).
  void OnBackendCommand(uint64_t link_id, BackendMessage message) override;
  void OnBackendClosed(uint64_t link_id, grpc::Status status) override;

  // WaitingCall (any thread; the ids are immutable once waiting).
  const std::string& call_id() const override { return call_id_; }
  const std::string& listener_name() const override { return listener_->name; }
  void OnClaimed(std::shared_ptr<ClaimStream> stream) override;

  // RegisteredCall (any thread).
  void RequestHangup() override;

 private:
  enum class State {
    kAwaitingUuid,    // connected, nothing valid received yet
    kAwaitingAudio,   // UUID received; learning the rate from the first audio
    kWaitingBackend,  // push: dialled, awaiting accept; pull: awaiting a claim
    kConnected,       // a backend has the call
    kFallback,        // ended for the backend; playing the fallback audio
    kClosed,          // socket closed
  };

  void HandleMessage(const wire::Message& message);
  void HandleUuid(const wire::CallUuid& uuid);
  void HandleAudio(const wire::Audio& audio);
  // The call's real rate, from an audio message's kind. Before any audio
  // has been carried the rate may still change (the listener's default was
  // only a guess); after, a change is a protocol error.
  absl::Status AdoptRate(int sample_rate_hz);
  // Converts caller audio from the call's rate to the backend's, or not at
  // all when they match.
  absl::Status ConfigureInboundResampler();
  void ConnectBackend();
  void DialNextBackend();
  // Push: a stream ended before accept; the next attempt after a backoff.
  void RetryBackendLater();
  // Dispatches what the backend sent: push accept/reject, a pull claim sent
  // again, or an in-call command.
  void HandleMessage(uint64_t link_id, BackendMessage message);
  void HandleAccept(const bridge::v1::AcceptCall& accept);
  void HandleReject(const bridge::v1::RejectCall& reject);
  void HandleCommand(const bridge::v1::CallCommand& command);
  void HandleCommandOverflow(uint64_t link_id);
  void HandleBackendClosed(uint64_t link_id, const grpc::Status& status);
  void HandleClaimed(std::shared_ptr<ClaimStream> stream);
  void OnAccepted(const bridge::v1::MediaOptions& media);
  absl::Status ApplyMedia(const bridge::v1::MediaOptions& media);

  // Commands.
  // `backend_rate_hz`: the accept's result confirms the rate (0: unset).
  // Answers `command` (always on error; on OK when it has a command_id).
  void Reply(const bridge::v1::CallCommand& command, bridge::v1::ResultCode code,
             std::string message, uint32_t backend_rate_hz = 0);
  // The same for a command outside CallCommand (AcceptCall, RejectCall,
  // ClaimCall), named by its command_id and kind.
  void Reply(const std::string& command_id, bridge::v1::CommandKind kind,
             bridge::v1::ResultCode code, std::string message, uint32_t backend_rate_hz = 0);
  void DoPlay(const bridge::v1::CallCommand& command);
  void DoClear(const bridge::v1::CallCommand& command);
  void DoSendDtmf(const bridge::v1::CallCommand& command);
  void DoSendControl(const bridge::v1::CallCommand& command);

  // Events toward the backend: held until a backend takes the call, then
  // converted to the backend's rate as they are delivered.
  void Emit(bridge::v1::CallEvent event);
  void Deliver(bridge::v1::CallEvent event);
  void FlushHeld();
  void EmitDtmf(char digit, bridge::v1::DtmfPhase phase, uint32_t duration_ms,
                bridge::v1::DtmfSource source, uint64_t call_offset);
  void DetectInband(absl::Span<const int16_t> samples);
  uint64_t ToBackendOffset(uint64_t call_offset) const;
  bridge::v1::CallEvent StartedEvent() const;

  // Outbound audio.
  // (Re)starts the playout queue at `rate_hz`; the pacer keeps its grid.
  void StartPlayout(int rate_hz);
  void OnPlayoutTick();
  void HandleNotices(std::vector<PlayoutNotice> notices, bool before_frame);
  bool WriteMessage(const wire::Message& message);
  void WriteBytes(const uint8_t* data, size_t size, bool droppable);
  void FlushPending();

  // Inbound idleness: a complete message from Asterisk within
  // --caller_idle_timeout, and no message left incomplete for long.
  void ArmIdleTimer();
  void CheckIdle();
  void WatchPartialMessage();
  void CheckPartialMessage();

  // Ending.
  void End(bridge::v1::CallEndReason reason, std::string detail,
           const wire::Error* asterisk_error = nullptr);
  void CloseSocket(bool send_hangup);
  // After our hang-up: reads and drops what Asterisk still sends until it
  // closes its end (or kLingerAfterHangup passes), then closes.
  void DrainLingering();
  void FinishClose();
  // Closes a connection that never became a call: counts it in
  // `rejected` (one of BridgeCounters' connections_rejected_*) and logs
  // connection_closed, so every accepted connection has one counted outcome.
  void CloseBeforeUuid(std::atomic<uint64_t>& rejected, absl::string_view reason,
                       absl::string_view detail, log::Level level, bool send_hangup);
  void ProtocolError(const absl::Status& status);

  event::Dispatcher* const loop_;
  int fd_;
  const ListenerConfig* const listener_;
  const std::string peer_address_;
  const CallServices* const services_;
  const BridgeConfig& config_;
  std::shared_ptr<Call> self_;

  State state_ = State::kAwaitingUuid;
  bool ended_ = false;  // End() ran: CallEnded was sent
  wire::Decoder decoder_;
  std::string call_id_;
  absl::Time start_time_;
  event::MonoTime start_mono_{};
  bool registered_ = false;

  // The rate of Asterisk's audio: the listener's default until the first
  // audio message sets it.
  int call_rate_hz_;
  // The rate the backend exchanges audio at, fixed at accept / claim.
  int backend_rate_hz_ = 0;
  // Push: the backend rate the last CallStarted announced (what an accept
  // with sample_rate_hz 0 gets, even when the call's rate changed since).
  int offered_rate_hz_ = 0;
  bool rate_known_ = false;
  // The rate of audio toward Asterisk. It may differ from call_rate_hz_:
  // Asterisk takes any audio kind on any call and resamples.
  int playout_rate_hz_ = 0;
  bool played_content_ = false;  // anything but silence was written
  bool detect_inband_dtmf_ = false;
  dsp::AudioEncoding encoding_ = dsp::AudioEncoding::kSlin16;

  // Audio conversion and DTMF detection.
  std::optional<dsp::Resampler> inbound_resampler_;      // call rate -> backend rate
  std::optional<OutboundConverter> outbound_converter_;  // to playout_rate_hz_
  uint64_t backend_offset_ = 0;                          // backend-rate samples delivered
  uint64_t expected_call_offset_ = 0;                    // call-rate offset of the next chunk
  std::vector<int16_t> linear_;                          // scratch: inbound audio as PCM
  std::vector<int16_t> converted_;                       // scratch: resampler output
  std::optional<dsp::DtmfDetector> detector_;
  bool detector_unavailable_ = false;
  uint64_t detector_base_ = 0;  // call offset of the detector's sample 0
  std::vector<dsp::DtmfEvent> detected_;
  DtmfDeduplicator dedup_;
  std::optional<InbandToneRenderer> tone_renderer_;

  // Toward the backend.
  std::shared_ptr<BackendLink> link_;
  uint64_t link_id_ = 0;
  // Commands posted to the loop and not yet handled (reserved on gRPC
  // threads in OnBackendCommand); past the bound the call ends.
  CommandBudget command_budget_{kMaxPendingCommandBytes};
  std::atomic<bool> command_overflow_{false};
  int attempts_ = 0;
  int busy_rejects_ = 0;  // counted against --backend_attempts
  std::string last_attempt_error_;
  std::deque<bridge::v1::CallEvent> held_;
  uint64_t held_audio_samples_ = 0;  // at the call's rate
  uint64_t held_dropped_samples_ = 0;
  uint64_t held_dropped_events_ = 0;
  uint64_t sequence_ = 0;
  uint64_t inbound_offset_ = 0;  // samples at the call rate
  bool backend_hangup_pending_ = false;

  // Toward the caller.
  std::optional<PlayoutQueue> playout_;
  std::optional<event::FramePacer> pacer_;
  std::vector<int16_t> frame_;
  std::vector<uint8_t> encode_buffer_;
  std::vector<uint8_t> pending_;  // bytes Asterisk has not taken yet
  size_t pending_offset_ = 0;
  bool watching_writable_ = false;
  event::MonoTime stalled_since_{};

  event::Dispatcher::TimerId uuid_timer_ = 0;
  event::Dispatcher::TimerId wait_timer_ = 0;  // first audio, accept or claim deadline
  event::Dispatcher::TimerId playout_timer_ = 0;
  event::Dispatcher::TimerId retry_timer_ = 0;  // push: next attempt after a failed one
  event::Dispatcher::TimerId idle_timer_ = 0;   // --caller_idle_timeout
  event::Dispatcher::TimerId partial_timer_ = 0;
  event::Dispatcher::TimerId linger_timer_ = 0;
  bool lingering_ = false;  // hang-up sent, write side shut, reading until Asterisk closes
  event::MonoTime last_message_at_{};  // the last complete message from Asterisk
  // The incomplete message at the end of what was read: where it starts
  // (decoder offset) and since when it has been waiting for its rest.
  uint64_t partial_offset_ = 0;
  event::MonoTime partial_since_{};
  absl::Duration retry_backoff_ = absl::ZeroDuration();

  bridge::v1::CallStats stats_;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CALL_H_
