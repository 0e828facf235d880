#include "server/call.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <variant>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "server/command_kind.h"
#include "server/log.h"
#include "server/push_link.h"
#include "server/quote.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "PCM on the wire and in the API is little-endian; this code copies it as is");

namespace audiosocket {
namespace {

using bridge::v1::CallCommand;
using bridge::v1::CallEndReason;
using bridge::v1::CallEvent;
using bridge::v1::ResultCode;

constexpr event::Nanos kFramePeriod = std::chrono::milliseconds(20);
// Push: the wait before retrying after a stream failed before accept, doubled
// after each failure up to the cap. A backend that restarts refuses
// connections for a moment; retrying at once would spend every attempt in
// that moment.
constexpr absl::Duration kFirstRetryBackoff = absl::Milliseconds(100);
constexpr absl::Duration kMaxRetryBackoff = absl::Seconds(1);
// Asterisk writes each message with one write (and hangs up itself when a
// payload comes more than a few ms after its header): a message still
// incomplete after this long is not Asterisk being slow.
constexpr absl::Duration kPartialMessageTimeout = absl::Seconds(2);

std::chrono::nanoseconds ToNanos(absl::Duration d) {
  return std::chrono::nanoseconds(absl::ToInt64Nanoseconds(d));
}

std::string_view ReasonName(CallEndReason reason) {
  const std::string& name = bridge::v1::CallEndReason_Name(reason);
  constexpr std::string_view kPrefix = "CALL_END_REASON_";
  std::string_view view(name);
  if (view.substr(0, kPrefix.size()) == kPrefix) view.remove_prefix(kPrefix.size());
  return view;
}

bool ValidDtmfDigits(const std::string& digits) {
  if (digits.empty()) return false;
  for (char c : digits) {
    if (!wire::IsDtmfDigit(c)) return false;
  }
  return true;
}

// Reasons after which the caller hears the fallback audio, if configured.
bool WantsFallback(CallEndReason reason) {
  switch (reason) {
    case bridge::v1::CALL_END_REASON_BACKEND_LOST:
    case bridge::v1::CALL_END_REASON_ACCEPT_TIMEOUT:
    case bridge::v1::CALL_END_REASON_CLAIM_TIMEOUT:
    case bridge::v1::CALL_END_REASON_ALL_BACKENDS_REJECTED:
      return true;
    default:
      return false;
  }
}

// Reasons where the socket is already gone or must not be written to.
bool CallerSideEnd(CallEndReason reason) {
  return reason == bridge::v1::CALL_END_REASON_CALLER_HUNG_UP ||
         reason == bridge::v1::CALL_END_REASON_CALLER_UNRESPONSIVE ||
         reason == bridge::v1::CALL_END_REASON_ASTERISK_ERROR;
}

}  // namespace

Call::Call(event::Dispatcher* loop, int fd, const ListenerConfig* listener,
           std::string peer_address, const CallServices* services)
    : loop_(loop),
      fd_(fd),
      listener_(listener),
      peer_address_(std::move(peer_address)),
      services_(services),
      config_(*services->config),
      decoder_(wire::DecoderOptions{
          .dialect = listener->dialect,
          .max_payload = services->config->max_payload,
          .unknown_kinds = wire::UnknownKindPolicy::kReject,
          .audio_bytes_per_sample =
              listener->encoding == bridge::v1::AUDIO_ENCODING_LINEAR16 ? 2 : 1,
      }),
      call_rate_hz_(listener->encoding == bridge::v1::AUDIO_ENCODING_LINEAR16
                        ? listener->default_sample_rate_hz
                        : 8000),
      detect_inband_dtmf_(listener->detect_inband_dtmf),
      encoding_(listener->encoding == bridge::v1::AUDIO_ENCODING_MULAW ? dsp::AudioEncoding::kUlaw
                : listener->encoding == bridge::v1::AUDIO_ENCODING_ALAW
                    ? dsp::AudioEncoding::kAlaw
                    : dsp::AudioEncoding::kSlin16) {}

void InbandToneRenderer::Render(char digit, uint64_t offset, uint64_t tone_samples,
                                absl::Span<int16_t> out) {
  if (offset == 0 || !generator_.has_value()) {
    dsp::DtmfGenerator::Options options;
    options.tone_ms = static_cast<int>(tone_samples * 1000 / static_cast<uint64_t>(rate_));
    auto generator = dsp::DtmfGenerator::Create(rate_, options);
    if (!generator.ok() || !generator->Queue(absl::string_view(&digit, 1)).ok()) {
      std::fill(out.begin(), out.end(), 0);
      return;
    }
    generator_.emplace(std::move(*generator));
  }
  generator_->Generate(out);
}

absl::Status OutboundConverter::Prepare(int input_rate_hz) {
  if (input_rate_hz == output_rate_ || resamplers_.contains(input_rate_hz)) {
    return absl::OkStatus();
  }
  absl::StatusOr<dsp::Resampler> resampler = dsp::Resampler::Create(input_rate_hz, output_rate_);
  if (!resampler.ok()) return resampler.status();
  resamplers_.emplace(input_rate_hz, std::move(*resampler));
  return absl::OkStatus();
}

void OutboundConverter::Convert(int input_rate_hz, absl::Span<const int16_t> in,
                                std::vector<int16_t>* out) {
  auto it = resamplers_.find(input_rate_hz);
  const size_t at = out->size();
  if (it == resamplers_.end()) {
    // Prepare() ran before the audio was queued; a rate change of the
    // playout since replaced this object, and the queue with it.
    out->resize(at +
                in.size() * static_cast<size_t>(output_rate_) / static_cast<size_t>(input_rate_hz));
    return;
  }
  out->resize(at + it->second.MaxOutputSamples(in.size()));
  const size_t produced = it->second.Process(in, absl::MakeSpan(*out).subspan(at));
  out->resize(at + produced);
}

Call::~Call() {
  if (fd_ >= 0) ::close(fd_);
}

void Call::Start() {
  self_ = shared_from_this();
  if (absl::Status watched = loop_->Watch(fd_, this, false); !watched.ok()) {
    CloseBeforeUuid(services_->counters->connections_rejected_internal, "internal_error",
                    watched.message(), log::Level::kError, false);
    return;
  }
  std::weak_ptr<Call> weak = self_;
  uuid_timer_ = loop_->RunAt(loop_->Now() + ToNanos(config_.uuid_timeout), [weak] {
    auto call = weak.lock();
    if (!call || call->state_ != State::kAwaitingUuid) return;
    call->uuid_timer_ = 0;
    call->CloseBeforeUuid(
        call->services_->counters->connections_rejected_uuid_timeout, "uuid_timeout",
        absl::StrCat("no UUID (0x01) within ", absl::FormatDuration(call->config_.uuid_timeout)),
        log::Level::kWarning, false);
  });
}

void Call::CloseBeforeUuid(std::atomic<uint64_t>& rejected, absl::string_view reason,
                           absl::string_view detail, log::Level level, bool send_hangup) {
  // Counted before the close: a peer that saw the close and then scrapes
  // /metrics must find it counted.
  rejected++;
  log::Write(level, "connection_closed", "",
             {{"reason", reason},
              {"peer", peer_address_},
              {"listener", listener_->name},
              {"detail", detail}});
  CloseSocket(send_hangup);
}

void Call::Shutdown() {
  std::weak_ptr<Call> weak = weak_from_this();
  loop_->Post([weak] {
    if (auto call = weak.lock()) {
      if (call->state_ == State::kAwaitingUuid) {
        call->CloseBeforeUuid(call->services_->counters->connections_rejected_shutdown, "shutdown",
                              "the bridge is shutting down", log::Level::kInfo, false);
      } else {
        call->End(bridge::v1::CALL_END_REASON_SHUTDOWN, "the bridge is shutting down");
      }
    }
  });
}

void Call::RequestHangup() {
  std::weak_ptr<Call> weak = weak_from_this();
  loop_->Post([weak] {
    if (auto call = weak.lock()) {
      call->End(bridge::v1::CALL_END_REASON_HANGUP_REQUESTED,
                "BridgeService.HangupCall was called");
    }
  });
}

// ------------------------------------------------------------------ input

void Call::OnReadable() {
  if (lingering_) {
    DrainLingering();
    return;
  }
  // Bounded work per wake-up keeps one busy caller from starving the rest.
  for (int round = 0; round < 8 && state_ != State::kClosed; ++round) {
    absl::Span<uint8_t> space = decoder_.PrepareWrite(16384);
    const ssize_t n = ::read(fd_, space.data(), space.size());
    if (n > 0) {
      decoder_.Commit(static_cast<size_t>(n));
      stats_.set_bytes_from_caller(stats_.bytes_from_caller() + static_cast<uint64_t>(n));
      const uint64_t consumed_before = decoder_.consumed();
      while (state_ != State::kClosed) {
        absl::StatusOr<std::optional<wire::Message>> next = decoder_.Next();
        if (!next.ok()) {
          ProtocolError(next.status());
          return;
        }
        if (!next->has_value()) break;
        HandleMessage(**next);
      }
      if (state_ == State::kClosed) return;
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
      ProtocolError(absl::InvalidArgumentError(
          absl::StrCat("truncated message: the connection closed ", decoder_.buffered(),
                       " byte(s) into a message at offset ", decoder_.consumed())));
      return;
    }
    // End of stream or reset: the caller hung up. Real Asterisk closes the
    // socket rather than sending 0x00.
    const std::string detail =
        n == 0 ? "Asterisk closed the connection" : absl::StrCat("read: ", std::strerror(errno));
    if (state_ == State::kAwaitingUuid) {
      // Info, not warning: load-balancer port checks connect and close too.
      CloseBeforeUuid(services_->counters->connections_rejected_caller_closed, "caller_closed",
                      absl::StrCat(detail, " before its UUID"), log::Level::kInfo, false);
    } else if (state_ == State::kFallback) {
      CloseSocket(false);
    } else {
      End(bridge::v1::CALL_END_REASON_CALLER_HUNG_UP, detail);
    }
    return;
  }
}

void Call::ArmIdleTimer() {
  if (config_.caller_idle_timeout <= absl::ZeroDuration()) return;
  std::weak_ptr<Call> weak = self_;
  // One timer per timeout period, not one per message: it re-arms from the
  // last message when it fires early.
  idle_timer_ = loop_->RunAt(last_message_at_ + ToNanos(config_.caller_idle_timeout), [weak] {
    if (auto call = weak.lock()) {
      call->idle_timer_ = 0;
      call->CheckIdle();
    }
  });
}

void Call::CheckIdle() {
  if (ended_ || state_ == State::kClosed) return;
  if (loop_->Now() - last_message_at_ < ToNanos(config_.caller_idle_timeout)) {
    ArmIdleTimer();
    return;
  }
  End(bridge::v1::CALL_END_REASON_CALLER_IDLE,
      absl::StrCat("no complete AudioSocket message from Asterisk for ",
                   absl::FormatDuration(config_.caller_idle_timeout),
                   decoder_.buffered() > 0
                       ? absl::StrCat(" (", decoder_.buffered(), " byte(s) of an incomplete one)")
                       : std::string(),
                   "; --caller_idle_timeout"));
}

void Call::WatchPartialMessage() {
  if (state_ == State::kAwaitingUuid || decoder_.buffered() == 0) return;
  if (partial_since_ == event::MonoTime{} || partial_offset_ != decoder_.consumed()) {
    partial_offset_ = decoder_.consumed();
    partial_since_ = loop_->Now();
  }
  if (partial_timer_ != 0) return;
  std::weak_ptr<Call> weak = self_;
  partial_timer_ = loop_->RunAt(partial_since_ + ToNanos(kPartialMessageTimeout), [weak] {
    if (auto call = weak.lock()) {
      call->partial_timer_ = 0;
      call->CheckPartialMessage();
    }
  });
}

void Call::CheckPartialMessage() {
  if (ended_ || state_ == State::kClosed || decoder_.buffered() == 0) return;
  if (partial_offset_ != decoder_.consumed() ||
      loop_->Now() - partial_since_ < ToNanos(kPartialMessageTimeout)) {
    WatchPartialMessage();  // another message is incomplete now: its own time
    return;
  }
  End(bridge::v1::CALL_END_REASON_CALLER_IDLE,
      absl::StrCat("a message from Asterisk at offset ", partial_offset_,
                   " is still incomplete after ", absl::FormatDuration(kPartialMessageTimeout),
                   " (", decoder_.buffered(),
                   " byte(s) arrived); Asterisk sends each message in one write"));
}

void Call::ProtocolError(const absl::Status& status) {
  services_->counters->protocol_errors++;
  if (state_ == State::kAwaitingUuid) {
    CloseBeforeUuid(services_->counters->connections_rejected_protocol, "protocol_error",
                    status.message(), log::Level::kWarning, true);
    return;
  }
  if (state_ == State::kFallback) {
    CloseSocket(true);
    return;
  }
  End(bridge::v1::CALL_END_REASON_PROTOCOL_ERROR, std::string(status.message()));
}

void Call::HandleMessage(const wire::Message& message) {
  if (state_ == State::kAwaitingUuid) {
    if (const auto* uuid = std::get_if<wire::CallUuid>(&message)) {
      HandleUuid(*uuid);
    } else {
      ProtocolError(absl::InvalidArgumentError(
          absl::StrCat("the first message must be the UUID (0x01), got ",
                       wire::KindName(wire::KindOf(message), listener_->dialect))));
    }
    return;
  }
  if (state_ == State::kFallback) return;  // the backend side is over
  CallEvent event;
  if (std::holds_alternative<wire::CallUuid>(message)) {
    ProtocolError(absl::InvalidArgumentError("a second UUID (0x01) arrived mid-call"));
  } else if (const auto* audio = std::get_if<wire::Audio>(&message)) {
    HandleAudio(*audio);
  } else if (const auto* digit = std::get_if<wire::DtmfDigit>(&message)) {
    EmitDtmf(digit->digit, bridge::v1::DTMF_PHASE_END_ONLY, 0, bridge::v1::DTMF_SOURCE_SIGNALLED,
             inbound_offset_);
  } else if (const auto* dtmf_in = std::get_if<wire::DtmfEvent>(&message)) {
    EmitDtmf(dtmf_in->digit,
             dtmf_in->start ? bridge::v1::DTMF_PHASE_BEGIN : bridge::v1::DTMF_PHASE_END,
             dtmf_in->start ? 0 : dtmf_in->duration_ms, bridge::v1::DTMF_SOURCE_SIGNALLED,
             inbound_offset_);
  } else if (const auto* control = std::get_if<wire::Control>(&message)) {
    auto* out = event.mutable_control();
    out->set_raw_code(control->code);
    out->set_type(bridge::v1::ControlType_IsValid(control->code)
                      ? static_cast<bridge::v1::ControlType>(control->code)
                      : bridge::v1::CONTROL_TYPE_UNSPECIFIED);
    Emit(std::move(event));
  } else if (const auto* error = std::get_if<wire::Error>(&message)) {
    End(bridge::v1::CALL_END_REASON_ASTERISK_ERROR,
        absl::StrCat("Asterisk reported an error: ", wire::ErrorFlagNames(error->flags())), error);
  } else if (std::holds_alternative<wire::Hangup>(message)) {
    End(bridge::v1::CALL_END_REASON_CALLER_HUNG_UP, "Asterisk sent hangup (0x00)");
  } else {
    ProtocolError(absl::InvalidArgumentError(
        absl::StrCat("unexpected ", wire::KindName(wire::KindOf(message), listener_->dialect))));
  }
}

void Call::HandleUuid(const wire::CallUuid& uuid) {
  loop_->CancelTimer(uuid_timer_);
  uuid_timer_ = 0;
  call_id_ = uuid.ToString();
  start_time_ = absl::Now();
  start_mono_ = loop_->Now();
  bridge::v1::CallInfo info;
  info.set_call_id(call_id_);
  info.set_listener(listener_->name);
  info.set_dialect(listener_->dialect == wire::Dialect::kAsterisk ? bridge::v1::DIALECT_ASTERISK
                                                                  : bridge::v1::DIALECT_EXTENDED);
  info.set_peer_address(peer_address_);
  info.set_call_sample_rate_hz(call_rate_hz_);
  info.set_state(bridge::v1::CALL_STATE_WAITING);
  *info.mutable_start_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(start_time_));
  if (absl::Status added = services_->registry->Add(info, weak_from_this()); !added.ok()) {
    call_id_.clear();  // not ours to unregister
    ProtocolError(added);
    return;
  }
  registered_ = true;
  state_ = State::kAwaitingAudio;
  last_message_at_ = loop_->Now();
  ArmIdleTimer();
  services_->counters->calls_started++;
  services_->counters->active_calls++;
  log::Write(log::Level::kInfo, "call_started", call_id_,
             {{"listener", listener_->name},
              {"dialect", std::string(wire::DialectName(listener_->dialect))},
              {"peer", peer_address_}});
  // Silence starts right after the UUID: some Asterisk versions stall their
  // own audio until the server sends something.
  StartPlayout(call_rate_hz_);
  std::weak_ptr<Call> weak = self_;
  wait_timer_ = loop_->RunAt(loop_->Now() + ToNanos(config_.first_audio_wait), [weak] {
    auto call = weak.lock();
    if (!call || call->state_ != State::kAwaitingAudio) return;
    call->wait_timer_ = 0;
    call->rate_known_ = true;  // the listener's default stands
    call->ConnectBackend();
  });
}

absl::Status Call::AdoptRate(int sample_rate_hz) {
  rate_known_ = true;
  if (sample_rate_hz == call_rate_hz_) return absl::OkStatus();
  if (inbound_offset_ > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("audio rate changed mid-call from ", call_rate_hz_, " Hz to ", sample_rate_hz,
                     " Hz after ", inbound_offset_ * 1000 / static_cast<uint64_t>(call_rate_hz_),
                     " ms of audio (Asterisk keeps one rate for a call)"));
  }
  // No audio carried yet: the listener's default (or the rate fixed when the
  // first audio was late) was only a guess, and nothing depends on it but
  // conversions that can be redone.
  log::Write(log::Level::kInfo, "call_rate_changed", call_id_,
             {{"from_hz", call_rate_hz_}, {"to_hz", sample_rate_hz}});
  call_rate_hz_ = sample_rate_hz;
  services_->registry->SetState(call_id_,
                                state_ == State::kConnected ? bridge::v1::CALL_STATE_CONNECTED
                                                            : bridge::v1::CALL_STATE_WAITING,
                                call_rate_hz_);
  // A backend that was already told its rate keeps it: its audio is
  // resampled from the real rate from the first sample on.
  if (backend_rate_hz_ != 0) {
    if (absl::Status configured = ConfigureInboundResampler(); !configured.ok()) {
      return configured;
    }
  }
  // Toward Asterisk: when only silence has been played and nothing is
  // queued, restart playout at the real rate so the caller's leg needs no
  // resampling. Otherwise keep the playout's rate: Asterisk takes any audio
  // kind on any call and resamples it, while restarting would drop or
  // re-time what the backend has queued.
  if (!played_content_ && playout_->empty() && state_ != State::kFallback) {
    StartPlayout(call_rate_hz_);
  }
  return absl::OkStatus();
}

absl::Status Call::ConfigureInboundResampler() {
  if (backend_rate_hz_ == call_rate_hz_) {
    inbound_resampler_.reset();
    return absl::OkStatus();
  }
  auto resampler = dsp::Resampler::Create(call_rate_hz_, backend_rate_hz_);
  if (!resampler.ok()) return resampler.status();
  inbound_resampler_.emplace(std::move(*resampler));
  return absl::OkStatus();
}

void Call::HandleAudio(const wire::Audio& audio) {
  const int rate = listener_->encoding == bridge::v1::AUDIO_ENCODING_LINEAR16
                       ? audio.sample_rate_hz
                       : 8000;  // G.711 is 8 kHz whatever the kind says
  if (!rate_known_ || rate != call_rate_hz_) {
    if (absl::Status adopted = AdoptRate(rate); !adopted.ok()) {
      ProtocolError(adopted);
      return;
    }
  }
  // Asterisk sends in real time; far ahead of the clock is a flood that
  // would take the event loop from the other calls.
  const uint64_t incoming =
      audio.payload.size() / static_cast<size_t>(dsp::BytesPerSample(encoding_));
  if (config_.max_audio_ahead_ms > 0) {
    const int64_t elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(loop_->Now() - start_mono_).count();
    const uint64_t allowed = static_cast<uint64_t>(elapsed_ms + config_.max_audio_ahead_ms) *
                             static_cast<uint64_t>(call_rate_hz_) / 1000;
    if (inbound_offset_ + incoming > allowed) {
      ProtocolError(absl::InvalidArgumentError(
          absl::StrCat("audio flood: ", (inbound_offset_ + incoming) * 1000 / call_rate_hz_,
                       " ms of audio arrived in ", elapsed_ms, " ms (more than ",
                       config_.max_audio_ahead_ms, " ms ahead of real time)")));
      return;
    }
  }
  stats_.set_frames_from_caller(stats_.frames_from_caller() + 1);
  services_->counters->frames_in++;
  services_->counters->bytes_in += audio.payload.size() + wire::kHeaderSize;
  // Backends always get LINEAR16: G.711 is decoded here.
  const size_t samples = audio.payload.size() / static_cast<size_t>(dsp::BytesPerSample(encoding_));
  linear_.resize(samples);
  if (encoding_ == dsp::AudioEncoding::kSlin16) {
    std::memcpy(linear_.data(), audio.payload.data(), samples * sizeof(int16_t));
  } else {
    dsp::DecodeToLinear(encoding_, audio.payload, absl::MakeSpan(linear_));
  }
  // The detector runs from the first audio whether or not the backend wants
  // in-band DTMF yet: a backend may ask for it at accept, and the audio held
  // until then must have been listened to. Delivery filters (Deliver).
  if (!detector_.has_value() && !detector_unavailable_) {
    auto detector = dsp::DtmfDetector::Create(call_rate_hz_);
    if (detector.ok()) {
      detector_.emplace(std::move(*detector));
      detector_base_ = inbound_offset_;
    } else {
      detector_unavailable_ = true;  // rates above what the detector supports
    }
  }
  // Once a backend has the call without asking for in-band DTMF, nobody
  // will: stop spending the detector's time on it.
  if (detector_.has_value() && (detect_inband_dtmf_ || state_ != State::kConnected)) {
    DetectInband(linear_);
  }
  CallEvent event;
  auto* chunk = event.mutable_audio();
  chunk->set_pcm(reinterpret_cast<const char*>(linear_.data()), samples * sizeof(int16_t));
  chunk->set_sample_rate_hz(call_rate_hz_);
  chunk->set_sequence_number(sequence_++);
  chunk->set_offset_samples(inbound_offset_);
  inbound_offset_ += samples;
  Emit(std::move(event));
  if (state_ == State::kAwaitingAudio) {
    loop_->CancelTimer(wait_timer_);
    wait_timer_ = 0;
    ConnectBackend();
  }
}

// --------------------------------------------------------------- backend

CallEvent Call::StartedEvent() const {
  CallEvent event;
  auto* started = event.mutable_started();
  started->set_call_id(call_id_);
  started->set_listener(listener_->name);
  started->set_dialect(listener_->dialect == wire::Dialect::kAsterisk
                           ? bridge::v1::DIALECT_ASTERISK
                           : bridge::v1::DIALECT_EXTENDED);
  started->set_peer_address(peer_address_);
  started->set_call_sample_rate_hz(call_rate_hz_);
  started->set_backend_sample_rate_hz(backend_rate_hz_ != 0 ? backend_rate_hz_ : call_rate_hz_);
  started->set_call_encoding(listener_->encoding);
  *started->mutable_start_time() =
      google::protobuf::util::TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(start_time_));
  return event;
}

void Call::ConnectBackend() {
  state_ = State::kWaitingBackend;
  services_->registry->SetState(call_id_, bridge::v1::CALL_STATE_WAITING, call_rate_hz_);
  std::weak_ptr<Call> weak = self_;
  if (config_.mode == BackendMode::kPush) {
    wait_timer_ = loop_->RunAt(loop_->Now() + ToNanos(config_.accept_timeout), [weak] {
      auto call = weak.lock();
      if (!call || call->state_ != State::kWaitingBackend) return;
      call->wait_timer_ = 0;
      if (call->retry_timer_ != 0) {
        // Between retries: the last attempt failed, so no backend is
        // reachable, not merely slow to answer.
        call->End(
            bridge::v1::CALL_END_REASON_ALL_BACKENDS_REJECTED,
            absl::StrCat("no backend reachable within ",
                         absl::FormatDuration(call->config_.accept_timeout), " (", call->attempts_,
                         " attempts; last: ", call->last_attempt_error_, ")"));
        return;
      }
      call->End(bridge::v1::CALL_END_REASON_ACCEPT_TIMEOUT,
                absl::StrCat("no backend accepted within ",
                             absl::FormatDuration(call->config_.accept_timeout),
                             call->last_attempt_error_.empty()
                                 ? std::string()
                                 : absl::StrCat(" (last: ", call->last_attempt_error_, ")")));
    });
    DialNextBackend();
  } else {
    wait_timer_ = loop_->RunAt(loop_->Now() + ToNanos(config_.claim_timeout), [weak] {
      auto call = weak.lock();
      if (!call || call->state_ != State::kWaitingBackend) return;
      call->wait_timer_ = 0;
      // A claim already on its way wins over the timeout.
      if (!call->services_->dispatcher->Withdraw(call.get())) return;
      call->End(bridge::v1::CALL_END_REASON_CLAIM_TIMEOUT,
                absl::StrCat("no worker claimed the call within ",
                             absl::FormatDuration(call->config_.claim_timeout)));
    });
    services_->dispatcher->Offer(self_);
  }
}

void Call::DialNextBackend() {
  if (link_ != nullptr) link_->Abort();
  ++attempts_;
  PushLink::Options options;
  options.deadline = config_.max_call_duration;
  options.max_queued_audio_events = static_cast<size_t>(config_.backend_queue_ms / 20);
  options.bearer_token = services_->bearer_token;
  options.inbound_latency =
      services_->metrics != nullptr ? &services_->metrics->inbound_latency() : nullptr;
  link_ = services_->push_link_factory
              ? services_->push_link_factory(++link_id_, weak_from_this(), options)
              : PushLink::Start(services_->push_stub, ++link_id_, weak_from_this(), options);
  offered_rate_hz_ = call_rate_hz_;
  link_->SendEvent(StartedEvent());
}

void Call::RetryBackendLater() {
  retry_backoff_ = retry_backoff_ == absl::ZeroDuration()
                       ? kFirstRetryBackoff
                       : std::min(retry_backoff_ * 2, kMaxRetryBackoff);
  std::weak_ptr<Call> weak = self_;
  retry_timer_ = loop_->RunAt(loop_->Now() + ToNanos(retry_backoff_), [weak] {
    auto call = weak.lock();
    if (!call) return;
    call->retry_timer_ = 0;
    if (call->state_ != State::kWaitingBackend || call->ended_) return;
    call->DialNextBackend();
  });
}

void Call::OnClaimed(std::shared_ptr<ClaimStream> stream) {
  std::weak_ptr<Call> weak = weak_from_this();
  ClaimDispatcher* dispatcher = services_->dispatcher;
  loop_->Post([weak, stream = std::move(stream), dispatcher]() mutable {
    if (auto call = weak.lock()) {
      call->HandleClaimed(std::move(stream));
    } else {
      dispatcher->ReturnSlot(std::move(stream));
    }
  });
}

void Call::HandleClaimed(std::shared_ptr<ClaimStream> stream) {
  if (state_ != State::kWaitingBackend) {
    services_->dispatcher->ReturnSlot(std::move(stream));
    return;
  }
  loop_->CancelTimer(wait_timer_);
  wait_timer_ = 0;
  link_ = stream;
  stream->Attach(++link_id_, weak_from_this());
  const bridge::v1::MediaOptions media = stream->claim().media();
  if (absl::Status applied = ApplyMedia(media); !applied.ok()) {
    CallEvent event = StartedEvent();
    link_->SendEvent(std::move(event));
    End(bridge::v1::CALL_END_REASON_BACKEND_LOST,
        absl::StrCat("the claim's media options were refused: ", applied.message()));
    return;
  }
  // The registry says connected before the worker can see CallStarted.
  services_->registry->SetState(call_id_, bridge::v1::CALL_STATE_CONNECTED, call_rate_hz_);
  link_->SendEvent(StartedEvent());
  OnAccepted(media);
}

absl::Status Call::ApplyMedia(const bridge::v1::MediaOptions& media) {
  // 0 means the rate the backend was told: in push mode CallStarted went
  // out before the accept, and the call's rate may have changed since (a
  // late first audio message).
  const int told = offered_rate_hz_ != 0 ? offered_rate_hz_ : call_rate_hz_;
  const int wanted = media.sample_rate_hz() == 0 ? told : static_cast<int>(media.sample_rate_hz());
  if (!wire::AudioKindForRate(wanted).has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sample_rate_hz ", media.sample_rate_hz(),
        " is not supported; use 0 (the rate CallStarted announced) or one of 8000, 12000, "
        "16000, 24000, "
        "32000, 44100, 48000, 96000, 192000"));
  }
  if (media.detect_inband_dtmf() && detector_unavailable_) {
    return absl::InvalidArgumentError(absl::StrCat("in-band DTMF detection is not available at ",
                                                   call_rate_hz_, " Hz (at most 48000)"));
  }
  backend_rate_hz_ = wanted;
  if (absl::Status configured = ConfigureInboundResampler(); !configured.ok()) {
    backend_rate_hz_ = 0;
    return configured;
  }
  if (media.detect_inband_dtmf()) detect_inband_dtmf_ = true;
  return absl::OkStatus();
}

void Call::OnAccepted(const bridge::v1::MediaOptions& /*media*/) {
  state_ = State::kConnected;
  if (services_->metrics != nullptr) {
    services_->metrics->accept_latency().Observe(
        std::chrono::duration<double>(loop_->Now() - start_mono_).count());
  }
  services_->registry->SetState(call_id_, bridge::v1::CALL_STATE_CONNECTED, call_rate_hz_);
  log::Write(log::Level::kInfo, "call_connected", call_id_,
             {{"attempts", attempts_}, {"backend_rate_hz", backend_rate_hz_}});
  FlushHeld();
}

void Call::OnBackendCommand(uint64_t link_id, BackendMessage message) {
  std::weak_ptr<Call> weak = weak_from_this();
  const uint64_t bytes = std::visit([](const auto& m) { return m.ByteSizeLong(); }, message);
  if (!command_budget_.TryReserve(bytes)) {
    // Once: the call ends, and what the backend sends after is dropped.
    if (!command_overflow_.exchange(true)) {
      loop_->Post([weak, link_id] {
        if (auto call = weak.lock()) call->HandleCommandOverflow(link_id);
      });
    }
    return;
  }
  loop_->Post([weak, link_id, bytes, message = std::move(message)]() mutable {
    if (auto call = weak.lock()) {
      call->HandleMessage(link_id, std::move(message));
      call->command_budget_.Release(bytes);
    }
  });
}

void Call::HandleCommandOverflow(uint64_t link_id) {
  if (link_id != link_id_ || ended_) return;
  services_->counters->command_errors++;
  End(bridge::v1::CALL_END_REASON_BACKEND_LOST,
      absl::StrCat("the backend sent more than ", command_budget_.max_bytes() >> 20,
                   " MiB of commands faster than the call could act on them"));
}

void Call::OnBackendClosed(uint64_t link_id, grpc::Status status) {
  std::weak_ptr<Call> weak = weak_from_this();
  loop_->Post([weak, link_id, status = std::move(status)] {
    if (auto call = weak.lock()) call->HandleBackendClosed(link_id, status);
  });
}

void Call::HandleBackendClosed(uint64_t link_id, const grpc::Status& status) {
  if (link_id != link_id_ || ended_) return;
  if (state_ == State::kWaitingBackend && config_.mode == BackendMode::kPush) {
    services_->counters->backend_connect_failures++;
    last_attempt_error_ = absl::StrCat("stream ended before accept: ", status.error_message(),
                                       " (code ", static_cast<int>(status.error_code()), ")");
    log::Write(log::Level::kWarning, "backend_attempt_failed", call_id_,
               {{"attempt", attempts_}, {"error", last_attempt_error_}});
    // Not counted against --backend_attempts: an unreachable or restarting
    // backend is retried until the accept deadline ends the call
    // (ALL_BACKENDS_REJECTED when it passes between retries).
    RetryBackendLater();
    return;
  }
  if (backend_hangup_pending_) return;  // hang-up after playout is under way
  End(bridge::v1::CALL_END_REASON_BACKEND_LOST,
      status.ok() ? std::string("the backend closed its stream without Hangup")
                  : absl::StrCat("backend stream failed: ", status.error_message(), " (code ",
                                 static_cast<int>(status.error_code()), ")"));
}

void Call::Reply(const CallCommand& command, ResultCode code, std::string message,
                 uint32_t backend_rate_hz) {
  Reply(command.command_id(), CommandKindOf(command), code, std::move(message), backend_rate_hz);
}

void Call::Reply(const std::string& command_id, bridge::v1::CommandKind kind, ResultCode code,
                 std::string message, uint32_t backend_rate_hz) {
  if (code != bridge::v1::RESULT_CODE_OK) services_->counters->command_errors++;
  if (code == bridge::v1::RESULT_CODE_OK && command_id.empty()) return;
  if (link_ == nullptr) return;
  CallEvent event;
  auto* result = event.mutable_result();
  result->set_command_id(command_id);
  result->set_command(kind);
  result->set_code(code);
  result->set_message(std::move(message));
  result->set_backend_sample_rate_hz(backend_rate_hz);
  link_->SendEvent(std::move(event));
}

void Call::HandleMessage(uint64_t link_id, BackendMessage message) {
  if (link_id != link_id_ || ended_) return;
  if (auto* push = std::get_if<bridge::v1::HandleCallResponse>(&message)) {
    switch (push->response_case()) {
      case bridge::v1::HandleCallResponse::kAccept:
        HandleAccept(push->accept());
        return;
      case bridge::v1::HandleCallResponse::kReject:
        HandleReject(push->reject());
        return;
      default:
        // A CallCommand, or nothing: an empty command.
        HandleCommand(push->command());
        return;
    }
  }
  const auto& pull = std::get<bridge::v1::ClaimCallRequest>(message);
  if (pull.has_claim()) {
    Reply(pull.claim().command_id(), bridge::v1::COMMAND_KIND_CLAIM,
          bridge::v1::RESULT_CODE_FAILED_PRECONDITION, "this stream has already claimed its call");
    return;
  }
  HandleCommand(pull.command());
}

void Call::HandleAccept(const bridge::v1::AcceptCall& accept) {
  if (state_ != State::kWaitingBackend) {
    Reply(accept.command_id(), bridge::v1::COMMAND_KIND_ACCEPT,
          bridge::v1::RESULT_CODE_FAILED_PRECONDITION, "the call is already accepted");
    return;
  }
  if (absl::Status applied = ApplyMedia(accept.media()); !applied.ok()) {
    Reply(accept.command_id(), bridge::v1::COMMAND_KIND_ACCEPT, bridge::v1::RESULT_CODE_UNSUPPORTED,
          std::string(applied.message()));
    return;
  }
  loop_->CancelTimer(wait_timer_);
  wait_timer_ = 0;
  // The accept's result confirms the rate audio is exchanged at:
  // CallStarted went out before the backend chose it.
  Reply(accept.command_id(), bridge::v1::COMMAND_KIND_ACCEPT, bridge::v1::RESULT_CODE_OK, "",
        static_cast<uint32_t>(backend_rate_hz_));
  OnAccepted(accept.media());
}

void Call::HandleReject(const bridge::v1::RejectCall& reject) {
  if (state_ != State::kWaitingBackend) {
    Reply("", bridge::v1::COMMAND_KIND_REJECT, bridge::v1::RESULT_CODE_FAILED_PRECONDITION,
          "only a call waiting for acceptance can be rejected; send Hangup instead");
    return;
  }
  services_->counters->backend_rejects++;
  const bool busy = reject.reason() == bridge::v1::REJECT_REASON_BUSY;
  last_attempt_error_ = absl::StrCat(busy ? "rejected busy" : "declined",
                                     reject.detail().empty() ? "" : ": ", reject.detail());
  log::Write(log::Level::kInfo, "backend_rejected", call_id_,
             {{"attempt", attempts_}, {"detail", last_attempt_error_}});
  if (busy && ++busy_rejects_ < config_.backend_attempts) {
    DialNextBackend();
  } else {
    End(bridge::v1::CALL_END_REASON_ALL_BACKENDS_REJECTED,
        absl::StrCat(attempts_, " attempt(s); last: ", last_attempt_error_));
  }
}

void Call::HandleCommand(const CallCommand& command) {
  if (state_ != State::kConnected) {
    Reply(command, bridge::v1::RESULT_CODE_FAILED_PRECONDITION,
          "accept the call before sending other commands");
    return;
  }
  switch (command.command_case()) {
    case CallCommand::kPlay:
      DoPlay(command);
      return;
    case CallCommand::kMark:
      if (absl::Status queued = playout_->EnqueueMark(command.mark().name()); !queued.ok()) {
        Reply(command, bridge::v1::RESULT_CODE_RESOURCE_EXHAUSTED, std::string(queued.message()));
        return;
      }
      Reply(command, bridge::v1::RESULT_CODE_OK, "");
      return;
    case CallCommand::kClear:
      DoClear(command);
      return;
    case CallCommand::kSendDtmf:
      DoSendDtmf(command);
      return;
    case CallCommand::kSendControl:
      DoSendControl(command);
      return;
    case CallCommand::kHangup:
      Reply(command, bridge::v1::RESULT_CODE_OK, "");
      if (command.hangup().after_playout()) {
        backend_hangup_pending_ = true;
        playout_->EnqueueHangup();
      } else {
        End(bridge::v1::CALL_END_REASON_BACKEND_HUNG_UP, "the backend sent Hangup");
      }
      return;
    default:
      Reply(command, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
            "the command is empty or of a kind this bridge does not know");
      return;
  }
}

void Call::DoPlay(const CallCommand& command) {
  const bridge::v1::PlayAudio& play = command.play();
  const uint32_t rate = play.sample_rate_hz() == 0 ? backend_rate_hz_ : play.sample_rate_hz();
  if (play.pcm().size() % 2 != 0) {
    Reply(command, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
          absl::StrCat("pcm has ", play.pcm().size(),
                       " bytes; LINEAR16 audio needs an even number of bytes"));
    return;
  }
  if (!wire::AudioKindForRate(static_cast<int>(rate)).has_value()) {
    Reply(command, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
          absl::StrCat("sample_rate_hz ", rate,
                       " is not supported; use 0 (the backend rate) or an AudioSocket rate "
                       "(8000 ... 192000 Hz)"));
    return;
  }
  if (absl::Status prepared = outbound_converter_->Prepare(static_cast<int>(rate));
      !prepared.ok()) {
    Reply(command, bridge::v1::RESULT_CODE_INVALID_ARGUMENT, std::string(prepared.message()));
    return;
  }
  // The queue checks the room in output samples before it copies anything,
  // and converts at most a slice at a time as playout reaches the audio:
  // the work a message costs here is bounded whatever its size and rate.
  absl::Status queued =
      playout_->EnqueuePcm(play.pcm(), static_cast<int>(rate), play.response_id());
  if (!queued.ok()) {
    Reply(command, bridge::v1::RESULT_CODE_RESOURCE_EXHAUSTED, std::string(queued.message()));
    return;
  }
  Reply(command, bridge::v1::RESULT_CODE_OK, "");
  HandleNotices(playout_->TakeNotices(), false);
}

void Call::DoClear(const CallCommand& command) {
  ClearReport report = playout_->Clear(command.clear().response_id());
  CallEvent event;
  auto* cleared = event.mutable_cleared();
  cleared->set_command_id(command.command_id());
  const auto to_ms = [this](uint64_t samples) {
    return static_cast<uint32_t>(samples * 1000 / static_cast<uint64_t>(playout_rate_hz_));
  };
  for (const ResponseAccount& account : report.responses) {
    auto* response = cleared->add_responses();
    response->set_response_id(account.response_id);
    response->set_played_ms(to_ms(account.played_samples));
    response->set_discarded_ms(to_ms(account.discarded_samples));
  }
  cleared->set_discarded_ms(to_ms(report.discarded_samples));
  link_->SendEvent(std::move(event));
  // Then the marks and DTMF the clear resolved.
  HandleNotices(playout_->TakeNotices(), false);
}

void Call::DoSendDtmf(const CallCommand& command) {
  const bridge::v1::SendDtmf& dtmf = command.send_dtmf();
  const uint32_t tone_ms = dtmf.tone_ms() == 0 ? 100 : dtmf.tone_ms();
  const uint32_t gap_ms = dtmf.gap_ms() == 0 ? 50 : dtmf.gap_ms();
  if (tone_ms < 40 || gap_ms < 30 || tone_ms > 10000 || gap_ms > 10000) {
    Reply(command, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
          absl::StrCat("tone_ms must be 40-10000 and gap_ms 30-10000 (got ", tone_ms, " and ",
                       gap_ms, ")"));
    return;
  }
  if (!ValidDtmfDigits(dtmf.digits())) {
    Reply(command, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
          absl::StrCat("digits ", QuoteForError(dtmf.digits()),
                       " must be one or more of 0-9 * # A-D"));
    return;
  }
  // Digits that could never fit are refused before they are copied (a
  // message holds at most gRPC's 4 MiB, so the scan above is bounded too).
  const uint64_t total_ms = dtmf.digits().size() * static_cast<uint64_t>(tone_ms + gap_ms);
  if (total_ms > static_cast<uint64_t>(config_.max_playout_ms)) {
    Reply(command, bridge::v1::RESULT_CODE_RESOURCE_EXHAUSTED,
          absl::StrCat(dtmf.digits().size(), " digit(s) take ", total_ms,
                       " ms to play, more than --max_playout_ms (", config_.max_playout_ms,
                       " ms); send fewer at a time"));
    return;
  }
  // Stock Asterisk takes DTMF only as tones in the audio; the extended
  // dialect signals it with 0x02 start/stop. Either way the result is sent
  // when the last tone has played (kDtmfDone).
  if (absl::Status queued =
          playout_->EnqueueDtmf(dtmf.digits(), tone_ms, gap_ms, command.command_id(),
                                /*inband=*/listener_->dialect == wire::Dialect::kAsterisk);
      !queued.ok()) {
    Reply(command, bridge::v1::RESULT_CODE_RESOURCE_EXHAUSTED, std::string(queued.message()));
  }
}

void Call::DoSendControl(const CallCommand& command) {
  if (listener_->dialect == wire::Dialect::kAsterisk) {
    Reply(command, bridge::v1::RESULT_CODE_UNSUPPORTED,
          "stock Asterisk hangs up on control messages; use a listener with dialect=extended");
    return;
  }
  const bridge::v1::SendControl& control = command.send_control();
  const uint32_t code = control.type() != bridge::v1::CONTROL_TYPE_UNSPECIFIED
                            ? static_cast<uint32_t>(control.type())
                            : control.raw_code();
  if (code == 0 || code > 255) {
    Reply(command, bridge::v1::RESULT_CODE_INVALID_ARGUMENT,
          absl::StrCat("control code ", code, " is out of range; set type or raw_code 1-255"));
    return;
  }
  if (!WriteMessage(wire::Control{static_cast<uint8_t>(code)})) {
    Reply(command, bridge::v1::RESULT_CODE_CALL_ENDED, "the caller is gone");
    return;
  }
  Reply(command, bridge::v1::RESULT_CODE_OK, "");
}

// ---------------------------------------------------------------- events

void Call::EmitDtmf(char digit, bridge::v1::DtmfPhase phase, uint32_t duration_ms,
                    bridge::v1::DtmfSource source, uint64_t call_offset) {
  CallEvent event;
  auto* dtmf = event.mutable_dtmf();
  dtmf->set_digit(std::string(1, digit));
  dtmf->set_phase(phase);
  dtmf->set_duration_ms(duration_ms);
  dtmf->set_source(source);
  dtmf->set_offset_samples(call_offset);  // converted on delivery
  Emit(std::move(event));
}

void Call::DetectInband(absl::Span<const int16_t> samples) {
  detected_.clear();
  detector_->Process(samples, &detected_);
  for (const dsp::DtmfEvent& detected : detected_) {
    const bool begin = detected.kind == dsp::DtmfEvent::Kind::kBegin;
    const int64_t position =
        static_cast<int64_t>(detector_base_) +
        (begin ? detected.start_sample : detected.start_sample + detected.duration_samples);
    EmitDtmf(detected.digit, begin ? bridge::v1::DTMF_PHASE_BEGIN : bridge::v1::DTMF_PHASE_END,
             begin ? 0 : static_cast<uint32_t>(detected.duration_ms),
             bridge::v1::DTMF_SOURCE_INBAND, static_cast<uint64_t>(std::max<int64_t>(0, position)));
  }
}

uint64_t Call::ToBackendOffset(uint64_t call_offset) const {
  if (backend_rate_hz_ == 0 || backend_rate_hz_ == call_rate_hz_) return call_offset;
  return call_offset * static_cast<uint64_t>(backend_rate_hz_) /
         static_cast<uint64_t>(call_rate_hz_);
}

void Call::Deliver(CallEvent event) {
  if (event.has_dtmf()) {
    // Filtering happens here, in delivery order, so held events are judged
    // by what the backend asked for at accept or claim.
    const bridge::v1::DtmfEvent& dtmf = event.dtmf();
    if (dtmf.source() == bridge::v1::DTMF_SOURCE_INBAND && !detect_inband_dtmf_) return;
    const int64_t at_ms =
        static_cast<int64_t>(dtmf.offset_samples() * 1000 / static_cast<uint64_t>(call_rate_hz_));
    if (!dedup_.Admit(dtmf.source(), dtmf.digit()[0], dtmf.phase(), at_ms)) return;
    event.mutable_dtmf()->set_offset_samples(ToBackendOffset(event.dtmf().offset_samples()));
  } else if (event.has_audio() && inbound_resampler_.has_value()) {
    auto* chunk = event.mutable_audio();
    const size_t in_samples = chunk->pcm().size() / 2;
    // A jump in call-rate offsets is audio dropped while held: keep the
    // gap visible at the backend's rate.
    if (chunk->offset_samples() > expected_call_offset_) {
      backend_offset_ += ToBackendOffset(chunk->offset_samples() - expected_call_offset_);
    }
    expected_call_offset_ = chunk->offset_samples() + in_samples;
    linear_.resize(in_samples);
    std::memcpy(linear_.data(), chunk->pcm().data(), in_samples * sizeof(int16_t));
    converted_.resize(inbound_resampler_->MaxOutputSamples(in_samples));
    const size_t produced = inbound_resampler_->Process(linear_, absl::MakeSpan(converted_));
    chunk->set_pcm(reinterpret_cast<const char*>(converted_.data()), produced * sizeof(int16_t));
    chunk->set_sample_rate_hz(static_cast<uint32_t>(backend_rate_hz_));
    chunk->set_offset_samples(backend_offset_);
    backend_offset_ += produced;
  }
  link_->SendEvent(std::move(event));
}

void Call::Emit(CallEvent event) {
  if (state_ == State::kConnected && link_ != nullptr) {
    Deliver(std::move(event));
    return;
  }
  // Held until a backend takes the call; bounded, oldest audio first.
  if (event.has_audio()) {
    held_audio_samples_ += event.audio().pcm().size() / 2;
    const uint64_t limit = static_cast<uint64_t>(config_.hold_audio_ms) * call_rate_hz_ / 1000;
    while (held_audio_samples_ > limit) {
      auto it = std::find_if(held_.begin(), held_.end(),
                             [](const CallEvent& e) { return e.has_audio(); });
      if (it == held_.end()) break;
      const uint64_t samples = it->audio().pcm().size() / 2;
      held_audio_samples_ -= samples;
      held_dropped_samples_ += samples;
      ++held_dropped_events_;
      held_.erase(it);
    }
  }
  held_.push_back(std::move(event));
}

void Call::FlushHeld() {
  // The link's queue bound (--backend_queue_ms) is for a backend falling
  // behind live audio; what the hold kept (up to --hold_audio_ms) was
  // promised in full, so the link takes it on top of that bound.
  const uint64_t held_audio_events = static_cast<uint64_t>(
      std::count_if(held_.begin(), held_.end(), [](const CallEvent& e) { return e.has_audio(); }));
  link_->ExtendAudioQueue(held_audio_events);
  while (!held_.empty()) {
    Deliver(std::move(held_.front()));
    held_.pop_front();
  }
  held_audio_samples_ = 0;
}

// --------------------------------------------------------------- playout

void Call::StartPlayout(int rate_hz) {
  if (!outbound_converter_.has_value() || outbound_converter_->output_rate_hz() != rate_hz) {
    outbound_converter_.emplace(rate_hz);  // the old one converts to the old rate
  }
  playout_rate_hz_ = rate_hz;
  PlayoutConfig playout_config;
  playout_config.sample_rate_hz = playout_rate_hz_;
  playout_config.max_buffer_ms = config_.max_playout_ms;
  playout_config.high_watermark_ms = config_.playout_high_watermark_ms;
  playout_config.low_watermark_ms = config_.playout_low_watermark_ms;
  playout_.emplace(playout_config);
  tone_renderer_.emplace(playout_rate_hz_);
  playout_->set_tone_renderer(&*tone_renderer_);
  playout_->set_converter(&*outbound_converter_);
  frame_.assign(static_cast<size_t>(playout_->samples_per_frame()), 0);
  if (!pacer_.has_value()) {
    pacer_.emplace(loop_->Now(), kFramePeriod);
    OnPlayoutTick();
  }
}

void Call::OnPlayoutTick() {
  playout_timer_ = 0;
  if (state_ == State::kClosed) return;
  const event::MonoTime now = loop_->Now();
  if (pacer_->Lateness(now) > kFramePeriod) services_->counters->playout_late_ticks++;
  pacer_->OnTick(now);

  const bool content = playout_->Tick(absl::MakeSpan(frame_));
  std::vector<PlayoutNotice> notices = playout_->TakeNotices();
  HandleNotices(notices, /*before_frame=*/true);
  if (state_ == State::kClosed) return;
  if (content || config_.send_silence) {
    if (!content) {
      stats_.set_silence_frames(stats_.silence_frames() + 1);
      services_->counters->silence_frames_out++;
    }
    played_content_ |= content;
    // Always signed linear, whatever the listener's encoding: Asterisk reads
    // every audio message it receives as slin at the rate of its kind and
    // transcodes to the channel's codec itself (G.711 bytes would play as
    // noise). The listener's encoding describes only what Asterisk sends.
    encode_buffer_.clear();
    wire::Audio audio;
    audio.sample_rate_hz = playout_rate_hz_;
    audio.payload = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(frame_.data()),
                                        frame_.size() * sizeof(int16_t));
    (void)wire::Encode(audio, listener_->dialect, wire::Peer::kAsterisk, &encode_buffer_);
    WriteBytes(encode_buffer_.data(), encode_buffer_.size(), /*droppable=*/true);
    stats_.set_frames_to_caller(stats_.frames_to_caller() + 1);
  }
  if (state_ == State::kClosed) return;
  HandleNotices(std::move(notices), /*before_frame=*/false);
  if (state_ == State::kClosed) return;
  std::weak_ptr<Call> weak = self_;
  playout_timer_ = loop_->RunAt(pacer_->next_deadline(), [weak] {
    if (auto call = weak.lock()) call->OnPlayoutTick();
  });
}

void Call::HandleNotices(std::vector<PlayoutNotice> notices, bool before_frame) {
  for (PlayoutNotice& notice : notices) {
    using Type = PlayoutNotice::Type;
    if (before_frame != (notice.type == Type::kDtmfStart)) continue;
    if (state_ == State::kClosed) return;
    CallEvent event;
    switch (notice.type) {
      case Type::kDtmfStart:
        if (listener_->dialect == wire::Dialect::kExtended) {
          WriteMessage(wire::DtmfEvent{true, notice.digit, 0});
        }
        continue;
      case Type::kDtmfStop:
        if (listener_->dialect == wire::Dialect::kExtended) {
          WriteMessage(wire::DtmfEvent{false, notice.digit, notice.duration_ms});
        }
        continue;
      case Type::kHangup:
        if (state_ == State::kFallback) {
          CloseSocket(true);
        } else {
          End(bridge::v1::CALL_END_REASON_BACKEND_HUNG_UP, "the backend sent Hangup after playout");
        }
        return;
      case Type::kMarkPlayed:
      case Type::kMarkCleared:
        event.mutable_mark()->set_name(notice.name);
        event.mutable_mark()->set_resolution(notice.type == Type::kMarkPlayed
                                                 ? bridge::v1::MARK_RESOLUTION_PLAYED
                                                 : bridge::v1::MARK_RESOLUTION_CLEARED);
        break;
      case Type::kDtmfDone:
      case Type::kDtmfCancelled: {
        if (notice.type == Type::kDtmfDone && notice.name.empty()) continue;
        auto* result = event.mutable_result();
        result->set_command_id(notice.name);
        result->set_command(bridge::v1::COMMAND_KIND_SEND_DTMF);
        result->set_code(notice.type == Type::kDtmfDone ? bridge::v1::RESULT_CODE_OK
                                                        : bridge::v1::RESULT_CODE_CANCELLED);
        if (notice.type == Type::kDtmfCancelled) result->set_message("removed by a clear");
        break;
      }
      case Type::kUnderrun:
        services_->counters->playout_underruns++;
        stats_.set_playout_underruns(stats_.playout_underruns() + 1);
        [[fallthrough]];
      case Type::kHighWatermark:
      case Type::kLowWatermark:
      case Type::kDrained: {
        auto* playout = event.mutable_playout();
        playout->set_type(
            notice.type == Type::kHighWatermark  ? bridge::v1::PLAYOUT_EVENT_TYPE_HIGH_WATERMARK
            : notice.type == Type::kLowWatermark ? bridge::v1::PLAYOUT_EVENT_TYPE_LOW_WATERMARK
            : notice.type == Type::kUnderrun     ? bridge::v1::PLAYOUT_EVENT_TYPE_UNDERRUN
                                                 : bridge::v1::PLAYOUT_EVENT_TYPE_DRAINED);
        playout->set_buffered_ms(notice.buffered_ms);
        playout->set_underruns(playout_->underruns());
        playout->set_response_id(notice.name);
        break;
      }
    }
    if (state_ == State::kConnected && link_ != nullptr) link_->SendEvent(std::move(event));
  }
}

bool Call::WriteMessage(const wire::Message& message) {
  if (state_ == State::kClosed) return false;
  std::vector<uint8_t> bytes;
  if (absl::Status encoded =
          wire::Encode(message, listener_->dialect, wire::Peer::kAsterisk, &bytes);
      !encoded.ok()) {
    log::Write(log::Level::kError, "encode_failed", call_id_, {{"error", encoded.message()}});
    return false;
  }
  WriteBytes(bytes.data(), bytes.size(), /*droppable=*/false);
  return state_ != State::kClosed;
}

void Call::WriteBytes(const uint8_t* data, size_t size, bool droppable) {
  const size_t unsent = pending_.size() - pending_offset_;
  if (unsent > 0) {
    // Asterisk is behind. Audio frames beyond the bound are dropped whole
    // (never a partial message); a stall past the timeout ends the call.
    const size_t limit = static_cast<size_t>(config_.max_unsent_ms) * playout_rate_hz_ / 1000 * 2;
    if (droppable && unsent >= limit) {
      services_->counters->outbound_dropped_frames++;
      if (loop_->Now() - stalled_since_ > ToNanos(config_.write_stall_timeout)) {
        End(bridge::v1::CALL_END_REASON_CALLER_UNRESPONSIVE,
            absl::StrCat("Asterisk has not read for ",
                         absl::FormatDuration(config_.write_stall_timeout)));
      }
      return;
    }
    pending_.insert(pending_.end(), data, data + size);
    return;
  }
  // One write per message, header and payload together.
  ssize_t n = ::send(fd_, data, size, MSG_NOSIGNAL);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      End(bridge::v1::CALL_END_REASON_CALLER_HUNG_UP,
          absl::StrCat("write: ", std::strerror(errno)));
      return;
    }
    n = 0;
  }
  services_->counters->bytes_out += static_cast<uint64_t>(n);
  stats_.set_bytes_to_caller(stats_.bytes_to_caller() + static_cast<uint64_t>(n));
  if (droppable) services_->counters->frames_out++;
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

void Call::FlushPending() {
  while (pending_offset_ < pending_.size()) {
    const ssize_t n = ::send(fd_, pending_.data() + pending_offset_,
                             pending_.size() - pending_offset_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      End(bridge::v1::CALL_END_REASON_CALLER_HUNG_UP,
          absl::StrCat("write: ", std::strerror(errno)));
      return;
    }
    pending_offset_ += static_cast<size_t>(n);
    services_->counters->bytes_out += static_cast<uint64_t>(n);
    stats_.set_bytes_to_caller(stats_.bytes_to_caller() + static_cast<uint64_t>(n));
    stalled_since_ = loop_->Now();
  }
  pending_.clear();
  pending_offset_ = 0;
  if (watching_writable_) {
    watching_writable_ = false;
    (void)loop_->SetWritable(fd_, this, false);
  }
}

void Call::OnWritable() {
  if (state_ == State::kClosed) return;
  FlushPending();
}

// ----------------------------------------------------------------- ending

void Call::End(CallEndReason reason, std::string detail, const wire::Error* asterisk_error) {
  if (ended_ || state_ == State::kClosed) return;
  ended_ = true;
  const State previous = state_;
  loop_->CancelTimer(wait_timer_);
  wait_timer_ = 0;
  loop_->CancelTimer(retry_timer_);
  retry_timer_ = 0;
  loop_->CancelTimer(idle_timer_);
  idle_timer_ = 0;
  loop_->CancelTimer(partial_timer_);
  partial_timer_ = 0;
  if (previous == State::kWaitingBackend && config_.mode == BackendMode::kPull) {
    services_->dispatcher->Withdraw(this);
  }
  // Every mark and DTMF still queued resolves now, exactly once.
  std::vector<PlayoutNotice> leftovers =
      playout_.has_value() ? playout_->Abandon() : std::vector<PlayoutNotice>{};
  CallEvent ended;
  auto* end = ended.mutable_ended();
  end->set_reason(reason);
  end->set_detail(detail);
  if (asterisk_error != nullptr) {
    auto* error = end->mutable_asterisk_error();
    const uint8_t flags = asterisk_error->flags();
    error->set_flags(flags);
    error->set_caller_hangup(flags & wire::kErrorCallerHangup);
    error->set_frame_forwarding(flags & wire::kErrorFrameForwarding);
    error->set_memory(flags & wire::kErrorMemory);
    error->set_payload(asterisk_error->payload.data(), asterisk_error->payload.size());
  }
  // Audio dropped while held is counted at the call's rate; the link drops
  // chunks already converted to the backend's rate.
  const uint64_t link_dropped = link_ != nullptr ? link_->dropped_audio_samples() : 0;
  const uint64_t link_rate =
      static_cast<uint64_t>(backend_rate_hz_ != 0 ? backend_rate_hz_ : call_rate_hz_);
  const uint64_t call_rate = static_cast<uint64_t>(call_rate_hz_);
  stats_.set_inbound_dropped_ms(held_dropped_samples_ * 1000 / call_rate +
                                link_dropped * 1000 / link_rate);
  services_->counters->inbound_dropped_samples +=
      held_dropped_samples_ + link_dropped * call_rate / link_rate;
  services_->counters->inbound_dropped_frames +=
      held_dropped_events_ + (link_ != nullptr ? link_->dropped_audio_events() : 0);
  *end->mutable_stats() = stats_;

  if (link_ != nullptr && (previous == State::kConnected || previous == State::kWaitingBackend)) {
    if (previous == State::kConnected) {
      for (const PlayoutNotice& notice : leftovers) {
        CallEvent event;
        if (notice.type == PlayoutNotice::Type::kMarkCleared) {
          event.mutable_mark()->set_name(notice.name);
          event.mutable_mark()->set_resolution(bridge::v1::MARK_RESOLUTION_CALL_ENDED);
        } else if (notice.type == PlayoutNotice::Type::kDtmfCancelled) {
          event.mutable_result()->set_command_id(notice.name);
          event.mutable_result()->set_command(bridge::v1::COMMAND_KIND_SEND_DTMF);
          event.mutable_result()->set_code(bridge::v1::RESULT_CODE_CALL_ENDED);
          event.mutable_result()->set_message("the call ended before the tones played");
        } else {
          continue;
        }
        link_->SendEvent(std::move(event));
      }
    }
    link_->SendEvent(ended);
    link_->CloseAfterQueued();
    // A backend that neither finishes nor reads must not keep the stream
    // forever: abandon it after a grace period.
    loop_->RunAt(loop_->Now() + std::chrono::seconds(5), [link = link_] { link->Abort(); });
  }
  state_ = State::kFallback;  // until the socket closes below or after the fallback audio

  services_->counters->calls_ended[reason]++;
  services_->counters->active_calls--;
  if (registered_) services_->registry->Remove(call_id_, reason, detail);
  log::Write(reason == bridge::v1::CALL_END_REASON_PROTOCOL_ERROR ? log::Level::kWarning
                                                                  : log::Level::kInfo,
             "call_ended", call_id_,
             {{"reason", std::string(ReasonName(reason))},
              {"detail", detail},
              {"frames_in", stats_.frames_from_caller()},
              {"frames_out", stats_.frames_to_caller()},
              {"bytes_in", stats_.bytes_from_caller()},
              {"bytes_out", stats_.bytes_to_caller()},
              {"inbound_dropped_ms", stats_.inbound_dropped_ms()},
              {"underruns", stats_.playout_underruns()},
              {"duration_ms", absl::ToInt64Milliseconds(absl::Now() - start_time_)}});

  if (CallerSideEnd(reason)) {
    CloseSocket(false);
    return;
  }
  const std::vector<int16_t>* fallback = services_->fallback_audio;
  if (WantsFallback(reason) && fallback != nullptr && !fallback->empty()) {
    // The caller hears the fallback message, then the hang-up.
    std::vector<int16_t> audio = *fallback;
    if (services_->fallback_sample_rate_hz != playout_rate_hz_) {
      auto resampler = dsp::Resampler::Create(services_->fallback_sample_rate_hz, playout_rate_hz_);
      if (resampler.ok()) {
        audio.resize(resampler->MaxOutputSamples(fallback->size()));
        audio.resize(resampler->Process(*fallback, absl::MakeSpan(audio)));
      }
    }
    StartPlayout(playout_rate_hz_);
    (void)playout_->EnqueueAudio(audio, "fallback");
    playout_->EnqueueHangup();
    return;
  }
  CloseSocket(true);
}

void Call::CloseSocket(bool send_hangup) {
  if (state_ == State::kClosed) return;
  bool hangup_sent = false;
  if (send_hangup && pending_offset_ == pending_.size()) {
    const uint8_t hangup[3] = {0x00, 0x00, 0x00};
    hangup_sent = ::send(fd_, hangup, sizeof(hangup), MSG_NOSIGNAL | MSG_DONTWAIT) == 3;
  }
  state_ = State::kClosed;
  services_->counters->open_connections--;
  loop_->CancelTimer(uuid_timer_);
  loop_->CancelTimer(wait_timer_);
  loop_->CancelTimer(playout_timer_);
  loop_->CancelTimer(retry_timer_);
  loop_->CancelTimer(idle_timer_);
  loop_->CancelTimer(partial_timer_);
  if (hangup_sent) {
    // Asterisk's channel driver writes the bridged audio from another
    // thread than the one reading our hang-up: closing now would make its
    // next write fail ("Broken pipe", an error in its log). Half-close and
    // read until Asterisk closes its end, for a bounded time.
    ::shutdown(fd_, SHUT_WR);
    lingering_ = true;
    (void)loop_->SetWritable(fd_, this, false);
    std::weak_ptr<Call> weak = self_;
    linger_timer_ = loop_->RunAt(loop_->Now() + kLingerAfterHangup, [weak] {
      if (auto call = weak.lock()) call->FinishClose();
    });
    return;
  }
  FinishClose();
}

void Call::DrainLingering() {
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

void Call::FinishClose() {
  if (fd_ < 0) return;
  loop_->CancelTimer(linger_timer_);
  lingering_ = false;
  loop_->Unwatch(fd_);
  ::shutdown(fd_, SHUT_RDWR);
  ::close(fd_);
  fd_ = -1;
  // Release ourselves after this event-loop round: the loop may still hold
  // our handler pointer for this batch of events.
  loop_->Post([self = std::move(self_)] {});
}

}  // namespace audiosocket
