#ifndef AUDIOSOCKET_BRIDGE_TESTS_FUZZ_CALL_HARNESS_H_
#define AUDIOSOCKET_BRIDGE_TESTS_FUZZ_CALL_HARNESS_H_

// Runs the real Call (server/call/) for fuzzing: on a shared EpollDispatcher
// thread, its AudioSocket connection one end of a socketpair. The harness
// plays Asterisk on the other end (writes fuzz bytes, reads and decodes what
// the bridge writes) and the backend through a fake BackendLink (push mode's
// PushConnector dialling fake links), so commands reach the call exactly as
// a gRPC stream's would (LinkObserver::OnBackendCommand).
//
// Checked for every input (Failure() names the first violation):
//   - the bridge's bytes toward Asterisk decode without error in the
//     listener's dialect, audio only in whole 20 ms frames at one rate, and
//     nothing after a hang-up (0x00);
//   - the backend sees at most one CallEnded, and nothing after it;
//   - once the caller's end closes, the call closes its socket, leaves the
//     registry, and the active-call count returns to zero.
// Sanitizers (ASan/UBSan in bench/fuzz.sh and --config=asan) catch the rest.
//
// Threads: the harness is driven from one thread; every call into the Call
// runs on the loop thread (RunOnLoop waits for it).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/wire/wire.h"

namespace audiosocket {
class Call;
}

namespace audiosocket::fuzz {

class FakeLink;
struct HarnessServices;

class CallHarness {
 public:
  // Byte `options`: bit 0 extended dialect; bits 1-2 encoding (slin, ulaw,
  // alaw, slin); bit 3 in-band DTMF detection.
  explicit CallHarness(uint8_t options);
  ~CallHarness();  // closes the caller's end if still open, then Finish()
  CallHarness(const CallHarness&) = delete;
  CallHarness& operator=(const CallHarness&) = delete;

  wire::Dialect dialect() const;
  bool linear() const;  // 16-bit audio on the wire (not G.711)

  // Writes `bytes` as Asterisk and lets the call read them.
  void SendFromCaller(absl::Span<const uint8_t> bytes);
  // A command from the backend on the current link (ignored before the
  // call opened one).
  // What a push backend sends (accept, reject, or an in-call command).
  void Command(const bridge::v1::HandleCallResponse& message);
  void Command(const bridge::v1::CallCommand& command);
  // The same as its bytes, handed over on the call's loop as a link there
  // does (the call parses them, or reads a play without parsing).
  void CommandBytes(absl::string_view bytes);
  // Runs the call's timers for about `ms` of real time (bounded).
  void Wait(int ms);
  bool has_link() const;
  // Reads and checks what the bridge wrote to the caller.
  void Drain();
  // Closes the caller's end and checks how the call ended.
  void Finish();

  // "" when every property held.
  const std::string& Failure() const { return failure_; }

 private:
  void RunOnLoop(std::function<void()> task);
  void Fail(std::string what);

  std::unique_ptr<HarnessServices> services_;
  std::shared_ptr<Call> call_;
  int caller_fd_ = -1;
  bool finished_ = false;
  std::string failure_;
  // The caller's view of the bridge's output.
  std::unique_ptr<wire::Decoder> decoder_;
  bool hangup_seen_ = false;
  int audio_kind_ = -1;
  int kind_changes_ = 0;
};

// One valid UUID message (01 00 10 + 16 bytes) whose bytes depend on `seed`.
std::vector<uint8_t> UuidMessage(uint8_t seed);
// One 20 ms audio message for the harness's encoding at 8 kHz.
std::vector<uint8_t> AudioMessage(const CallHarness& harness, int16_t level);

}  // namespace audiosocket::fuzz

#endif  // AUDIOSOCKET_BRIDGE_TESTS_FUZZ_CALL_HARNESS_H_
