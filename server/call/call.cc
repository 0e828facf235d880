// Longer than the ~400 lines a server file aims at, for a reason: each
// stage's own work lives in its folder (the connection, the media
// pipelines, playout, the backend connectors, the commands), and what stays
// here is the one state machine that sequences them (UUID, rate, backend,
// commands, notices, end). Split further, one state's transitions would be
// spread over several files.

#include "server/call/call.h"

#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "server/backend/command_kind.h"
#include "server/call/call_end_notifier.h"
#include "server/call/call_events.h"
#include "server/playout/notice_events.h"

namespace audiosocket {
namespace {

using bridge::v1::CallCommand;
using bridge::v1::CallEndReason;
using bridge::v1::CallEvent;
using bridge::v1::ResultCode;

std::chrono::nanoseconds ToNanos(absl::Duration d) { return absl::ToChronoNanoseconds(d); }

}  // namespace

Call::Call(event::Dispatcher* loop, int fd, const ListenerConfig* listener,
           std::string peer_address, const CallServices* services)
    : loop_(loop),
      listener_(listener),
      peer_address_(std::move(peer_address)),
      services_(services),
      config_(*services->config),
      // G.711 is 8 kHz whatever the audio kind says.
      call_rate_hz_(listener->encoding == bridge::v1::AUDIO_ENCODING_LINEAR16
                        ? listener->default_sample_rate_hz
                        : 8000),
      connection_(loop, fd, CallerConnection::OptionsFor(*listener, *services->config),
                  services->counters, this),
      caller_audio_(EncodingOf(listener->encoding)),
      feed_(services->config->hold_audio_ms),
      commands_(listener->dialect, services->config->max_playout_ms, this) {
  feed_.set_detect_inband(listener->detect_inband_dtmf);
  (void)feed_.SetRates(call_rate_hz_, 0);
}

Call::~Call() = default;

void Call::Start() {
  self_ = shared_from_this();
  if (absl::Status watched = connection_.Start(self_); !watched.ok()) {
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

// ------------------------------------------------------------- the caller

void Call::OnCallerMessage(const wire::Message& message) {
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
  if (std::holds_alternative<wire::CallUuid>(message)) {
    ProtocolError(absl::InvalidArgumentError("a second UUID (0x01) arrived mid-call"));
  } else if (const auto* audio = std::get_if<wire::Audio>(&message)) {
    HandleAudio(*audio);
  } else if (const auto* digit = std::get_if<wire::DtmfDigit>(&message)) {
    feed_.Emit(DtmfCallEvent(digit->digit, bridge::v1::DTMF_PHASE_END_ONLY, 0,
                             bridge::v1::DTMF_SOURCE_SIGNALLED, inbound_offset_));
  } else if (const auto* dtmf = std::get_if<wire::DtmfEvent>(&message)) {
    feed_.Emit(DtmfCallEvent(
        dtmf->digit, dtmf->start ? bridge::v1::DTMF_PHASE_BEGIN : bridge::v1::DTMF_PHASE_END,
        dtmf->start ? 0 : dtmf->duration_ms, bridge::v1::DTMF_SOURCE_SIGNALLED, inbound_offset_));
  } else if (const auto* control = std::get_if<wire::Control>(&message)) {
    CallEvent event;
    auto* out = event.mutable_control();
    out->set_raw_code(control->code);
    out->set_type(bridge::v1::ControlType_IsValid(control->code)
                      ? static_cast<bridge::v1::ControlType>(control->code)
                      : bridge::v1::CONTROL_TYPE_UNSPECIFIED);
    feed_.Emit(std::move(event));
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

void Call::OnCallerProtocolError(const absl::Status& status) { ProtocolError(status); }

void Call::OnCallerClosed(std::string detail) {
  if (state_ == State::kAwaitingUuid) {
    // Info, not warning: load-balancer port checks connect and close too.
    CloseBeforeUuid(services_->counters->connections_rejected_caller_closed, "caller_closed",
                    absl::StrCat(detail, " before its UUID"), log::Level::kInfo, false);
  } else if (state_ == State::kFallback) {
    CloseSocket(false);
  } else {
    End(bridge::v1::CALL_END_REASON_CALLER_HUNG_UP, std::move(detail));
  }
}

void Call::OnCallerIdle(std::string detail) {
  if (ended_) return;
  End(bridge::v1::CALL_END_REASON_CALLER_IDLE, std::move(detail));
}

void Call::OnCallerWriteFailed(bool stalled, std::string detail) {
  End(stalled ? bridge::v1::CALL_END_REASON_CALLER_UNRESPONSIVE
              : bridge::v1::CALL_END_REASON_CALLER_HUNG_UP,
      std::move(detail));
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

void Call::HandleUuid(const wire::CallUuid& uuid) {
  loop_->CancelTimer(uuid_timer_);
  uuid_timer_ = 0;
  call_id_ = uuid.ToString();
  start_time_ = absl::Now();
  start_mono_ = loop_->Now();
  if (absl::Status added =
          services_->registry->Add(WaitingCallInfo(Facts(), call_rate_hz_), weak_from_this());
      !added.ok()) {
    call_id_.clear();  // not ours to unregister
    ProtocolError(added);
    return;
  }
  registered_ = true;
  state_ = State::kAwaitingAudio;
  connection_.StartIdleWatch();
  services_->counters->calls_started++;
  services_->counters->active_calls++;
  log::Write(log::Level::kInfo, "call_started", call_id_,
             {{"listener", listener_->name},
              {"dialect", std::string(wire::DialectName(listener_->dialect))},
              {"peer", peer_address_}});
  // Silence starts right after the UUID: some Asterisk versions stall their
  // own audio until the server sends something.
  Playout::Options options;
  options.dialect = listener_->dialect;
  options.max_playout_ms = config_.max_playout_ms;
  options.high_watermark_ms = config_.playout_high_watermark_ms;
  options.low_watermark_ms = config_.playout_low_watermark_ms;
  options.send_silence = config_.send_silence;
  if (services_->metrics != nullptr) options.tick_lateness = &services_->metrics->tick_lateness();
  options.ticker = services_->ticker;
  playout_.emplace(loop_, options, services_->counters, this, self_);
  connection_.set_max_unsent_bytes(static_cast<size_t>(config_.max_unsent_ms) * call_rate_hz_ /
                                   1000 * 2);
  playout_->Restart(call_rate_hz_);
  if (state_ == State::kClosed) return;
  std::weak_ptr<Call> weak = self_;
  audio_timer_ = loop_->RunAt(loop_->Now() + ToNanos(config_.first_audio_wait), [weak] {
    auto call = weak.lock();
    if (!call || call->state_ != State::kAwaitingAudio) return;
    call->audio_timer_ = 0;
    call->rate_known_ = true;  // the listener's default stands
    call->ConnectBackend();
  });
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
  const int64_t elapsed_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(loop_->Now() - start_mono_).count();
  if (absl::Status paced =
          CheckRealTimePace(inbound_offset_ + caller_audio_.SamplesIn(audio.payload.size()),
                            call_rate_hz_, elapsed_ms, config_.max_audio_ahead_ms);
      !paced.ok()) {
    ProtocolError(paced);
    return;
  }
  stats_.set_frames_from_caller(stats_.frames_from_caller() + 1);
  services_->counters->frames_in++;
  services_->counters->bytes_in += audio.payload.size() + wire::kHeaderSize;
  // Backends always get LINEAR16: G.711 is decoded here.
  absl::Span<const int16_t> linear = caller_audio_.Decode(audio.payload);
  // Once a backend has the call without asking for in-band DTMF, nobody
  // will: stop spending the detector's time on it.
  if (state_ == State::kConnected && !feed_.detect_inband()) caller_audio_.StopDetecting();
  detected_.clear();
  caller_audio_.DetectDtmf(linear, call_rate_hz_, inbound_offset_, &detected_);
  for (CallEvent& dtmf : detected_) feed_.Emit(std::move(dtmf));
  // From the link when it keeps written events: the frame reuses an
  // earlier frame's chunk and bytes.
  CallEvent event = link_ != nullptr ? link_->SpareAudioEvent() : CallEvent();
  auto* chunk = event.mutable_audio();
  // assign, not set_pcm(data, size): that builds a temporary string and
  // moves it in, one more allocation per frame.
  chunk->mutable_pcm()->assign(reinterpret_cast<const char*>(linear.data()),
                               linear.size() * sizeof(int16_t));
  chunk->set_sample_rate_hz(call_rate_hz_);
  chunk->set_sequence_number(sequence_++);
  chunk->set_offset_samples(inbound_offset_);
  inbound_offset_ += linear.size();
  feed_.Emit(std::move(event));
  if (state_ == State::kAwaitingAudio) {
    loop_->CancelTimer(audio_timer_);
    audio_timer_ = 0;
    ConnectBackend();
  }
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
  if (absl::Status configured = feed_.SetRates(call_rate_hz_, backend_rate_hz_); !configured.ok()) {
    return configured;
  }
  // Toward Asterisk: when only silence has been played and nothing is
  // queued, restart playout at the real rate so the caller's leg needs no
  // resampling. Otherwise keep the playout's rate: Asterisk takes any audio
  // kind on any call and resamples it, while restarting would drop or
  // re-time what the backend has queued.
  if (!playout_->played_content() && playout_->queue().empty() && state_ != State::kFallback) {
    connection_.set_max_unsent_bytes(static_cast<size_t>(config_.max_unsent_ms) * call_rate_hz_ /
                                     1000 * 2);
    playout_->Restart(call_rate_hz_);
  }
  return absl::OkStatus();
}

// ------------------------------------------------------------ the backend

CallEvent Call::StartedEvent() const {
  return CallStartedEvent(Facts(), call_rate_hz_,
                          backend_rate_hz_ != 0 ? backend_rate_hz_ : call_rate_hz_);
}

CallFacts Call::Facts() const {
  return CallFacts{call_id_,      listener_->name, listener_->dialect, listener_->encoding,
                   peer_address_, start_time_};
}

void Call::ConnectBackend() {
  state_ = State::kWaitingBackend;
  services_->registry->SetState(call_id_, bridge::v1::CALL_STATE_WAITING, call_rate_hz_);
  BackendConnector::Context context;
  context.loop = loop_;
  context.host = this;
  context.owner = self_;
  context.observer = self_;
  context.call_id = call_id_;
  context.listener = listener_->name;
  context.counters = services_->counters;
  connector_ = services_->connect_backend(std::move(context));
  connector_->Connect();
}

void Call::UseLink(std::shared_ptr<BackendLink> link, uint64_t link_id) {
  link_ = std::move(link);
  link_id_ = link_id;
}

absl::Status Call::ApplyMedia(const bridge::v1::MediaOptions& media, int announced_rate_hz) {
  const int wanted =
      media.sample_rate_hz() == 0 ? announced_rate_hz : static_cast<int>(media.sample_rate_hz());
  if (!wire::AudioKindForRate(wanted).has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sample_rate_hz ", media.sample_rate_hz(),
        " is not supported; use 0 (the rate CallStarted announced) or one of 8000, 12000, "
        "16000, 24000, 32000, 44100, 48000, 96000, 192000"));
  }
  if (media.detect_inband_dtmf() && !caller_audio_.detection_available()) {
    return absl::InvalidArgumentError(absl::StrCat("in-band DTMF detection is not available at ",
                                                   call_rate_hz_, " Hz (at most 48000)"));
  }
  if (absl::Status configured = feed_.SetRates(call_rate_hz_, wanted); !configured.ok()) {
    (void)feed_.SetRates(call_rate_hz_, backend_rate_hz_);
    return configured;
  }
  backend_rate_hz_ = wanted;
  if (media.detect_inband_dtmf()) feed_.set_detect_inband(true);
  return absl::OkStatus();
}

void Call::OnBackendConnected(int attempts, bool announce) {
  // The registry says connected before the backend can see CallStarted.
  services_->registry->SetState(call_id_, bridge::v1::CALL_STATE_CONNECTED, call_rate_hz_);
  if (announce) link_->SendEvent(StartedEvent());
  state_ = State::kConnected;
  if (services_->metrics != nullptr) {
    services_->metrics->accept_latency().Observe(
        std::chrono::duration<double>(loop_->Now() - start_mono_).count());
  }
  log::Write(log::Level::kInfo, "call_connected", call_id_,
             {{"attempts", attempts}, {"backend_rate_hz", backend_rate_hz_}});
  feed_.Connect(link_.get());
}

bool Call::OnBackendCommandBytes(uint64_t link_id, BackendMessageKind kind,
                                 absl::string_view bytes) {
  // The arena is the loop's: a link elsewhere takes the general way, as do
  // commands past the arena's bound (see kMaxCommandArenaBytes).
  if (!loop_->InDispatcherThread() ||
      command_arena_.SpaceAllocated() + play_bytes_.size() > kMaxCommandArenaBytes) {
    return LinkObserver::OnBackendCommandBytes(link_id, kind, bytes);
  }
  // The bytes as sent stand for the command's size: reserved before the
  // parse, so a backend past its budget costs no memory.
  const uint64_t size = bytes.size();
  if (!command_budget_.TryReserve(size)) {
    if (!command_overflow_.exchange(true)) {
      QueueLinkReport(LinkReport{link_id, 0, CommandOverflow{}});
    }
    return true;
  }
  // A play (nearly every command a backend sends) is copied, not parsed.
  // Its copies grow to the bound at most, as the arena does.
  const size_t play_bytes_room = kMaxCommandArenaBytes - command_arena_.SpaceAllocated();
  std::optional<PlayCommandFields> play;
  if (play_bytes_.size() + bytes.size() <= play_bytes_room &&
      (play = DecodePlayCommand(bytes)).has_value()) {
    const size_t offset = play_bytes_.size();
    if (offset + bytes.size() > play_bytes_.capacity()) {
      play_bytes_.reserve(
          std::min(std::max(offset + bytes.size(), 2 * play_bytes_.capacity()), play_bytes_room));
    }
    play_bytes_.insert(play_bytes_.end(), bytes.begin(), bytes.end());
    QueueLinkReport(LinkReport{link_id, size, QueuedPlay{offset, bytes.size(), *play}});
    return true;
  }
  command_arena_used_ = true;
  BackendMessageRef message;
  bool parsed;
  if (kind == BackendMessageKind::kHandleCallResponse) {
    auto* response =
        google::protobuf::Arena::CreateMessage<bridge::v1::HandleCallResponse>(&command_arena_);
    parsed = response->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
    message = response;
  } else {
    auto* request =
        google::protobuf::Arena::CreateMessage<bridge::v1::ClaimCallRequest>(&command_arena_);
    parsed = request->ParseFromArray(bytes.data(), static_cast<int>(bytes.size()));
    message = request;
  }
  if (!parsed) {
    command_budget_.Release(size);
    return false;
  }
  QueueLinkReport(LinkReport{link_id, size, message});
  return true;
}

void Call::OnBackendCommand(uint64_t link_id, BackendMessage message) {
  const uint64_t bytes = std::visit([](const auto& m) { return m.ByteSizeLong(); }, message);
  if (!command_budget_.TryReserve(bytes)) {
    // Once: the call ends, and what the backend sends after is dropped.
    if (!command_overflow_.exchange(true)) Report(LinkReport{link_id, 0, CommandOverflow{}});
    return;
  }
  Report(LinkReport{link_id, bytes, std::move(message)});
}

void Call::HandleCommandOverflow(uint64_t link_id) {
  if (link_id != link_id_ || ended_) return;
  services_->counters->command_errors++;
  End(bridge::v1::CALL_END_REASON_BACKEND_LOST,
      absl::StrCat("the backend sent more than ", command_budget_.max_bytes() >> 20,
                   " MiB of commands faster than the call could act on them"));
}

void Call::OnBackendClosed(uint64_t link_id, grpc::Status status) {
  Report(LinkReport{link_id, 0, std::move(status)});
}

void Call::Report(LinkReport report) {
  // A link on this loop reports from inside the loop's round: queued at
  // once. Links on gRPC's threads post it, in the order they report.
  if (loop_->InDispatcherThread()) {
    QueueLinkReport(std::move(report));
    return;
  }
  std::weak_ptr<Call> weak = weak_from_this();
  loop_->Post([weak, report = std::move(report)]() mutable {
    if (auto call = weak.lock()) call->QueueLinkReport(std::move(report));
  });
}

void Call::QueueLinkReport(LinkReport report) {
  link_reports_.push_back(std::move(report));
  if (link_reports_due_) return;
  link_reports_due_ = true;
  std::weak_ptr<Call> weak = weak_from_this();
  loop_->RunAfterRound([weak] {
    if (auto call = weak.lock()) call->HandleLinkReports();
  });
}

void Call::HandleLinkReports() {
  // Handling one may queue another (End aborts the link, which reports its
  // close at once): it is handled in this pass, after those before it.
  for (size_t handled = 0; handled < kReportsPerRound && link_reports_next_ < link_reports_.size();
       ++handled) {
    LinkReport report = std::move(link_reports_[link_reports_next_++]);
    if (auto* message = std::get_if<BackendMessage>(&report.what)) {
      HandleMessage(report.link_id, RefOf(*message));
      command_budget_.Release(report.bytes);
    } else if (auto* parsed = std::get_if<BackendMessageRef>(&report.what)) {
      HandleMessage(report.link_id, *parsed);
      command_budget_.Release(report.bytes);
    } else if (auto* play = std::get_if<QueuedPlay>(&report.what)) {
      HandlePlay(report.link_id, *play);
      command_budget_.Release(report.bytes);
    } else if (auto* status = std::get_if<grpc::Status>(&report.what)) {
      HandleBackendClosed(report.link_id, *status);
    } else {
      HandleCommandOverflow(report.link_id);
    }
  }
  if (link_reports_next_ < link_reports_.size()) {
    std::weak_ptr<Call> weak = weak_from_this();
    loop_->Post([weak] {
      if (auto call = weak.lock()) call->HandleLinkReports();
    });
    return;
  }
  link_reports_due_ = false;
  link_reports_next_ = 0;
  link_reports_.clear();
  // Nothing refers to the arena's commands any more.
  if (command_arena_used_) {
    command_arena_.Reset();
    command_arena_used_ = false;
  }
  play_bytes_.clear();
  if (play_bytes_.capacity() > kPlayBytesKept) std::vector<char>().swap(play_bytes_);
  constexpr size_t kKeptCapacity = 4 * kReportsPerRound;
  if (link_reports_.capacity() > kKeptCapacity) link_reports_.shrink_to_fit();
}

void Call::HandleBackendClosed(uint64_t link_id, const grpc::Status& status) {
  if (link_id != link_id_ || ended_) return;
  if (state_ == State::kWaitingBackend && connector_->HandleLinkClosedWhileWaiting(status)) return;
  if (backend_hangup_pending_) return;  // hang-up after playout is under way
  End(bridge::v1::CALL_END_REASON_BACKEND_LOST,
      status.ok() ? std::string("the backend closed its stream without Hangup")
                  : absl::StrCat("backend stream failed: ", status.error_message(), " (code ",
                                 static_cast<int>(status.error_code()), ")"));
}

void Call::HandleMessage(uint64_t link_id, BackendMessageRef message) {
  if (link_id != link_id_ || ended_) return;
  if (connector_->HandleSetupMessage(message, state_ == State::kWaitingBackend)) return;
  // What is left is an in-call command (or none: an empty message).
  const CallCommand& command =
      std::visit([](const auto* m) -> const CallCommand& { return m->command(); }, message);
  if (RefusedBeforeConnected(command.command_id(), CommandKindOf(command))) return;
  commands_.Execute(command, *playout_, backend_rate_hz_);
}

void Call::HandlePlay(uint64_t link_id, const QueuedPlay& play) {
  // As HandleMessage, for a command no connector takes.
  if (link_id != link_id_ || ended_) return;
  const absl::string_view bytes = absl::string_view(play_bytes_.data() + play.offset, play.size);
  const CallCommands::PlayRequest request{play.fields.command_id.In(bytes),
                                          play.fields.pcm.In(bytes), play.fields.sample_rate_hz,
                                          play.fields.response_id.In(bytes)};
  if (RefusedBeforeConnected(request.command_id, bridge::v1::COMMAND_KIND_PLAY)) return;
  commands_.Play(request, *playout_, backend_rate_hz_);
}

bool Call::RefusedBeforeConnected(absl::string_view command_id, bridge::v1::CommandKind kind) {
  if (state_ == State::kConnected) return false;
  Reply(std::string(command_id), kind, bridge::v1::RESULT_CODE_FAILED_PRECONDITION,
        "accept the call before sending other commands", 0);
  return true;
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

void Call::SendToBackend(CallEvent event) { link_->SendEvent(std::move(event)); }

bool Call::WriteToCaller(const wire::Message& message) {
  if (state_ == State::kClosed) return false;
  return connection_.WriteMessage(message);
}

void Call::HangupFromBackend(bool after_playout) {
  if (after_playout) {
    backend_hangup_pending_ = true;
    playout_->queue().EnqueueHangup();
  } else {
    End(bridge::v1::CALL_END_REASON_BACKEND_HUNG_UP, "the backend sent Hangup");
  }
}

// ---------------------------------------------------------------- playout

void Call::OnPlayoutFrame(absl::Span<const uint8_t> message) {
  if (state_ == State::kClosed) return;
  connection_.Write(message.data(), message.size(), /*droppable=*/true);
}

void Call::OnPlayoutNotices(const std::vector<PlayoutNotice>& notices, bool before_frame) {
  for (const PlayoutNotice& notice : notices) {
    using Type = PlayoutNotice::Type;
    if (before_frame != (notice.type == Type::kDtmfStart)) continue;
    if (state_ == State::kClosed) return;
    switch (notice.type) {
      case Type::kDtmfStart:
      case Type::kDtmfStop:
        if (listener_->dialect == wire::Dialect::kExtended) {
          const bool start = notice.type == Type::kDtmfStart;
          WriteToCaller(wire::DtmfEvent{start, notice.digit, start ? 0 : notice.duration_ms});
        }
        continue;
      case Type::kHangup:
        if (state_ == State::kFallback) {
          CloseSocket(true);
        } else {
          End(bridge::v1::CALL_END_REASON_BACKEND_HUNG_UP, "the backend sent Hangup after playout");
        }
        return;
      case Type::kUnderrun:
        services_->counters->playout_underruns++;
        stats_.set_playout_underruns(stats_.playout_underruns() + 1);
        break;
      default:
        break;
    }
    std::optional<CallEvent> event = NoticeEvent(notice, playout_->queue().underruns());
    if (event.has_value() && state_ == State::kConnected && link_ != nullptr) {
      link_->SendEvent(std::move(*event));
    }
  }
}

// ----------------------------------------------------------------- ending

void Call::End(CallEndReason reason, std::string detail, const wire::Error* asterisk_error) {
  if (ended_ || state_ == State::kClosed) return;
  ended_ = true;
  const State previous = state_;
  loop_->CancelTimer(audio_timer_);
  audio_timer_ = 0;
  if (connector_ != nullptr) connector_->Stop();
  feed_.Disconnect();
  // Every mark and DTMF still queued resolves exactly once, a slice per
  // round, before the CallEnded (CallEndNotifier).
  PlayoutQueue::Leftovers leftovers =
      playout_.has_value() ? playout_->queue().Abandon() : PlayoutQueue::Leftovers();
  // Audio dropped while held is counted at the call's rate; the link drops
  // chunks already converted to the backend's rate.
  const uint64_t link_dropped = link_ != nullptr ? link_->dropped_audio_samples() : 0;
  const uint64_t link_rate =
      static_cast<uint64_t>(backend_rate_hz_ != 0 ? backend_rate_hz_ : call_rate_hz_);
  const uint64_t call_rate = static_cast<uint64_t>(call_rate_hz_);
  stats_.set_inbound_dropped_ms(feed_.held_dropped_samples() * 1000 / call_rate +
                                link_dropped * 1000 / link_rate);
  services_->counters->inbound_dropped_samples +=
      feed_.held_dropped_samples() + link_dropped * call_rate / link_rate;
  services_->counters->inbound_dropped_frames +=
      feed_.held_dropped_events() + (link_ != nullptr ? link_->dropped_audio_events() : 0);
  if (playout_.has_value()) {
    stats_.set_frames_to_caller(playout_->frames_sent());
    stats_.set_silence_frames(playout_->silence_frames());
  }
  stats_.set_bytes_from_caller(connection_.bytes_read());
  stats_.set_bytes_to_caller(connection_.bytes_written());
  FinishForBackend(CallEndedEvent(reason, detail, asterisk_error, stats_), previous,
                   std::move(leftovers));
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
  const FallbackAudio* fallback = services_->fallback_audio;
  if (WantsFallback(reason) && fallback != nullptr && !fallback->empty() && playout_.has_value()) {
    // The caller hears the fallback message, then the hang-up.
    playout_->Restart(playout_->rate_hz());
    (void)playout_->queue().EnqueueAudio(fallback->At(playout_->rate_hz()), "fallback");
    playout_->queue().EnqueueHangup();
    return;
  }
  CloseSocket(true);
}

void Call::FinishForBackend(CallEvent ended, State previous, PlayoutQueue::Leftovers leftovers) {
  if (link_ == nullptr || (previous != State::kConnected && previous != State::kWaitingBackend)) {
    return;
  }
  // Before the accept its commands were refused: nothing queued is the backend's.
  if (previous != State::kConnected) leftovers = PlayoutQueue::Leftovers();
  CallEndNotifier::Start(loop_, link_, std::move(leftovers), std::move(ended));
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

void Call::CloseSocket(bool send_hangup) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  services_->counters->open_connections--;
  loop_->CancelTimer(uuid_timer_);
  loop_->CancelTimer(audio_timer_);
  uuid_timer_ = audio_timer_ = 0;
  if (playout_.has_value()) playout_->Stop();
  if (connector_ != nullptr) connector_->Stop();
  connection_.Close(send_hangup);
}

void Call::OnConnectionClosed() {
  // Release ourselves after this event-loop round: the loop may still hold
  // the connection's handler pointer for this batch of events.
  loop_->Post([self = std::move(self_)] {});
}

}  // namespace audiosocket
