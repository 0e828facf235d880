#ifndef AUDIOSOCKET_BRIDGE_SERVER_MEDIA_DTMF_DEDUP_H_
#define AUDIOSOCKET_BRIDGE_SERVER_MEDIA_DTMF_DEDUP_H_

// A digit that Asterisk signals (0x03 or 0x02) and that the bridge also
// hears in the audio must reach the backend once. Each press is an
// instance (BEGIN..END, or one END_ONLY); an instance from one source that
// overlaps an unpaired instance of the same digit from the other source is
// paired with it and suppressed, whole. Whichever source reports first wins.
//
// Not thread-safe; one per call on its loop.

#include <cstdint>
#include <deque>

#include "audiosocket/bridge/v1/bridge.pb.h"

namespace audiosocket {

class DtmfDeduplicator {
 public:
  // `at_ms` is the event's position in the call's inbound audio. Returns
  // true when the event should be sent to the backend.
  bool Admit(bridge::v1::DtmfSource source, char digit, bridge::v1::DtmfPhase phase, int64_t at_ms);

 private:
  struct Instance {
    char digit;
    int64_t start_ms;
    int64_t end_ms;  // -1 while the digit sounds
    bool paired = false;
    bool suppressed = false;
  };
  static constexpr int64_t kSlackMs = 500;
  static constexpr int64_t kKeepMs = 10000;

  bool Open(int source, char digit, int64_t at_ms, bool closed);
  std::deque<Instance> instances_[2];
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_MEDIA_DTMF_DEDUP_H_
