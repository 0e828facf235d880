#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_PACER_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_PACER_H_

// Absolute-deadline pacing: frame n is due at start + n * period. Deadlines
// are computed from the frame number, never by adding to the previous
// deadline, so lateness in one tick never shifts later frames (no drift).
//
// Thread-safety: a value type; one owner (a Call on the event-loop thread).

#include <cstdint>

#include "tools/audiosocket-call/clock.h"

namespace audiosocket::call {

class Pacer {
 public:
  Pacer() = default;
  Pacer(Nanos start, Nanos period) : start_(start), period_(period) {}

  Nanos start() const { return start_; }
  Nanos period() const { return period_; }

  // The frame that will be sent next and its deadline.
  int64_t next_frame() const { return next_; }
  Nanos NextDeadline() const { return Deadline(next_); }
  Nanos Deadline(int64_t frame) const { return start_ + frame * period_; }

  // True when the next frame's deadline is at or before `now`.
  bool Due(Nanos now) const { return NextDeadline() <= now; }
  // Marks the next frame as handled (sent or suppressed).
  void Advance() { ++next_; }

  // How many frames are due by `now` in total (frames 0..k-1 with
  // Deadline(k-1) <= now), whether handled or not.
  int64_t FramesDueBy(Nanos now) const {
    if (now < start_) return 0;
    return (now - start_) / period_ + 1;
  }

 private:
  Nanos start_ = 0;
  Nanos period_ = 20 * kMillisecond;
  int64_t next_ = 0;
};

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_PACER_H_
