#include "server/playout/playout.h"

#include <cstring>
#include <utility>

namespace audiosocket {

Playout::Playout(event::Dispatcher* loop, Options options, BridgeCounters* counters,
                 Delegate* delegate, std::weak_ptr<void> owner)
    : loop_(loop),
      options_(options),
      counters_(counters),
      delegate_(delegate),
      owner_(std::move(owner)) {}

Playout::~Playout() { LeaveTicker(); }

void Playout::LeaveTicker() {
  if (ticker_ == nullptr) return;
  ticker_->Leave(this, pacer_->start());
  ticker_ = nullptr;
}

void Playout::Restart(int rate_hz) {
  if (!converter_.has_value() || converter_->output_rate_hz() != rate_hz) {
    converter_.emplace(rate_hz);  // the old one converts to the old rate
  }
  rate_hz_ = rate_hz;
  PlayoutConfig config;
  config.sample_rate_hz = rate_hz;
  config.max_buffer_ms = options_.max_playout_ms;
  config.high_watermark_ms = options_.high_watermark_ms;
  config.low_watermark_ms = options_.low_watermark_ms;
  // Notices not handed on yet (a clear's rest) stay, in order.
  NoticeList pending;
  if (queue_.has_value()) pending = queue_->ReleaseNotices();
  queue_.emplace(config);
  queue_->AdoptNotices(std::move(pending));
  tone_renderer_.emplace(rate_hz);
  queue_->set_tone_renderer(&*tone_renderer_);
  queue_->set_converter(&*converter_);
  BuildMessage();
  if (!pacer_.has_value() && !stopped_) {
    ticker_ = options_.ticker != nullptr ? options_.ticker : &own_ticker_.emplace(loop_);
    // The first frame waits for its slot on the grid (less than 5 ms away),
    // so the cadence is exact from the first frame on.
    const event::MonoTime start = ticker_->Join(this);
    pacer_.emplace(start, kFramePeriod);
    if (start <= loop_->Now()) OnTick();
  }
}

void Playout::BuildMessage() {
  const size_t samples = static_cast<size_t>(queue_->samples_per_frame());
  message_.assign(kSamplesOffset / sizeof(int16_t) + samples, 0);
  uint8_t* const bytes = reinterpret_cast<uint8_t*>(message_.data());
  frame_ = absl::MakeSpan(message_).subspan(kSamplesOffset / sizeof(int16_t));
  // The header as the codec writes it for a frame of silence at this rate.
  wire::Audio audio;
  audio.sample_rate_hz = rate_hz_;
  audio.payload = absl::MakeConstSpan(bytes + kSamplesOffset, samples * sizeof(int16_t));
  std::vector<uint8_t> encoded;
  if (!wire::Encode(audio, options_.dialect, wire::Peer::kAsterisk, &encoded).ok() ||
      encoded.size() != wire::kHeaderSize + audio.payload.size()) {
    encoded_ = {};  // no rate the call adopts gets here: nothing to send
    return;
  }
  std::memcpy(bytes + kHeaderOffset, encoded.data(), wire::kHeaderSize);
  encoded_ = absl::MakeConstSpan(bytes + kHeaderOffset, wire::kHeaderSize + audio.payload.size());
}

void Playout::Stop() {
  stopped_ = true;
  LeaveTicker();
  if (rest_timer_ != 0) loop_->CancelTimer(rest_timer_);
  rest_timer_ = 0;
}

void Playout::FlushNotices() {
  const std::vector<PlayoutNotice> notices = queue_->TakeNotices(kNoticesPerRound);
  if (!notices.empty()) {
    // DTMF starts are here only when a tick left them for a later round.
    delegate_->OnPlayoutNotices(notices, /*before_frame=*/true);
    if (stopped_) return;
    delegate_->OnPlayoutNotices(notices, /*before_frame=*/false);
    if (stopped_) return;
  }
  FlushRestLater();
}

void Playout::FlushRestLater() {
  if (rest_timer_ != 0 || queue_->pending_notices() == 0) return;
  // A timer due now runs in the next round: the loop serves everything
  // else ready before it.
  rest_timer_ = loop_->RunAt(loop_->Now(), [this, owner = owner_] {
    if (owner.lock() == nullptr) return;
    rest_timer_ = 0;
    if (!stopped_) FlushNotices();
  });
}

void Playout::OnSlotTick(event::MonoTime now) {
  // Not yet: its slot's timer was late when this call joined, or the call
  // played its first frame itself.
  if (now < pacer_->next_deadline() || owner_.expired()) return;
  OnTick();
}

void Playout::OnTick() {
  if (stopped_) return;
  const event::MonoTime now = loop_->Now();
  const event::Nanos lateness = pacer_->Lateness(now);
  if (lateness > kFramePeriod) counters_->playout_late_ticks++;
  if (options_.tick_lateness != nullptr) {
    options_.tick_lateness->Observe(lateness);
  }
  pacer_->OnTick(now);

  const bool content = queue_->Tick(frame_);
  const std::vector<PlayoutNotice> notices = queue_->TakeNotices(kNoticesPerRound);
  if (!notices.empty()) delegate_->OnPlayoutNotices(notices, /*before_frame=*/true);
  if (stopped_) return;
  if (content || options_.send_silence) {
    if (!content) {
      ++silence_frames_;
      counters_->silence_frames_out++;
    }
    played_content_ |= content;
    // Always signed linear, whatever the listener's encoding: Asterisk reads
    // every audio message it receives as slin at the rate of its kind and
    // transcodes to the channel's codec itself (G.711 bytes would play as
    // noise). The listener's encoding describes only what Asterisk sends.
    delegate_->OnPlayoutFrame(encoded_);
    ++frames_sent_;
  }
  if (stopped_) return;
  if (!notices.empty()) delegate_->OnPlayoutNotices(notices, /*before_frame=*/false);
  if (stopped_) return;
  FlushRestLater();
}

}  // namespace audiosocket
