#ifndef AUDIOSOCKET_BRIDGE_TESTS_FUZZ_WIRE_DECODER_FUZZ_H_
#define AUDIOSOCKET_BRIDGE_TESTS_FUZZ_WIRE_DECODER_FUZZ_H_

// The wire decoder's fuzz property, shared by the libFuzzer target
// (LLVMFuzzerTestOneInput in wire_decoder_fuzz.cc, built by bench/fuzz.sh)
// and the corpus replay test (built by Bazel with gcc).
//
// Input: byte 0 chooses the options (bit 0 dialect, bits 1-2 unknown-kind
// policy, bit 3 G.711, bits 4-5 max payload, bits 6-7 with the input size
// seed the random chunking); the rest is the AudioSocket byte stream.

#include <cstddef>
#include <cstdint>
#include <string>

namespace audiosocket::fuzz {

// Decodes the stream whole, one byte at a time and in random chunks (also
// through PrepareWrite/Commit and DecodeFrom), re-encodes every message and checks: the
// three runs agree (messages, error, counters); the re-encoded bytes equal the
// consumed input (under kSkip: the kKeep run's bytes without unknown kinds);
// DecodeOne of each frame agrees; errors name an offset; the asterisk
// dialect refuses to send Asterisk anything but audio and hangup. Returns ""
// when all hold, else what failed.
std::string CheckWireRoundTrip(const uint8_t* data, size_t size);

}  // namespace audiosocket::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#endif  // AUDIOSOCKET_BRIDGE_TESTS_FUZZ_WIRE_DECODER_FUZZ_H_
