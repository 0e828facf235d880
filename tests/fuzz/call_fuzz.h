#ifndef AUDIOSOCKET_BRIDGE_TESTS_FUZZ_CALL_FUZZ_H_
#define AUDIOSOCKET_BRIDGE_TESTS_FUZZ_CALL_FUZZ_H_

// The call fuzz targets' properties (call_harness.h), shared by the
// libFuzzer builds (bench/fuzz.sh) and the corpus replay tests (Bazel, gcc).
// Each returns "" when every property held, else the violation.

#include <cstddef>
#include <cstdint>
#include <string>

namespace audiosocket::fuzz {

// call_session. Byte 0: harness options (CallHarness). Byte 1: bit 0 send a
// valid UUID first; bit 1 accept as soon as the call dials its backend;
// bit 2 then play 40 ms. The rest: chunks of one length byte and that many
// bytes written as Asterisk (length 0: 5 ms of timers run).
std::string CheckCallSession(const uint8_t* data, size_t size);

// backend_commands. Byte 0: harness options. Byte 1: bit 0 accept first;
// bit 1 hand commands over as bytes, as a link on the call's loop does.
// A valid UUID and one audio frame start the call. The rest: records of an
// op byte, a 16-bit big-endian length and a payload: op % 4 == 0 a
// serialized bridge.v1.HandleCallResponse (unparseable payloads are skipped,
// or with bit 1 handed over and refused),
// 1 up to 10 caller audio frames, 2 raw caller bytes, 3 wait (payload[0] %
// 60 ms).
std::string CheckBackendCommands(const uint8_t* data, size_t size);

}  // namespace audiosocket::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#endif  // AUDIOSOCKET_BRIDGE_TESTS_FUZZ_CALL_FUZZ_H_
