#ifndef AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_PLAYOUT_H_
#define AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_PLAYOUT_H_

// Audio toward the caller at an exact 20 ms cadence: one frame per tick of
// a FramePacer, taken from the playout queue (backend audio converted to
// the playout rate, in-band DTMF tones, silence when nothing is queued) and
// encoded as signed linear AudioSocket audio. What the queue reaches on the
// way (marks, DTMF starts and stops, a hang-up after playout, watermarks)
// goes to the delegate around the frame it belongs to. The ticks come from
// the loop's SlotTicker, with every other call on the same tick slot.
//
// Threads: confined to the call's loop. Ownership: owned by its call; the
// delegate (the call) outlives it; it leaves its ticker when stopped or
// destroyed.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/types/span.h"
#include "lib/event/dispatcher.h"
#include "lib/event/frame_pacer.h"
#include "lib/wire/wire.h"
#include "server/media/outbound_audio.h"
#include "server/ops/counters.h"
#include "server/ops/latency_histogram.h"
#include "server/playout/playout_queue.h"
#include "server/playout/slot_ticker.h"
#include "server/playout/tick_slots.h"

namespace audiosocket {

inline constexpr event::Nanos kFramePeriod = std::chrono::milliseconds(20);
static_assert(TickSlots::kGrid * TickSlots::kSlots == kFramePeriod,
              "a call keeps its tick slot only if the slots span one frame period");

class Playout : private SlotTicker::Member {
 public:
  class Delegate {
   public:
    virtual ~Delegate() = default;
    // One encoded audio message to write to the caller (valid during the
    // call).
    virtual void OnPlayoutFrame(absl::Span<const uint8_t> message) = 0;
    // What the queue reached. Called twice a tick: with `before_frame` for
    // the notices that go before the frame (DTMF starts), then for the rest.
    virtual void OnPlayoutNotices(const std::vector<PlayoutNotice>& notices, bool before_frame) = 0;
  };

  struct Options {
    wire::Dialect dialect = wire::Dialect::kAsterisk;
    // The queue's own defaults.
    uint32_t max_playout_ms = PlayoutConfig{}.max_buffer_ms;
    uint32_t high_watermark_ms = PlayoutConfig{}.high_watermark_ms;
    uint32_t low_watermark_ms = PlayoutConfig{}.low_watermark_ms;
    // Silence frames when nothing is queued (Asterisk expects a steady stream).
    bool send_silence = true;
    // When set, every tick's lateness (how long after its deadline it ran,
    // the frame's delay toward Asterisk) is observed here.
    LatencyHistogram* tick_lateness = nullptr;
    // The loop's ticks, shared by its calls; without it (tests) the
    // playout has a ticker of its own.
    SlotTicker* ticker = nullptr;
  };

  Playout(event::Dispatcher* loop, Options options, BridgeCounters* counters, Delegate* delegate,
          std::weak_ptr<void> owner);
  ~Playout() override;

  // (Re)starts the queue, empty, at `rate_hz`; the first call joins the
  // ticker (the first tick within 5 ms, on the slot TickSlots chooses),
  // later ones keep the pacer's grid.
  void Restart(int rate_hz);
  // No more ticks.
  void Stop();

  PlayoutQueue& queue() { return *queue_; }
  OutboundConverter& converter() { return *converter_; }
  int rate_hz() const { return rate_hz_; }
  // Anything but silence was written.
  bool played_content() const { return played_content_; }
  uint64_t frames_sent() const { return frames_sent_; }
  uint64_t silence_frames() const { return silence_frames_; }
  // Hands notices a command caused (a clear, audio queued) to the delegate.
  void FlushNotices();

  // Notices handed to the delegate per loop round, at most. A clear of
  // everything can resolve tens of thousands of queued marks at once;
  // turning them all into events in one go held the call's loop, and every
  // other call on it, for milliseconds. The rest follow in the next rounds,
  // in order, ahead of anything newer (a DTMF start then follows its frame).
  static constexpr size_t kNoticesPerRound = 256;

 private:
  // SlotTicker::Member: plays a frame when the pacer's next deadline has
  // come by `now` and the owner lives.
  void OnSlotTick(event::MonoTime now) override;
  // Plays one frame.
  void OnTick();
  // Notices past kNoticesPerRound: a round of their own soon.
  void FlushRestLater();
  // Sizes message_ for the rate's frame and writes its header.
  void BuildMessage();
  void LeaveTicker();

  event::Dispatcher* const loop_;
  const Options options_;
  BridgeCounters* const counters_;
  Delegate* const delegate_;
  const std::weak_ptr<void> owner_;

  int rate_hz_ = 0;
  std::optional<OutboundConverter> converter_;
  std::optional<InbandToneRenderer> tone_renderer_;
  std::optional<PlayoutQueue> queue_;
  std::optional<event::FramePacer> pacer_;
  std::optional<SlotTicker> own_ticker_;       // without options_.ticker
  SlotTicker* ticker_ = nullptr;               // set while a member
  event::Dispatcher::TimerId rest_timer_ = 0;  // FlushRestLater's, while set
  bool stopped_ = false;
  bool played_content_ = false;
  uint64_t frames_sent_ = 0;
  uint64_t silence_frames_ = 0;
  // The audio message each tick writes, built in place: one spare byte,
  // the 3-byte header (the same for every frame at a rate), then the
  // frame's samples, which the queue fills where they are sent from. The
  // spare byte puts the samples on a 2-byte boundary.
  static constexpr size_t kHeaderOffset = 1;
  static constexpr size_t kSamplesOffset = kHeaderOffset + wire::kHeaderSize;
  static_assert(kSamplesOffset % sizeof(int16_t) == 0);
  std::vector<int16_t> message_;
  absl::Span<int16_t> frame_;          // the samples in message_
  absl::Span<const uint8_t> encoded_;  // the message in message_
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_PLAYOUT_PLAYOUT_H_
