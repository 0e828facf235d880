#ifndef AUDIOSOCKET_BRIDGE_SERVER_FRAME_PACER_H_
#define AUDIOSOCKET_BRIDGE_SERVER_FRAME_PACER_H_

// Absolute-deadline pacing for one call's outbound frames: deadline n is
// start + n * period, so scheduling error never accumulates. A tick that
// comes late sends one frame, not a burst: deadlines that have already
// passed are skipped (and counted) instead of being caught up.
//
// Not thread-safe; owned by one call on its event loop.

#include <cstdint>

#include "server/clock.h"

namespace audiosocket {

class FramePacer {
 public:
  FramePacer(MonoTime start, Nanos period) : start_(start), period_(period) {}

  // The deadline of the next frame.
  MonoTime next_deadline() const { return start_ + period_ * static_cast<int64_t>(index_); }

  // Called when the timer fires at `now` (>= next_deadline()). Advances to
  // the next deadline after `now`; the caller sends exactly one frame.
  void OnTick(MonoTime now) {
    ++index_;
    ++frames_;
    while (next_deadline() <= now) {
      ++index_;
      ++skipped_;
    }
  }

  // How late a tick at `now` is for the current deadline.
  Nanos Lateness(MonoTime now) const { return now - next_deadline(); }

  uint64_t frames() const { return frames_; }
  uint64_t skipped() const { return skipped_; }

 private:
  MonoTime start_;
  Nanos period_;
  uint64_t index_ = 0;
  uint64_t frames_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_FRAME_PACER_H_
