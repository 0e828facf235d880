// Fuzz target: the call state machine (server/call/) fed a byte stream
// from the AudioSocket side. See call_fuzz.h for the input layout and
// call_harness.h for the properties.

#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/call_fuzz.h"
#include "tests/fuzz/call_harness.h"

namespace audiosocket::fuzz {

std::string CheckCallSession(const uint8_t* data, size_t size) {
  if (size < 2) return "";
  CallHarness harness(data[0]);
  const uint8_t flags = data[1];
  if (flags & 1) harness.SendFromCaller(UuidMessage(data[0]));
  size_t offset = 2;
  bool accepted = false;
  // Chunks: one length byte, then that many stream bytes (length 0: let
  // 5 ms of timers run).
  while (offset < size && harness.Failure().empty()) {
    const size_t length = data[offset++];
    if (length == 0) {
      harness.Wait(5);
    } else {
      const size_t n = std::min(length, size - offset);
      harness.SendFromCaller(absl::MakeConstSpan(data + offset, n));
      offset += n;
    }
    if ((flags & 2) && !accepted && harness.has_link()) {
      bridge::v1::HandleCallResponse accept;
      accept.mutable_accept();
      harness.Command(accept);
      accepted = true;
      if (flags & 4) {
        bridge::v1::CallCommand play;
        play.mutable_play()->set_pcm(std::string(640, '\x11'));
        harness.Command(play);
      }
    }
  }
  harness.Finish();
  return harness.Failure();
}

}  // namespace audiosocket::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string violation = audiosocket::fuzz::CheckCallSession(data, size);
  if (!violation.empty()) {
    std::fprintf(stderr, "call session property violated: %s\n", violation.c_str());
    std::abort();
  }
  return 0;
}
