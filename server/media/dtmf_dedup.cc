#include "server/media/dtmf_dedup.h"

namespace audiosocket {

bool DtmfDeduplicator::Open(int source, char digit, int64_t at_ms, bool closed) {
  Instance instance{digit, at_ms, closed ? at_ms : -1};
  for (Instance& other : instances_[1 - source]) {
    if (other.digit != digit || other.paired) continue;
    const bool overlaps = at_ms >= other.start_ms - kSlackMs &&
                          (other.end_ms < 0 || at_ms <= other.end_ms + kSlackMs);
    if (overlaps) {
      other.paired = true;
      instance.paired = true;
      instance.suppressed = true;
      break;
    }
  }
  std::deque<Instance>& mine = instances_[source];
  mine.push_back(instance);
  while (!mine.empty() && mine.front().end_ms >= 0 && mine.front().end_ms < at_ms - kKeepMs) {
    mine.pop_front();
  }
  return !instance.suppressed;
}

bool DtmfDeduplicator::Admit(bridge::v1::DtmfSource source, char digit, bridge::v1::DtmfPhase phase,
                             int64_t at_ms) {
  const int index = source == bridge::v1::DTMF_SOURCE_INBAND ? 1 : 0;
  switch (phase) {
    case bridge::v1::DTMF_PHASE_BEGIN:
      return Open(index, digit, at_ms, /*closed=*/false);
    case bridge::v1::DTMF_PHASE_END: {
      for (auto it = instances_[index].rbegin(); it != instances_[index].rend(); ++it) {
        if (it->digit == digit && it->end_ms < 0) {
          it->end_ms = at_ms;
          return !it->suppressed;
        }
      }
      return Open(index, digit, at_ms, /*closed=*/true);  // an end with no begin
    }
    default:
      return Open(index, digit, at_ms, /*closed=*/true);
  }
}

}  // namespace audiosocket
