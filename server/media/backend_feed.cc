#include "server/media/backend_feed.h"

#include <algorithm>
#include <cstring>
#include <utility>

namespace audiosocket {

using bridge::v1::CallEvent;

absl::Status BackendFeed::SetRates(int call_rate_hz, int backend_rate_hz) {
  call_rate_hz_ = call_rate_hz;
  backend_rate_hz_ = backend_rate_hz;
  if (backend_rate_hz == 0 || backend_rate_hz == call_rate_hz) {
    resampler_.reset();
    return absl::OkStatus();
  }
  auto resampler = dsp::Resampler::Create(call_rate_hz, backend_rate_hz);
  if (!resampler.ok()) return resampler.status();
  resampler_.emplace(std::move(*resampler));
  return absl::OkStatus();
}

uint64_t BackendFeed::ToBackendOffset(uint64_t call_offset) const {
  if (backend_rate_hz_ == 0 || backend_rate_hz_ == call_rate_hz_) return call_offset;
  return call_offset * static_cast<uint64_t>(backend_rate_hz_) /
         static_cast<uint64_t>(call_rate_hz_);
}

void BackendFeed::Emit(CallEvent&& event) {
  if (link_ != nullptr) {
    Deliver(std::move(event));
    return;
  }
  if (event.has_audio()) {
    held_audio_samples_ += event.audio().pcm().size() / 2;
    const uint64_t limit = static_cast<uint64_t>(hold_audio_ms_) * call_rate_hz_ / 1000;
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

void BackendFeed::Connect(BackendLink* link) {
  link_ = link;
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

void BackendFeed::Deliver(CallEvent&& event) {
  if (event.has_dtmf()) {
    // Filtering happens here, in delivery order, so held events are judged
    // by what the backend asked for at accept or claim.
    const bridge::v1::DtmfEvent& dtmf = event.dtmf();
    if (dtmf.source() == bridge::v1::DTMF_SOURCE_INBAND && !detect_inband_) return;
    const int64_t at_ms =
        static_cast<int64_t>(dtmf.offset_samples() * 1000 / static_cast<uint64_t>(call_rate_hz_));
    if (!dedup_.Admit(dtmf.source(), dtmf.digit()[0], dtmf.phase(), at_ms)) return;
    event.mutable_dtmf()->set_offset_samples(ToBackendOffset(event.dtmf().offset_samples()));
  } else if (event.has_audio() && resampler_.has_value()) {
    auto* chunk = event.mutable_audio();
    const size_t in_samples = chunk->pcm().size() / 2;
    // A jump in call-rate offsets is audio dropped while held: keep the
    // gap visible at the backend's rate.
    if (chunk->offset_samples() > expected_call_offset_) {
      backend_offset_ += ToBackendOffset(chunk->offset_samples() - expected_call_offset_);
    }
    expected_call_offset_ = chunk->offset_samples() + in_samples;
    input_.resize(in_samples);
    std::memcpy(input_.data(), chunk->pcm().data(), in_samples * sizeof(int16_t));
    converted_.resize(resampler_->MaxOutputSamples(in_samples));
    const size_t produced = resampler_->Process(input_, absl::MakeSpan(converted_));
    // Into the string the chunk already has: no allocation per frame.
    chunk->mutable_pcm()->assign(reinterpret_cast<const char*>(converted_.data()),
                                 produced * sizeof(int16_t));
    chunk->set_sample_rate_hz(static_cast<uint32_t>(backend_rate_hz_));
    chunk->set_offset_samples(backend_offset_);
    backend_offset_ += produced;
  }
  link_->SendEvent(std::move(event));
}

}  // namespace audiosocket
