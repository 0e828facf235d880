#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_CALL_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_CALL_H_

// One emulated Asterisk call: connects without blocking, sends the UUID,
// then 20 ms audio frames at absolute deadlines, DTMF/control/error messages
// at their times, faults on purpose; decodes what the far end sends,
// records it, and ends as configured.
//
// States: connecting -> active -> (draining) -> done.
//
// Thread-safety: a Call lives on the event-loop thread; every method runs
// there. Ownership: the Runner owns calls; a call borrows the dispatcher
// (its time too), config, stats and recorder, which must outlive it. A call
// stays alive until the dispatcher round in which it finished has ended.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lib/dsp/g711.h"
#include "lib/event/dispatcher.h"
#include "lib/event/frame_pacer.h"
#include "lib/wire/wire.h"
#include "tools/audiosocket-call/nanos.h"
#include "tools/audiosocket-call/options.h"
#include "tools/audiosocket-call/source.h"
#include "tools/audiosocket-call/stats.h"
#include "tools/audiosocket-call/summary.h"
#include "tools/audiosocket-call/wav.h"

namespace audiosocket::call {

inline constexpr Nanos kFramePeriod = 20 * kMillisecond;

class Call final : public event::FdHandler {
 public:
  // `recorder` may be null (no recording); it is opened at the rate of the
  // first audio received. `on_done` runs once, when the call has ended.
  Call(int index, wire::CallUuid uuid, const CallConfig* config, event::Dispatcher* dispatcher,
       RunStats* stats, WavWriter* recorder, std::function<void()> on_done);
  ~Call() override;
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  // Starts connecting now.
  void Start();
  // Ends the call at once as --end says (e.g. on SIGINT).
  void Interrupt();

  bool done() const { return state_ == State::kDone; }
  // True once the TCP connection is up (and after, until done).
  bool connected() const { return state_ == State::kActive || state_ == State::kDraining; }
  // When Start() ran (0 before): the runner's schedule of call starts.
  Nanos started_at() const { return connect_started_; }
  const CallResult& result() const { return result_; }
  int64_t frames_due() const { return pacer_.next_frame(); }
  // Bytes the socket has not taken yet (queued in user space).
  size_t write_pending() const { return outbox_.size() - outbox_sent_; }

  // event::FdHandler
  void OnReadable() override;
  void OnWritable() override;

 private:
  enum class State { kIdle, kConnecting, kActive, kDraining, kDone };
  struct Action {
    enum class Type { kSuppressBegin, kDigit, kDtmfStart, kDtmfStop, kControl, kError };
    Nanos at = 0;  // since start_
    Type type = Type::kDigit;
    char digit = '0';
    uint8_t value = 0;
  };

  Nanos Now() const { return ToNanos(loop_->Now()); }
  void OnTimer();
  // The connect finished, well or not.
  void OnConnectReady(Nanos now);
  void OnConnected(Nanos now);
  void Pump(Nanos now);
  void PumpFlood(Nanos now);
  bool SendFrame(Nanos now);
  bool DoAction(const Action& action);
  bool SendMessage(const wire::Message& message);
  // One send(2) of `bytes`; queues what the socket does not take. False when
  // the call ended on a write error.
  bool Send(const std::vector<uint8_t>& bytes);
  void FlushOutbox();
  void ReadAvailable(Nanos now);
  // `arrived`: when the kernel received the message's last bytes (realtime
  // ns), or -1.
  bool HandleMessage(const wire::Message& message, Nanos now, Nanos arrived);
  void ReachEnd(Nanos now);
  void StartDraining(absl::string_view ended, Nanos now);
  void Finish(absl::string_view ended, absl::string_view error);
  void SetTimer(Nanos deadline);
  void WantWrite(bool want);
  void LogReceived(absl::string_view fields, Nanos now);
  void Fail(absl::string_view error) { Finish("error", error); }

  const int index_;
  const wire::CallUuid uuid_;
  const CallConfig& config_;
  const wire::Dialect dialect_;
  event::Dispatcher* loop_;
  RunStats* stats_;
  WavWriter* recorder_;
  std::function<void()> on_done_;
  std::unique_ptr<AudioSource> source_;

  State state_ = State::kIdle;
  int fd_ = -1;
  bool want_write_ = false;
  event::Dispatcher::TimerId timer_ = 0;
  bool timer_set_ = false;
  Nanos connect_started_ = 0;
  Nanos start_ = 0;  // when the call connected (frame 0's deadline, on the tick grid)
  event::FramePacer pacer_;
  bool audio_on_ = true;
  bool suppressed_ = false;  // asterisk dialect: voice frames dropped during a digit
  std::vector<Action> actions_;
  size_t next_action_ = 0;
  Nanos first_rx_ = -1;
  Nanos last_rx_ = -1;
  Nanos last_arrival_ = -1;  // the kernel's time of the last audio received, or -1
  EchoMatcher echo_;
  wire::Decoder decoder_;
  std::vector<int16_t> samples_;
  std::vector<uint8_t> payload_;
  std::vector<uint8_t> echo_payload_;  // G.711: what an echo of the frame looks like
  std::vector<uint8_t> out_;
  std::vector<uint8_t> outbox_;  // bytes the socket did not take yet
  size_t outbox_sent_ = 0;
  std::string draining_ended_;
  CallResult result_;
};

// The frame payload for frame `n`: `samples` as little-endian bytes, with the
// frame number in the least significant bit of the first 32 samples when
// `mark`. Exposed for tests.
// Writes `at` (64 bits, least significant first) into the lowest bit of
// samples 32..95 of an encoded payload of at least 96 samples; shorter
// payloads are left as they are.
void StampFramePayload(Nanos at, std::vector<uint8_t>* payload);
// Reads back what StampFramePayload wrote (no check that it did).
Nanos ReadFrameStamp(absl::Span<const uint8_t> payload);

void EncodeFramePayload(absl::Span<const int16_t> samples, int64_t n, bool mark,
                        std::vector<uint8_t>* payload);

// G.711 (`encoding` ulaw or alaw) for frame `n`: `samples` encoded, with the
// frame number in the least significant bit of the first 32 bytes when
// `mark`. `echo` gets what a far end that decodes and echoes the frame sends
// back: the bytes decoded to signed linear, little-endian.
void EncodeG711FramePayload(dsp::AudioEncoding encoding, absl::Span<const int16_t> samples,
                            int64_t n, bool mark, std::vector<uint8_t>* payload,
                            std::vector<uint8_t>* echo);

// The fault's leading bytes, sent right after connecting (UUID included when
// the fault sends one). Exposed for tests.
std::vector<uint8_t> FaultPrologue(Fault fault, const wire::CallUuid& uuid, int rate_hz);

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_CALL_H_
