#ifndef AUDIOSOCKET_BRIDGE_SERVER_MEDIA_CALLER_AUDIO_H_
#define AUDIOSOCKET_BRIDGE_SERVER_MEDIA_CALLER_AUDIO_H_

// The inbound media pipeline's first stage: the caller's audio as Asterisk
// sends it (G.711 or signed linear) decoded to linear PCM, with in-band
// DTMF detected in it.
//
// Threads: owned by one call on its loop.

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/dsp/dtmf_detector.h"
#include "lib/dsp/g711.h"

namespace audiosocket {

class CallerAudio {
 public:
  explicit CallerAudio(dsp::AudioEncoding encoding) : encoding_(encoding) {}

  // Samples in a payload of this encoding.
  size_t SamplesIn(size_t payload_bytes) const {
    return payload_bytes / static_cast<size_t>(dsp::BytesPerSample(encoding_));
  }
  // The payload as linear PCM; valid until the next call.
  absl::Span<const int16_t> Decode(absl::Span<const uint8_t> payload);

  // Runs the in-band detector over `samples` (the audio at `call_offset`,
  // at `rate_hz`), appending a DtmfEvent (source INBAND, offset at the
  // call's rate) per digit begin and end to `events`. The detector starts at
  // the first audio, whether or not a backend wants in-band DTMF yet: one
  // may ask for it at accept, and the audio held until then must have been
  // listened to.
  void DetectDtmf(absl::Span<const int16_t> samples, int rate_hz, uint64_t call_offset,
                  std::vector<bridge::v1::CallEvent>* events);
  // False when the call's rate is above what the detector supports.
  bool detection_available() const { return !detector_unavailable_; }
  // Stops detecting for good (no backend will ask for it any more).
  void StopDetecting() { stopped_ = true; }

 private:
  const dsp::AudioEncoding encoding_;
  std::vector<int16_t> linear_;
  std::optional<dsp::DtmfDetector> detector_;
  bool detector_unavailable_ = false;
  bool stopped_ = false;
  uint64_t detector_base_ = 0;  // call offset of the detector's sample 0
  std::vector<dsp::DtmfEvent> detected_;
};

// OK while `samples` of audio at `rate_hz` received `elapsed_ms` into the
// call are at most `max_ahead_ms` ahead of real time (0: no limit); an
// error describing the flood otherwise.
absl::Status CheckRealTimePace(uint64_t samples, int rate_hz, int64_t elapsed_ms, int max_ahead_ms);

// The lib/dsp encoding of a listener's AudioEncoding.
dsp::AudioEncoding EncodingOf(bridge::v1::AudioEncoding encoding);

// A DTMF event for the backend (offset at the call's rate; converted when
// delivered).
bridge::v1::CallEvent DtmfCallEvent(char digit, bridge::v1::DtmfPhase phase, uint32_t duration_ms,
                                    bridge::v1::DtmfSource source, uint64_t call_offset);

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_MEDIA_CALLER_AUDIO_H_
