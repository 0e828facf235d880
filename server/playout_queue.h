#ifndef AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_QUEUE_H_
#define AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_QUEUE_H_

// What a call plays to the caller: backend audio (already at the call's
// rate), marks, DTMF and hang-up requests, in the order the backend sent
// them. Each Tick() produces exactly one frame (20 ms) and the notices that
// frame causes: marks played, DTMF start/stop, watermarks, underruns.
//
// This class keeps the exact account of what the caller heard: a mark
// resolves once (played, cleared or call ended), a clear reports per
// response how much was played and how much discarded.
//
// Not thread-safe; owned by one call on its event loop. No clock: the
// caller ticks it.

#include <cstdint>
#include <deque>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/types/span.h"

namespace audiosocket {

// Renders in-band DTMF tones into a frame. Implemented with lib/dsp's
// generator; absent when the call sends DTMF as signalling.
class ToneRenderer {
 public:
  virtual ~ToneRenderer() = default;
  // Writes samples [offset, offset + out.size()) of `digit`'s tone lasting
  // `tone_samples` into `out`.
  virtual void Render(char digit, uint64_t offset, uint64_t tone_samples,
                      absl::Span<int16_t> out) = 0;
};

struct PlayoutConfig {
  int sample_rate_hz = 8000;
  int frame_ms = 20;
  // Enqueue fails with RESOURCE_EXHAUSTED beyond this much queued audio.
  int max_buffer_ms = 120000;
  int high_watermark_ms = 5000;
  int low_watermark_ms = 1000;
};

struct PlayoutNotice {
  enum class Type {
    kMarkPlayed,     // name
    kMarkCleared,    // name
    kDtmfStart,      // digit; send before this tick's frame
    kDtmfStop,       // digit, duration_ms; send after the frame
    kDtmfDone,       // command_id: every tone of a SendDtmf played
    kDtmfCancelled,  // command_id: removed by a clear
    kHangup,         // a hang-up after playout was reached
    kHighWatermark,  // buffered_ms
    kLowWatermark,   // buffered_ms
    kUnderrun,       // response_id: audio arrived for a response after the queue ran dry in it
    kDrained,        // response_id: the last queued audio played
  };
  Type type;
  std::string name;  // mark name, command id or response id
  char digit = 0;
  uint32_t duration_ms = 0;
  uint32_t buffered_ms = 0;
};

struct ResponseAccount {
  std::string response_id;
  uint64_t played_samples = 0;
  uint64_t discarded_samples = 0;
};

struct ClearReport {
  std::vector<ResponseAccount> responses;
  uint64_t discarded_samples = 0;
};

class PlayoutQueue {
 public:
  explicit PlayoutQueue(PlayoutConfig config);

  int samples_per_frame() const { return samples_per_frame_; }
  const PlayoutConfig& config() const { return config_; }

  // Queues audio at the call's rate. RESOURCE_EXHAUSTED past max_buffer_ms.
  absl::Status EnqueueAudio(absl::Span<const int16_t> samples, const std::string& response_id);
  void EnqueueMark(std::string name);
  // `inband` renders tones into the audio (asterisk dialect); otherwise the
  // item only takes time and produces start/stop notices.
  void EnqueueDtmf(std::string digits, uint32_t tone_ms, uint32_t gap_ms, std::string command_id,
                   bool inband);
  void EnqueueHangup();

  // Fills `frame` (samples_per_frame() long) with the next 20 ms: queued
  // audio or tones, silence where nothing is queued. Returns true when
  // anything but silence was queued for it.
  bool Tick(absl::Span<int16_t> frame);

  // Barge-in: drops queued audio (of `response_id` only, or everything when
  // empty). Clearing everything also drops marks (resolved cleared) and DTMF
  // (cancelled); hang-up requests stay.
  ClearReport Clear(const std::string& response_id);

  // Resolves every remaining mark and DTMF at the end of the call; the
  // notices say which (marks as kMarkCleared are reported by the caller as
  // CALL_ENDED).
  std::vector<PlayoutNotice> Abandon();

  // Notices produced since the last call, oldest first.
  std::vector<PlayoutNotice> TakeNotices();

  uint64_t buffered_samples() const { return buffered_samples_; }
  uint32_t buffered_ms() const;
  uint64_t underruns() const { return underruns_; }
  bool empty() const { return items_.empty(); }

  void set_tone_renderer(ToneRenderer* renderer) { tone_renderer_ = renderer; }

 private:
  struct AudioItem {
    std::vector<int16_t> samples;
    size_t position = 0;
    std::string response_id;
  };
  struct MarkItem {
    std::string name;
  };
  struct DtmfItem {
    std::string digits;
    uint64_t tone_samples = 0;
    uint64_t gap_samples = 0;
    uint32_t tone_ms = 0;
    std::string command_id;
    bool inband = false;
    size_t digit_index = 0;
    uint64_t position = 0;  // within the current digit's tone + gap
  };
  struct HangupItem {};
  using Item = std::variant<AudioItem, MarkItem, DtmfItem, HangupItem>;

  void Notice(PlayoutNotice::Type type, std::string name = {});
  void CheckWatermarks();
  uint64_t MsToSamples(uint32_t ms) const;
  uint32_t SamplesToMs(uint64_t samples) const;
  // Fills from a DTMF item; returns samples written.
  size_t FillDtmf(DtmfItem& item, absl::Span<int16_t> out, bool* done);

  PlayoutConfig config_;
  int samples_per_frame_;
  std::deque<Item> items_;
  uint64_t buffered_samples_ = 0;                      // audio samples queued (not DTMF)
  absl::flat_hash_map<std::string, uint64_t> played_;  // per response with queued audio
  absl::flat_hash_map<std::string, uint64_t> queued_;
  std::string playing_response_;  // response of the last audio played
  std::string drained_response_;  // response that was playing when the queue ran dry
  bool above_high_ = false;
  bool hangup_reached_ = false;
  uint64_t underruns_ = 0;
  std::vector<PlayoutNotice> notices_;
  ToneRenderer* tone_renderer_ = nullptr;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_QUEUE_H_
