#include "tools/audiosocket-call/call.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "lib/net/net.h"

namespace audiosocket::call {
namespace {

constexpr Nanos kNever = std::numeric_limits<Nanos>::max();
// A far end that stops reading: fail rather than queue without bound.
constexpr size_t kMaxOutbox = 4 << 20;
// Frames a flooding call sends per turn before letting other calls run.
constexpr int kFloodBurst = 32;

bool IsPeerGone(int err) { return err == EPIPE || err == ECONNRESET; }

// One recv(2) that also returns when the kernel received the bytes
// (SO_TIMESTAMPNS, CLOCK_REALTIME ns; -1 when it gave no time). The kernel
// stamps each segment as it arrives, so the time does not include how late
// this process got round to reading; segments that queued up unread are
// merged and carry the latest one's time.
ssize_t RecvStamped(int fd, absl::Span<uint8_t> space, Nanos* arrived) {
  iovec iov{space.data(), space.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t n = recvmsg(fd, &msg, 0);
  *arrived = -1;
  if (n <= 0) return n;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
      timespec ts;
      std::memcpy(&ts, CMSG_DATA(c), sizeof(ts));
      *arrived = static_cast<Nanos>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
    }
  }
  return n;
}

std::string Hex(absl::Span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : bytes) {
    out.push_back(kDigits[b >> 4]);
    out.push_back(kDigits[b & 15]);
  }
  return out;
}

}  // namespace

void EncodeFramePayload(absl::Span<const int16_t> samples, int64_t n, bool mark,
                        std::vector<uint8_t>* payload) {
  payload->resize(samples.size() * 2);
  uint8_t* p = payload->data();
  for (size_t i = 0; i < samples.size(); ++i) {
    uint16_t s = static_cast<uint16_t>(samples[i]);
    if (mark && i < 32)
      s = static_cast<uint16_t>((s & ~1u) | ((static_cast<uint64_t>(n) >> i) & 1));
    p[2 * i] = static_cast<uint8_t>(s & 0xff);
    p[2 * i + 1] = static_cast<uint8_t>(s >> 8);
  }
}

void EncodeG711FramePayload(dsp::AudioEncoding encoding, absl::Span<const int16_t> samples,
                            int64_t n, bool mark, std::vector<uint8_t>* payload,
                            std::vector<uint8_t>* echo) {
  payload->resize(samples.size());
  dsp::EncodeFromLinear(encoding, samples, absl::MakeSpan(*payload));
  if (mark) {
    for (size_t i = 0; i < payload->size() && i < 32; ++i) {
      uint8_t& b = (*payload)[i];
      b = static_cast<uint8_t>((b & ~1u) | ((static_cast<uint64_t>(n) >> i) & 1));
    }
  }
  std::vector<int16_t> linear(payload->size());
  dsp::DecodeToLinear(encoding, *payload, absl::MakeSpan(linear));
  EncodeFramePayload(linear, n, /*mark=*/false, echo);
}

void StampFramePayload(Nanos at, std::vector<uint8_t>* payload) {
  if (payload->size() < 2 * 96) return;
  const uint64_t bits = static_cast<uint64_t>(at);
  for (size_t i = 0; i < 64; ++i) {
    uint8_t& low = (*payload)[2 * (32 + i)];
    low = static_cast<uint8_t>((low & ~1u) | ((bits >> i) & 1));
  }
}

Nanos ReadFrameStamp(absl::Span<const uint8_t> payload) {
  if (payload.size() < 2 * 96) return 0;
  uint64_t bits = 0;
  for (size_t i = 0; i < 64; ++i) bits |= static_cast<uint64_t>(payload[2 * (32 + i)] & 1) << i;
  return static_cast<Nanos>(bits);
}

std::vector<uint8_t> FaultPrologue(Fault fault, const wire::CallUuid& uuid, int rate_hz) {
  std::vector<uint8_t> out;
  const uint8_t audio = wire::AudioKindForRate(rate_hz).value_or(0x10);
  if (fault == Fault::kNoUuid) return out;
  if (fault == Fault::kBadUuidLength) {
    wire::EncodeRaw(0x01, absl::MakeConstSpan(uuid.bytes.data(), 15), &out);
    return out;
  }
  wire::EncodeRaw(0x01, uuid.bytes, &out);
  switch (fault) {
    case Fault::kTruncatedHeader:
      // Two of the three header bytes of an audio message of 320 bytes.
      wire::EncodeRawHeader(audio, 320, &out);
      out.pop_back();
      break;
    case Fault::kShortPayload:
      // The header announces 320 bytes; only 160 follow before the close.
      wire::EncodeRawHeader(audio, 320, &out);
      out.insert(out.end(), 160, 0);
      break;
    case Fault::kOversizedLength: {
      // The largest length a header can carry, with all its (silent) bytes.
      const std::vector<uint8_t> payload(wire::kMaxPayload, 0);
      wire::EncodeRaw(audio, payload, &out);
      break;
    }
    case Fault::kGarbage: {
      // 64 bytes starting with 0x7e, a kind neither dialect defines.
      uint32_t x = 0x2545f491;
      out.push_back(0x7e);
      for (int i = 1; i < 64; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push_back(static_cast<uint8_t>(x));
      }
      break;
    }
    default:
      break;
  }
  return out;
}

Call::Call(int index, wire::CallUuid uuid, const CallConfig* config, event::Dispatcher* dispatcher,
           RunStats* stats, WavWriter* recorder, std::function<void()> on_done)
    : index_(index),
      uuid_(uuid),
      config_(*config),
      dialect_(config->extended_dialect ? wire::Dialect::kExtended : wire::Dialect::kAsterisk),
      loop_(dispatcher),
      stats_(stats),
      recorder_(recorder),
      on_done_(std::move(on_done)),
      source_(config->source.Make()),
      echo_(100),
      decoder_(wire::DecoderOptions{.dialect = dialect_,
                                    .unknown_kinds = wire::UnknownKindPolicy::kKeep}) {
  result_.index = index;
  result_.uuid = uuid_.ToString();
  samples_.resize(static_cast<size_t>(config_.rate_hz / 50));
}

Call::~Call() {
  if (timer_set_) loop_->CancelTimer(timer_);
  if (fd_ >= 0) {
    loop_->Unwatch(fd_);
    close(fd_);
  }
}

void Call::Start() {
  const Nanos now = Now();
  connect_started_ = now;
  const std::string target = config_.target.ToString();
  fd_ = socket(config_.target.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    Fail(absl::StrCat("socket: ", std::strerror(errno),
                      errno == EMFILE ? " (raise the open-files limit: ulimit -n)" : ""));
    return;
  }
  (void)net::SetNoDelay(fd_);  // as Asterisk
  // Arrival times for arrival_jitter_ms; without them that stays empty.
  const int on = 1;
  (void)setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on));
  state_ = State::kConnecting;
  const int rc = connect(fd_, reinterpret_cast<const sockaddr*>(&config_.target.storage),
                         config_.target.length);
  if (rc != 0 && errno != EINPROGRESS) {
    Fail(absl::StrCat("connect to ", target, ": ", std::strerror(errno)));
    return;
  }
  // Writable (or an error) tells that a connect in progress has finished.
  if (absl::Status s = loop_->Watch(fd_, this, /*writable=*/rc != 0); !s.ok()) {
    Fail(s.message());
    return;
  }
  if (rc == 0) {
    OnConnected(now);
    return;
  }
  SetTimer(now + config_.connect_timeout);
}

void Call::Interrupt() {
  if (state_ == State::kActive) {
    ReachEnd(Now());
  } else if (state_ == State::kConnecting || state_ == State::kIdle) {
    Fail("interrupted before the call connected");
  }
}

void Call::SetTimer(Nanos deadline) {
  if (timer_set_) loop_->CancelTimer(timer_);
  timer_ = loop_->RunAt(ToMonoTime(deadline), [this] { OnTimer(); });
  timer_set_ = true;
}

void Call::WantWrite(bool want) {
  if (want == want_write_ || fd_ < 0) return;
  want_write_ = want;
  (void)loop_->SetWritable(fd_, this, want);
}

void Call::OnConnected(Nanos now) {
  state_ = State::kActive;
  want_write_ = true;  // force the watch to readable only
  WantWrite(false);
  start_ = now;
  if (config_.tick > 0) start_ = (now + config_.tick - 1) / config_.tick * config_.tick;
  pacer_ = event::FramePacer(ToMonoTime(start_), std::chrono::nanoseconds(kFramePeriod));

  // The schedule, in time order (stable for equal times).
  const Nanos d = config_.dtmf_duration;
  for (const TimedDigit& t : config_.dtmf) {
    if (dialect_ == wire::Dialect::kAsterisk) {
      // Asterisk drops voice frames while a digit is signalled and sends one
      // 0x03 at its end.
      actions_.push_back({t.at, Action::Type::kSuppressBegin, t.digit, 0});
      actions_.push_back({t.at + d, Action::Type::kDigit, t.digit, 0});
    } else {
      actions_.push_back({t.at, Action::Type::kDtmfStart, t.digit, 0});
      actions_.push_back({t.at + d, Action::Type::kDtmfStop, t.digit, 0});
    }
  }
  for (const TimedByte& t : config_.controls) {
    actions_.push_back({t.at, Action::Type::kControl, '0', t.value});
  }
  for (const TimedByte& t : config_.errors) {
    actions_.push_back({t.at, Action::Type::kError, '0', t.value});
  }
  std::stable_sort(actions_.begin(), actions_.end(),
                   [](const Action& a, const Action& b) { return a.at < b.at; });

  out_ = FaultPrologue(config_.fault, uuid_, config_.rate_hz);
  if (!out_.empty() && !Send(out_)) return;
  switch (config_.fault) {
    case Fault::kTruncatedHeader:
    case Fault::kShortPayload:
      StartDraining("closed", now);
      return;
    case Fault::kNoUuid:
      audio_on_ = false;
      actions_.clear();
      break;
    default:
      break;
  }
  Pump(now);
}

void Call::OnTimer() {
  timer_set_ = false;
  const Nanos now = Now();
  switch (state_) {
    case State::kConnecting:
      Fail(absl::StrCat("connect to ", config_.target.ToString(), " timed out after ",
                        config_.connect_timeout / kMillisecond, " ms"));
      return;
    case State::kActive:
      Pump(now);
      return;
    case State::kDraining:
      Finish(draining_ended_, "");
      return;
    default:
      return;
  }
}

void Call::OnConnectReady(Nanos now) {
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    Fail(absl::StrCat("connect to ", config_.target.ToString(), ": ", std::strerror(err)));
    return;
  }
  OnConnected(now);
}

void Call::OnReadable() {
  if (fd_ < 0) return;  // ended earlier in this dispatcher round
  const Nanos now = Now();
  // A connect in progress reports its end (an error) as readable too.
  if (state_ == State::kConnecting) {
    OnConnectReady(now);
    return;
  }
  ReadAvailable(now);
}

void Call::OnWritable() {
  if (fd_ < 0) return;
  const Nanos now = Now();
  if (state_ == State::kConnecting) {
    OnConnectReady(now);
    return;
  }
  FlushOutbox();
  if (state_ == State::kDone) return;
  if (state_ == State::kActive && config_.fault == Fault::kFlood && outbox_.empty()) Pump(now);
}

void Call::Pump(Nanos now) {
  const bool flood = config_.fault == Fault::kFlood;
  int burst = 0;
  while (state_ == State::kActive) {
    const Nanos t_action =
        next_action_ < actions_.size() ? start_ + actions_[next_action_].at : kNever;
    const Nanos t_end = config_.duration > 0 ? start_ + config_.duration : kNever;
    Nanos t_frame = kNever;
    if (audio_on_) {
      if (!flood) {
        t_frame = ToNanos(pacer_.next_deadline());
      } else if (outbox_.empty()) {
        if (burst == kFloodBurst) {
          SetTimer(now);  // come back after other calls had their turn
          return;
        }
        t_frame = now;
      }
    }
    if (t_action <= now && t_action <= t_end && t_action <= t_frame) {
      const Action action = actions_[next_action_++];
      if (!DoAction(action)) return;
      continue;
    }
    if (t_end <= now && t_end <= t_frame) {
      ReachEnd(now);
      return;
    }
    if (t_frame <= now) {
      ++burst;
      if (!SendFrame(now)) return;
      continue;
    }
    const Nanos next = std::min({t_action, t_end, t_frame});
    if (next != kNever) SetTimer(next);
    return;
  }
}

bool Call::SendFrame(Nanos now) {
  const Nanos deadline = ToNanos(pacer_.next_deadline());
  const int64_t n = pacer_.next_frame();
  pacer_.Advance();
  if (!source_->Fill(absl::MakeSpan(samples_))) {
    // A WAV played once has ended: the call ends now (or waits, with --end=wait).
    audio_on_ = false;
    if (config_.end != EndMode::kWait) ReachEnd(now);
    return state_ == State::kActive;
  }
  if (suppressed_) return true;
  out_.clear();
  const std::vector<uint8_t>* echo = &payload_;  // what an echo of this frame looks like
  if (config_.encoding != dsp::AudioEncoding::kSlin16) {
    // As Asterisk sends a c(ulaw) / c(alaw) channel's audio: G.711 bytes
    // labelled 0x10. A far end that decodes it echoes signed linear.
    EncodeG711FramePayload(config_.encoding, samples_, n, config_.mark_frames, &payload_,
                           &echo_payload_);
    echo = &echo_payload_;
    wire::EncodeRaw(static_cast<uint8_t>(wire::Kind::kAudio8k), payload_, &out_);
  } else {
    EncodeFramePayload(samples_, n, config_.mark_frames, &payload_);
    if (config_.stamp_frames) StampFramePayload(Now(), &payload_);
    if (config_.fault == Fault::kOddAudio) {
      wire::EncodeRaw(wire::AudioKindForRate(config_.rate_hz).value_or(0x10),
                      absl::MakeConstSpan(payload_).first(payload_.size() - 1), &out_);
    } else if (absl::Status s = wire::Encode(wire::Audio{config_.rate_hz, payload_}, dialect_,
                                             wire::Peer::kServer, &out_);
               !s.ok()) {
      Fail(s.message());
      return false;
    }
  }
  const Nanos sent_at = Now();
  if (config_.fault != Fault::kFlood) stats_->send_jitter.Add(sent_at - deadline);
  echo_.OnSent(*echo, sent_at);
  ++result_.frames_sent;
  return Send(out_);
}

bool Call::DoAction(const Action& action) {
  switch (action.type) {
    case Action::Type::kSuppressBegin:
      suppressed_ = true;
      return true;
    case Action::Type::kDigit:
      suppressed_ = false;
      return SendMessage(wire::DtmfDigit{action.digit});
    case Action::Type::kDtmfStart:
      return SendMessage(wire::DtmfEvent{true, action.digit, 0});
    case Action::Type::kDtmfStop:
      return SendMessage(wire::DtmfEvent{
          false, action.digit, static_cast<uint32_t>(config_.dtmf_duration / kMillisecond)});
    case Action::Type::kControl:
      return SendMessage(wire::Control{action.value});
    case Action::Type::kError: {
      const uint8_t flags = action.value;
      return SendMessage(wire::Error{absl::MakeConstSpan(&flags, 1)});
    }
  }
  return true;
}

bool Call::SendMessage(const wire::Message& message) {
  out_.clear();
  if (absl::Status s = wire::Encode(message, dialect_, wire::Peer::kServer, &out_); !s.ok()) {
    Fail(s.message());
    return false;
  }
  return Send(out_);
}

bool Call::Send(const std::vector<uint8_t>& bytes) {
  if (!outbox_.empty()) {
    if (outbox_.size() - outbox_sent_ + bytes.size() > kMaxOutbox) {
      Fail("the far end is not reading: 4 MiB of audio queued");
      return false;
    }
    outbox_.insert(outbox_.end(), bytes.begin(), bytes.end());
    return true;
  }
  ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      if (IsPeerGone(errno)) {
        Finish(state_ == State::kDraining ? draining_ended_ : "remote_closed", "");
      } else {
        Fail(absl::StrCat("send: ", std::strerror(errno)));
      }
      return false;
    }
    n = 0;
  }
  result_.bytes_sent += static_cast<uint64_t>(n);
  if (static_cast<size_t>(n) < bytes.size()) {
    outbox_.assign(bytes.begin() + n, bytes.end());
    outbox_sent_ = 0;
    WantWrite(true);
  }
  return true;
}

void Call::FlushOutbox() {
  while (outbox_sent_ < outbox_.size()) {
    const ssize_t n =
        send(fd_, outbox_.data() + outbox_sent_, outbox_.size() - outbox_sent_, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if (IsPeerGone(errno)) {
        Finish(state_ == State::kDraining ? draining_ended_ : "remote_closed", "");
      } else {
        Fail(absl::StrCat("send: ", std::strerror(errno)));
      }
      return;
    }
    result_.bytes_sent += static_cast<uint64_t>(n);
    outbox_sent_ += static_cast<size_t>(n);
  }
  outbox_.clear();
  outbox_sent_ = 0;
  WantWrite(false);
  if (state_ == State::kDraining) shutdown(fd_, SHUT_WR);
}

void Call::ReadAvailable(Nanos now) {
  for (int i = 0; i < 16 && state_ != State::kDone; ++i) {
    absl::Span<uint8_t> space = decoder_.PrepareWrite(16384);
    Nanos arrived;
    const ssize_t n = RecvStamped(fd_, space, &arrived);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == EINTR) continue;
      if (IsPeerGone(errno)) {
        Finish(state_ == State::kDraining ? draining_ended_ : "remote_closed", "");
      } else {
        Fail(absl::StrCat("recv: ", std::strerror(errno)));
      }
      return;
    }
    if (n == 0) {
      Finish(state_ == State::kDraining ? draining_ended_ : "remote_closed", "");
      return;
    }
    decoder_.Commit(static_cast<size_t>(n));
    result_.bytes_received += static_cast<uint64_t>(n);
    while (state_ != State::kDone) {
      absl::StatusOr<std::optional<wire::Message>> next = decoder_.Next();
      if (!next.ok()) {
        Fail(absl::StrCat("the far end sent a malformed message: ", next.status().message()));
        return;
      }
      if (!next->has_value()) break;
      if (!HandleMessage(**next, now, arrived)) return;
    }
    if (static_cast<size_t>(n) < space.size()) return;
  }
}

void Call::LogReceived(absl::string_view fields, Nanos now) {
  if (!config_.log_messages) return;
  std::string line =
      absl::StrCat("{\"event\":\"received\",\"call\":", index_, ",\"uuid\":\"", result_.uuid,
                   "\",\"at_ms\":", FormatMillis(now - start_), ",", fields, "}\n");
  std::fwrite(line.data(), 1, line.size(), stderr);
}

bool Call::HandleMessage(const wire::Message& message, Nanos now, Nanos arrived) {
  // Audio is read as Asterisk reads it, whatever this call sends: signed
  // linear at the kind's rate (the decoder's default). G.711 bytes from a
  // far end would be heard, and recorded, as noise, and match no echo.
  if (const auto* audio = std::get_if<wire::Audio>(&message)) {
    ++result_.frames_received;
    if (last_rx_ >= 0) {
      const Nanos interval = now - last_rx_;
      stats_->recv_jitter.Add(interval > kFramePeriod ? interval - kFramePeriod
                                                      : kFramePeriod - interval);
    }
    if (first_rx_ < 0) first_rx_ = now;
    last_rx_ = now;
    if (arrived >= 0 && last_arrival_ >= 0) {
      const Nanos interval = arrived - last_arrival_;
      stats_->arrival_jitter.Add(interval > kFramePeriod ? interval - kFramePeriod
                                                         : kFramePeriod - interval);
    }
    last_arrival_ = arrived;
    if (std::optional<Nanos> rtt = echo_.OnReceived(audio->payload, now)) stats_->rtt.Add(*rtt);
    if (recorder_ != nullptr) {
      if (!recorder_->is_open() && result_.frames_received == 1) {
        if (absl::Status s = recorder_->Open(config_.record_path, audio->sample_rate_hz); !s.ok()) {
          result_.errors.push_back(std::string(s.message()));
        }
      }
      if (recorder_->is_open()) (void)recorder_->Append(audio->payload);
    }
    return true;
  }
  std::string fields;
  std::vector<std::string>* list = &stats_->other_received;
  bool hangup = false;
  if (std::holds_alternative<wire::Hangup>(message)) {
    fields = "\"kind\":\"hangup\"";
    hangup = true;
    list = nullptr;
  } else if (const auto* e = std::get_if<wire::DtmfEvent>(&message)) {
    fields = absl::StrCat("\"kind\":\"dtmf\",\"state\":\"", e->start ? "start" : "stop",
                          "\",\"digit\":");
    AppendJsonString(std::string(1, e->digit), &fields);
    absl::StrAppend(&fields, ",\"duration_ms\":", e->duration_ms);
    list = &stats_->dtmf_received;
  } else if (const auto* d = std::get_if<wire::DtmfDigit>(&message)) {
    fields = "\"kind\":\"dtmf_digit\",\"digit\":";
    AppendJsonString(std::string(1, d->digit), &fields);
    list = &stats_->dtmf_received;
  } else if (const auto* c = std::get_if<wire::Control>(&message)) {
    fields = absl::StrCat("\"kind\":\"control\",\"code\":", c->code, ",\"name\":\"",
                          wire::ControlNameOrNumber(c->code), "\"");
    list = &stats_->controls_received;
  } else if (const auto* err = std::get_if<wire::Error>(&message)) {
    fields = absl::StrCat("\"kind\":\"error\",\"flags\":", err->flags(), ",\"names\":\"",
                          wire::ErrorFlagNames(err->flags()), "\",\"payload_hex\":\"",
                          Hex(err->payload), "\"");
    list = &stats_->errors_received;
  } else if (const auto* u = std::get_if<wire::CallUuid>(&message)) {
    fields = absl::StrCat("\"kind\":\"uuid\",\"uuid\":\"", u->ToString(), "\"");
  } else if (const auto* unknown = std::get_if<wire::Unknown>(&message)) {
    fields = absl::StrCat("\"kind\":\"unknown\",\"type\":", unknown->kind, ",\"payload_hex\":\"",
                          Hex(unknown->payload), "\"");
  }
  LogReceived(fields, now);
  if (list != nullptr && list->size() < RunStats::kMaxListed) {
    list->push_back(absl::StrCat("{\"call\":", index_, ",\"at_ms\":", FormatMillis(now - start_),
                                 ",", fields, "}"));
  }
  if (hangup) {
    Finish(state_ == State::kDraining ? draining_ended_ : "remote_hangup", "");
    return false;
  }
  return true;
}

void Call::ReachEnd(Nanos now) {
  if (config_.fault == Fault::kNoUuid) {
    Finish("closed", "");
    return;
  }
  switch (config_.end) {
    case EndMode::kHangup:
      if (!SendMessage(wire::Hangup{})) return;
      StartDraining("hangup_sent", now);
      return;
    case EndMode::kClose:
      Finish("closed", "");
      return;
    case EndMode::kWait:
      Finish("timeout", absl::StrCat("the far end did not hang up within --duration (",
                                     config_.duration / kMillisecond, " ms)"));
      return;
  }
}

void Call::StartDraining(absl::string_view ended, Nanos now) {
  state_ = State::kDraining;
  draining_ended_ = std::string(ended);
  if (outbox_.empty()) shutdown(fd_, SHUT_WR);  // else FlushOutbox does it
  SetTimer(now + config_.linger);
}

void Call::Finish(absl::string_view ended, absl::string_view error) {
  if (state_ == State::kDone) return;
  const bool was_connected = state_ == State::kActive || state_ == State::kDraining;
  const Nanos now = Now();
  if (timer_set_) loop_->CancelTimer(timer_);
  timer_set_ = false;
  if (fd_ >= 0) {
    loop_->Unwatch(fd_);
    close(fd_);
    fd_ = -1;
  }
  state_ = State::kDone;
  result_.ended = std::string(ended);
  if (!error.empty()) result_.errors.push_back(std::string(error));
  const bool remote = ended == "remote_hangup" || ended == "remote_closed";
  const bool remote_expected = config_.end == EndMode::kWait || config_.fault != Fault::kNone;
  if (remote && !remote_expected) {
    result_.errors.push_back(absl::StrCat(
        "the far end ", ended == "remote_hangup" ? "hung up" : "closed the connection", " after ",
        was_connected ? FormatMillis(now - start_) : "0", " ms, before --duration ended"));
  }
  result_.ok = result_.errors.empty() && ended != "error" && ended != "timeout";
  if (result_.frames_received >= 2) {
    // Drift: time the received frames spanned vs. 20 ms per frame interval.
    const Nanos span = last_rx_ - first_rx_;
    const Nanos expected = static_cast<Nanos>(result_.frames_received - 1) * kFramePeriod;
    stats_->drift_span += span;
    stats_->drift_expected += expected;
    const double ppm = 1e6 * static_cast<double>(span - expected) / static_cast<double>(expected);
    if (std::abs(ppm) > std::abs(stats_->drift_worst_ppm)) stats_->drift_worst_ppm = ppm;
    ++stats_->drift_calls;
  }
  if (on_done_) on_done_();
}

}  // namespace audiosocket::call
