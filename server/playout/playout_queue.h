#ifndef AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_PLAYOUT_QUEUE_H_
#define AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_PLAYOUT_QUEUE_H_

// What a call plays to the caller: backend audio (already at the call's
// rate), marks, DTMF and hang-up requests, in the order the backend sent
// them. Each Tick() produces exactly one frame (20 ms) and the notices that
// frame causes: marks played, DTMF start/stop, watermarks, underruns.
//
// This class keeps the exact account of what the caller heard: a mark
// resolves once (played, cleared or call ended), a clear reports per
// response how much was played and how much discarded.
//
// Everything it holds is bounded before it is taken: audio and DTMF by
// playing time (max_buffer_ms, counted at the call's rate before any
// conversion), marks, DTMF digits and per-item bookkeeping by bytes
// (max_item_bytes). Audio at another rate is kept as it came and converted
// in slices of at most convert_slice_ms as playout reaches it, so no single
// backend message makes the loop convert more than a slice at a time.
//
// Not thread-safe; owned by one call on its event loop. No clock: the
// caller ticks it.

#include <cstdint>
#include <deque>
#include <string>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/node_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
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

// Converts backend audio at another rate to the queue's rate as playout
// reaches it (lib/dsp's resampler, one per input rate, in the call).
class RateConverter {
 public:
  virtual ~RateConverter() = default;
  // Converts all of `in` (audio at `input_rate_hz`) and appends the result
  // at the queue's rate to `out`. Filter state carries over from one call to
  // the next for the same input rate, so audio converted in slices sounds as
  // if converted whole.
  virtual void Convert(int input_rate_hz, absl::Span<const int16_t> in,
                       std::vector<int16_t>* out) = 0;
};

struct PlayoutConfig {
  int sample_rate_hz = 8000;
  int frame_ms = 20;
  // Enqueue fails with RESOURCE_EXHAUSTED beyond this much queued playing
  // time: audio (counted at this rate, before conversion) and DTMF tones
  // and gaps.
  int max_buffer_ms = 120000;
  int high_watermark_ms = 5000;
  int low_watermark_ms = 1000;
  // Bytes of bookkeeping queued items may hold: mark names, DTMF digits and
  // command ids, response ids, plus kItemOverheadBytes per item. Bounds a
  // backend sending millions of marks or tiny chunks of alternating
  // responses.
  size_t max_item_bytes = 4 << 20;
  // Audio at another rate is converted at most this much (of output) at a
  // time, as playout reaches it.
  int convert_slice_ms = 100;
};

// What each queued item counts against PlayoutConfig::max_item_bytes
// besides its strings (the item itself and its container slot).
inline constexpr size_t kItemOverheadBytes = 128;

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
    kUnderrun,       // response_id: more audio of a response whose playout ran dry
                     // (the caller heard silence inside it)
    kDrained,        // response_id: playout ran dry after audio; silence follows
  };
  Type type;
  std::string name;  // mark name, command id or response id
  char digit = 0;
  uint32_t duration_ms = 0;
  uint32_t buffered_ms = 0;
};

// Notices in the order they were produced, handed on from the oldest a
// slice at a time (a clear can produce tens of thousands at once). Moving
// a whole list is constant time. Not thread-safe: the call's loop owns it.
class NoticeList {
 public:
  void push_back(PlayoutNotice notice) { notices_.push_back(std::move(notice)); }
  // Room for `n` more without regrowing.
  void reserve_more(size_t n) { notices_.reserve(notices_.size() + n); }
  size_t size() const { return notices_.size() - taken_; }
  bool empty() const { return size() == 0; }
  // Up to `max` of the oldest, in order.
  std::vector<PlayoutNotice> Take(size_t max);
  // Appends up to `max` of the oldest to `out`; returns how many.
  size_t TakeInto(size_t max, std::vector<PlayoutNotice>* out);
  // Puts `older` ahead of these.
  void Prepend(NoticeList older);

 private:
  std::vector<PlayoutNotice> notices_;
  size_t taken_ = 0;  // notices_[0, taken_) were handed on already
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
  // Not copyable: it remembers an address inside its own map.
  PlayoutQueue(const PlayoutQueue&) = delete;
  PlayoutQueue& operator=(const PlayoutQueue&) = delete;

  int samples_per_frame() const { return samples_per_frame_; }
  const PlayoutConfig& config() const { return config_; }

  // Queues audio at the call's rate. RESOURCE_EXHAUSTED past max_buffer_ms
  // or max_item_bytes, checked before anything is copied.
  absl::Status EnqueueAudio(absl::Span<const int16_t> samples, absl::string_view response_id);
  // Queues `pcm` (LINEAR16 little-endian, an even number of bytes) at
  // `input_rate_hz`. Audio at another rate than the queue's is kept as it
  // came and converted by the converter as playout reaches it; the bound is
  // checked first, in output samples (input x queue rate / input rate).
  absl::Status EnqueuePcm(absl::string_view pcm, int input_rate_hz, absl::string_view response_id);
  // RESOURCE_EXHAUSTED past max_item_bytes.
  absl::Status EnqueueMark(std::string name);
  // `inband` renders tones into the audio (asterisk dialect); otherwise the
  // item only takes time and produces start/stop notices. Each digit's tone
  // and gap count against max_buffer_ms: RESOURCE_EXHAUSTED beyond it.
  absl::Status EnqueueDtmf(std::string digits, uint32_t tone_ms, uint32_t gap_ms,
                           std::string command_id, bool inband);
  // Always taken: at most one per call matters, and a call has one.
  void EnqueueHangup();

  // Fills `frame` (samples_per_frame() long) with the next 20 ms: queued
  // audio or tones, silence where nothing is queued. Returns true when
  // anything but silence was queued for it.
  bool Tick(absl::Span<int16_t> frame);

  // Barge-in: drops queued audio (of `response_id` only, or everything when
  // empty). Clearing everything also drops marks (resolved cleared) and DTMF
  // (cancelled); hang-up requests stay.
  ClearReport Clear(const std::string& response_id);

  class Leftovers;
  // Empties the queue at the end of the call, in constant time: what was
  // left (and notices not taken yet) moves to the Leftovers, which resolve
  // each remaining mark and DTMF as they are taken.
  Leftovers Abandon();

  // Notices produced and not taken yet, oldest first: all of them, or at
  // most `max` (the rest stay for the next call, ahead of newer ones).
  std::vector<PlayoutNotice> TakeNotices();
  std::vector<PlayoutNotice> TakeNotices(size_t max);
  size_t pending_notices() const { return notices_.size(); }
  // Every notice not taken yet, in constant time, for another queue's
  // AdoptNotices (which puts them ahead of its own).
  NoticeList ReleaseNotices();
  void AdoptNotices(NoticeList older);

  // Queued audio at the queue's rate (audio not converted yet counted at its
  // length in output samples).
  uint64_t buffered_samples() const { return buffered_samples_; }
  uint32_t buffered_ms() const;
  // Queued DTMF time (tones and gaps not played yet), in samples.
  uint64_t dtmf_samples() const { return dtmf_samples_; }
  size_t item_bytes() const { return item_bytes_; }
  // Bytes allocated for queued audio samples (capacity, not content),
  // including the spare buffer kept for the next item. Walks the queue.
  size_t audio_buffer_bytes() const;
  uint64_t underruns() const { return underruns_; }
  bool empty() const { return items_.empty(); }

  void set_tone_renderer(ToneRenderer* renderer) { tone_renderer_ = renderer; }
  void set_converter(RateConverter* converter) { converter_ = converter; }

 private:
  struct AudioItem {
    std::string response_id;
    std::vector<int16_t> samples;  // at the queue's rate, ready to play
    size_t position = 0;           // next sample of `samples` to play
    int input_rate_hz = 0;         // 0: came at the queue's rate
    std::vector<int16_t> input;    // at input_rate_hz, not converted yet
    size_t input_position = 0;     // next sample of `input` to convert
    uint64_t pending_samples = 0;  // output samples counted for the rest of `input`
    uint64_t remaining() const { return samples.size() - position + pending_samples; }
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
  // Output samples `input_samples` at `input_rate_hz` count for.
  uint64_t OutputSamples(uint64_t input_samples, int input_rate_hz) const;
  // OK, or RESOURCE_EXHAUSTED when `samples` more playing time (at the
  // queue's rate) or `bytes` more bookkeeping would pass a bound.
  absl::Status CheckRoom(uint64_t samples, size_t bytes, absl::string_view what) const;
  static size_t ItemBytes(const Item& item);
  static uint64_t DtmfRemaining(const DtmfItem& item);
  void PushItem(Item item);
  void PopFront();
  // Queues `count` input samples that `copy` writes at the end of a vector.
  absl::Status Enqueue(size_t count, int input_rate_hz, absl::string_view response_id,
                       absl::FunctionRef<void(int16_t*)> copy);
  // Converts the next slice of an item's input (at least enough for
  // `wanted` output samples, at most convert_slice_ms of it when more is
  // not wanted); the played part of `samples` is dropped first.
  void ConvertSlice(AudioItem& item, size_t wanted);
  // Changes an item's counted length by `delta` samples.
  void Recount(absl::string_view response_id, int64_t delta);
  // The response's entry, made if missing. Every frame queued and played
  // looks one up, nearly always the one looked up last: that one is
  // remembered, and forgotten wherever an entry is erased.
  struct ResponseAudio;
  ResponseAudio& Response(absl::string_view response_id);
  void EraseResponse(absl::string_view response_id);
  // Fills from a DTMF item; returns samples written.
  size_t FillDtmf(DtmfItem& item, absl::Span<int16_t> out, bool* done);

  PlayoutConfig config_;
  int samples_per_frame_;
  std::deque<Item> items_;
  // An emptied sample vector of a played item, for the next audio item; at
  // most kSpareSamplesMax. A response's audio is split into items of about
  // that much (Enqueue), so a long prompt's vectors are reused; only a
  // single chunk longer than that gets a vector freed once played.
  static constexpr size_t kSpareSamplesMax = 4096;
  std::vector<int16_t> spare_samples_;
  uint64_t buffered_samples_ = 0;  // audio samples queued (not DTMF)
  uint64_t dtmf_samples_ = 0;      // DTMF tones and gaps not played yet
  size_t item_bytes_ = 0;          // ItemBytes() of every queued item
  // Per response with audio queued: samples still queued and played so far.
  // One entry for both, so a tick looks its response up once.
  struct ResponseAudio {
    uint64_t queued = 0;
    uint64_t played = 0;
  };
  // Node-based: the remembered entry's address survives other insertions.
  absl::node_hash_map<std::string, ResponseAudio> responses_;
  ResponseAudio* last_response_ = nullptr;  // responses_[last_response_id_]
  std::string last_response_id_;
  std::string playing_response_;  // response of the last audio played
  // The response whose audio was the last thing queued (empty once a mark,
  // DTMF, hang-up or another response follows it): its audio may still be
  // coming, so running dry inside it is a gap, not its end.
  std::string open_response_;
  // The open response whose playout ran dry with the caller hearing
  // silence: more of its audio is an underrun.
  std::string starved_response_;
  bool last_frame_full_ = false;  // the previous frame was all queued content
  bool above_high_ = false;
  bool hangup_reached_ = false;
  uint64_t underruns_ = 0;
  NoticeList notices_;
  ToneRenderer* tone_renderer_ = nullptr;
  RateConverter* converter_ = nullptr;
};

// What a queue held when its call ended, resolved a slice at a time. A
// backend can queue some 25,000 marks within max_item_bytes; turning them
// all into events in one go held the call's loop, and every other call on
// it, for tens of milliseconds. Whoever tells the backend takes a slice per
// loop round instead.
//
// Not thread-safe: the call's loop owns it.
class PlayoutQueue::Leftovers {
 public:
  Leftovers() = default;
  Leftovers(Leftovers&&) = default;
  Leftovers& operator=(Leftovers&&) = default;

  bool empty() const { return notices_.empty() && items_.empty(); }

  // Appends the notices of up to `max` more leftovers to `out`, oldest
  // first: notices produced before the end first, then each queued mark as
  // kMarkCleared (reported by the call as CALL_ENDED) and each DTMF as
  // kDtmfCancelled. Queued audio and hang-ups count towards `max` and give
  // no notice.
  void Take(size_t max, std::vector<PlayoutNotice>* out);

 private:
  friend class PlayoutQueue;
  NoticeList notices_;
  std::deque<Item> items_;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_PLAYOUT_QUEUE_H_
