#include "server/media/caller_audio.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "AudioSocket and gRPC audio are little-endian LINEAR16");

namespace audiosocket {

absl::Span<const int16_t> CallerAudio::Decode(absl::Span<const uint8_t> payload) {
  const size_t samples = SamplesIn(payload.size());
  linear_.resize(samples);
  if (encoding_ == dsp::AudioEncoding::kSlin16) {
    std::memcpy(linear_.data(), payload.data(), samples * sizeof(int16_t));
  } else {
    dsp::DecodeToLinear(encoding_, payload, absl::MakeSpan(linear_));
  }
  return linear_;
}

void CallerAudio::DetectDtmf(absl::Span<const int16_t> samples, int rate_hz, uint64_t call_offset,
                             std::vector<bridge::v1::CallEvent>* events) {
  if (stopped_) return;
  if (!detector_.has_value() && !detector_unavailable_) {
    auto detector = dsp::DtmfDetector::Create(rate_hz);
    if (detector.ok()) {
      detector_.emplace(std::move(*detector));
      detector_base_ = call_offset;
    } else {
      detector_unavailable_ = true;  // rates above what the detector supports
    }
  }
  if (!detector_.has_value()) return;
  detected_.clear();
  detector_->Process(samples, &detected_);
  for (const dsp::DtmfEvent& detected : detected_) {
    const bool begin = detected.kind == dsp::DtmfEvent::Kind::kBegin;
    const int64_t position =
        static_cast<int64_t>(detector_base_) +
        (begin ? detected.start_sample : detected.start_sample + detected.duration_samples);
    events->push_back(DtmfCallEvent(
        detected.digit, begin ? bridge::v1::DTMF_PHASE_BEGIN : bridge::v1::DTMF_PHASE_END,
        begin ? 0 : static_cast<uint32_t>(detected.duration_ms), bridge::v1::DTMF_SOURCE_INBAND,
        static_cast<uint64_t>(std::max<int64_t>(0, position))));
  }
}

absl::Status CheckRealTimePace(uint64_t samples, int rate_hz, int64_t elapsed_ms,
                               int max_ahead_ms) {
  if (max_ahead_ms <= 0) return absl::OkStatus();
  const uint64_t allowed =
      static_cast<uint64_t>(elapsed_ms + max_ahead_ms) * static_cast<uint64_t>(rate_hz) / 1000;
  if (samples <= allowed) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      "audio flood: ", samples * 1000 / static_cast<uint64_t>(rate_hz), " ms of audio arrived in ",
      elapsed_ms, " ms (more than ", max_ahead_ms, " ms ahead of real time)"));
}

dsp::AudioEncoding EncodingOf(bridge::v1::AudioEncoding encoding) {
  switch (encoding) {
    case bridge::v1::AUDIO_ENCODING_MULAW:
      return dsp::AudioEncoding::kUlaw;
    case bridge::v1::AUDIO_ENCODING_ALAW:
      return dsp::AudioEncoding::kAlaw;
    default:
      return dsp::AudioEncoding::kSlin16;
  }
}

bridge::v1::CallEvent DtmfCallEvent(char digit, bridge::v1::DtmfPhase phase, uint32_t duration_ms,
                                    bridge::v1::DtmfSource source, uint64_t call_offset) {
  bridge::v1::CallEvent event;
  auto* dtmf = event.mutable_dtmf();
  dtmf->set_digit(std::string(1, digit));
  dtmf->set_phase(phase);
  dtmf->set_duration_ms(duration_ms);
  dtmf->set_source(source);
  dtmf->set_offset_samples(call_offset);
  return event;
}

}  // namespace audiosocket
