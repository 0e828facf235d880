// Fuzz target: backend commands into a live call (server/call/), each a
// bridge.v1.HandleCallResponse parsed from fuzz bytes, interleaved with caller audio
// and time. See call_fuzz.h for the input layout and call_harness.h for the
// properties.

#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/call_fuzz.h"
#include "tests/fuzz/call_harness.h"

namespace audiosocket::fuzz {

std::string CheckBackendCommands(const uint8_t* data, size_t size) {
  if (size < 2) return "";
  CallHarness harness(data[0]);
  const uint8_t flags = data[1];
  harness.SendFromCaller(UuidMessage(data[0]));
  harness.SendFromCaller(AudioMessage(harness, 100));
  for (int i = 0; i < 20 && !harness.has_link(); ++i) harness.Wait(1);
  if (!harness.has_link()) return "the call never opened its backend link";
  if (flags & 1) {
    bridge::v1::HandleCallResponse accept;
    accept.mutable_accept();
    harness.Command(accept);
  }
  size_t offset = 2;
  // Records: op, 16-bit length, payload.
  while (offset + 3 <= size && harness.Failure().empty()) {
    const uint8_t op = data[offset];
    const size_t length = static_cast<size_t>(data[offset + 1]) << 8 | data[offset + 2];
    offset += 3;
    const size_t n = std::min(length, size - offset);
    const uint8_t* payload = data + offset;
    offset += n;
    switch (op % 4) {
      case 0: {
        if (flags & 2) {
          harness.CommandBytes(absl::string_view(reinterpret_cast<const char*>(payload), n));
          break;
        }
        bridge::v1::HandleCallResponse command;
        if (command.ParseFromArray(payload, static_cast<int>(n))) harness.Command(command);
        break;
      }
      case 1:
        for (size_t i = 0; i < std::min<size_t>(n, 10); ++i) {
          harness.SendFromCaller(AudioMessage(harness, static_cast<int16_t>(payload[i] * 100)));
        }
        break;
      case 2:
        harness.SendFromCaller(absl::MakeConstSpan(payload, n));
        break;
      default:
        harness.Wait(n > 0 ? payload[0] % 60 : 20);
    }
  }
  harness.Finish();
  return harness.Failure();
}

}  // namespace audiosocket::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string violation = audiosocket::fuzz::CheckBackendCommands(data, size);
  if (!violation.empty()) {
    std::fprintf(stderr, "backend command property violated: %s\n", violation.c_str());
    std::abort();
  }
  return 0;
}
