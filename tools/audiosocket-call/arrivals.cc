#include "tools/audiosocket-call/arrivals.h"

#include <cmath>

#include "absl/random/distributions.h"

namespace audiosocket::call {

absl::string_view ArrivalsName(Arrivals arrivals) {
  return arrivals == Arrivals::kPoisson ? "poisson" : "even";
}

bool ParseArrivals(absl::string_view text, Arrivals* arrivals) {
  for (Arrivals a : {Arrivals::kEven, Arrivals::kPoisson}) {
    if (text == ArrivalsName(a)) {
      *arrivals = a;
      return true;
    }
  }
  return false;
}

std::vector<Nanos> StartOffsets(int calls, double ramp, Arrivals arrivals, absl::BitGenRef gen) {
  std::vector<Nanos> offsets(static_cast<size_t>(calls > 0 ? calls : 0), 0);
  if (ramp <= 0) return offsets;
  const double gap = static_cast<double>(kSecond) / ramp;
  double at = 0;
  for (size_t i = 1; i < offsets.size(); ++i) {
    if (arrivals == Arrivals::kPoisson) {
      at += absl::Exponential<double>(gen, 1.0 / gap);
      offsets[i] = static_cast<Nanos>(std::llround(at));
    } else {
      // From the index, not a running sum, so rounding never accumulates.
      offsets[i] = static_cast<Nanos>(std::llround(static_cast<double>(i) * gap));
    }
  }
  return offsets;
}

}  // namespace audiosocket::call
