#ifndef AUDIOSOCKET_BRIDGE_LIB_EVENT_FRAME_PACER_H_
#define AUDIOSOCKET_BRIDGE_LIB_EVENT_FRAME_PACER_H_

// Absolute-deadline pacing of a stream of frames: deadline n is
// start + n * period, computed from the frame number and never by adding to
// the previous deadline, so scheduling error never accumulates.
//
// Two ways to handle a late tick, chosen by the caller:
// - OnTick(now): send one frame, not a burst; deadlines that have already
//   passed are skipped and counted (the bridge's playout: a late frame
//   played at once would only grow the caller's jitter buffer).
// - Advance() while Due(now): catch up on every due frame (the emulator,
//   which must send what Asterisk would have sent by now).
//
// Threads: a value type; one owner, on that owner's dispatcher thread.

#include <cstdint>

#include "lib/event/time_source.h"

namespace audiosocket::event {

class FramePacer {
 public:
  FramePacer() = default;
  FramePacer(MonoTime start, Nanos period) : start_(start), period_(period) {}

  MonoTime start() const { return start_; }
  Nanos period() const { return period_; }

  // The frame that will be handled next, and its deadline.
  int64_t next_frame() const { return index_; }
  MonoTime next_deadline() const { return Deadline(index_); }
  MonoTime Deadline(int64_t frame) const { return start_ + period_ * frame; }

  // True when the next frame's deadline is at or before `now`.
  bool Due(MonoTime now) const { return next_deadline() <= now; }

  // Marks the next frame as handled (sent or suppressed).
  void Advance() {
    ++index_;
    ++frames_;
  }

  // Called when the timer fires at `now` (>= next_deadline()). Advances to
  // the first deadline after `now`; the caller sends exactly one frame.
  void OnTick(MonoTime now) {
    Advance();
    while (next_deadline() <= now) {
      ++index_;
      ++skipped_;
    }
  }

  // How late a tick at `now` is for the current deadline.
  Nanos Lateness(MonoTime now) const { return now - next_deadline(); }

  // How many frames are due by `now` in total (frames 0..k-1 with
  // Deadline(k-1) <= now), whether handled or not.
  int64_t FramesDueBy(MonoTime now) const {
    if (now < start_) return 0;
    return (now - start_) / period_ + 1;
  }

  // Frames handled (OnTick or Advance) and deadlines skipped by OnTick.
  uint64_t frames() const { return frames_; }
  uint64_t skipped() const { return skipped_; }

 private:
  MonoTime start_{};
  Nanos period_ = std::chrono::milliseconds(20);
  int64_t index_ = 0;
  uint64_t frames_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace audiosocket::event

#endif  // AUDIOSOCKET_BRIDGE_LIB_EVENT_FRAME_PACER_H_
