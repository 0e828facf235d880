#ifndef AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_ARRIVALS_H_
#define AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_ARRIVALS_H_

// When each of a run's calls starts, relative to the run's start.
//
// The spacing matters beyond the ramp's length. A call's frames go out on
// its own 20 ms clock, started when it connects, so the start times set the
// phase of every frame the call sends. Evenly spaced starts give a few
// phases only (at 500 calls/s, ten: every 2 ms), so many calls' frames reach
// the server together and it can answer several in one wake-up, which real
// callers never allow. Independent callers, and Asterisk's channels with
// their own timers, start at random moments: their frames fall anywhere in
// the 20 ms. Poisson arrivals model that.
//
// Thread-safety: plain functions.

#include <cstdint>
#include <vector>

#include "absl/random/bit_gen_ref.h"
#include "absl/strings/string_view.h"
#include "tools/audiosocket-call/nanos.h"

namespace audiosocket::call {

enum class Arrivals : uint8_t {
  kEven,     // exactly 1/ramp apart
  kPoisson,  // independent gaps, exponential with mean 1/ramp
};
absl::string_view ArrivalsName(Arrivals arrivals);
bool ParseArrivals(absl::string_view text, Arrivals* arrivals);

// Non-decreasing start offsets of `calls` calls started at `ramp` calls per
// second; the first is 0. A ramp of 0 starts them all at once (all 0).
// `gen` is used for Poisson arrivals only.
std::vector<Nanos> StartOffsets(int calls, double ramp, Arrivals arrivals, absl::BitGenRef gen);

}  // namespace audiosocket::call

#endif  // AUDIOSOCKET_BRIDGE_TOOLS_AUDIOSOCKET_CALL_ARRIVALS_H_
