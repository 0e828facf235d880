#ifndef AUDIOSOCKET_BRIDGE_TESTS_FUZZ_PLAY_COMMAND_DECODER_FUZZ_H_
#define AUDIOSOCKET_BRIDGE_TESTS_FUZZ_PLAY_COMMAND_DECODER_FUZZ_H_

// The play command decoder's fuzz property (server/backend/
// play_command_decoder.h), shared by the libFuzzer target (built by
// bench/fuzz.sh) and the corpus replay test (built by Bazel with gcc).
//
// Input: the bytes of a backend message, as a link hands them to the call.

#include <cstddef>
#include <cstdint>
#include <string>

namespace audiosocket::fuzz {

// Checks: whenever DecodePlayCommand reads the bytes, protobuf parses them
// as a HandleCallResponse and as a ClaimCallRequest holding a PlayAudio
// command with the same fields; and whenever protobuf parses them as such
// a command with ASCII ids, the decoder reads protobuf's own serialization
// of it, with the same fields. Returns "" when both hold, else what failed.
std::string CheckPlayCommandDecoder(const uint8_t* data, size_t size);

}  // namespace audiosocket::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

#endif  // AUDIOSOCKET_BRIDGE_TESTS_FUZZ_PLAY_COMMAND_DECODER_FUZZ_H_
