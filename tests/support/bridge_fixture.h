#ifndef AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_BRIDGE_FIXTURE_H_
#define AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_BRIDGE_FIXTURE_H_

// What the end-to-end suites share: a bridge process in push or pull mode
// with its backend side (a PushBackend, or a PullWorker per call), calls
// connected through it, and the test's temporary files.
//
// Threads: a test's thread.

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/bridge_process.h"
#include "tests/support/fake_asterisk.h"
#include "tests/support/test_backends.h"

namespace audiosocket::testing {

inline constexpr char kUuid[] = "40325ec2-5efd-4bd3-805f-53576e581d13";
inline constexpr absl::Duration kWait = absl::Seconds(10);

enum class Mode { kPush, kPull };
// "Push" or "Pull", for parameterized test names.
std::string ModeName(const ::testing::TestParamInfo<Mode>& info);

// Starts a bridge with `flags` and the backend side `mode` needs: push
// mode starts `push` and names it as the bridge's backend; pull mode adds
// --mode=pull.
std::unique_ptr<BridgeProcess> LaunchBridge(Mode mode, std::vector<std::string> flags,
                                            std::unique_ptr<PushBackend>& push);

// A test parameterized by mode, with one bridge and its backend side.
class ModeTest : public ::testing::TestWithParam<Mode> {
 protected:
  // Starts the bridge with `flags`, listening on `listen`, first audio
  // awaited 100 ms, with a push backend or in pull mode.
  void StartBridge(std::vector<std::string> flags = {}, const std::string& listen = "127.0.0.1:0");

  // Connects `asterisk` to listener `listener`, sends `uuid` and one audio
  // frame, and returns the backend's side of the call after CallStarted
  // (accepted in push mode when `accept`); null when no backend got it.
  std::shared_ptr<BackendCall> Connect(FakeAsterisk& asterisk, const std::string& uuid = kUuid,
                                       size_t listener = 0, bool accept = true);

  // StartBridge, then Connect: the backend's side of the call, null when the
  // bridge did not start or no backend got the call.
  std::shared_ptr<BackendCall> StartCall(FakeAsterisk& asterisk,
                                         std::vector<std::string> flags = {},
                                         const std::string& listen = "127.0.0.1:0");

  BridgeProcess& bridge() { return *bridge_; }
  const bridge::v1::CallStarted& started() const { return started_; }

  std::unique_ptr<PushBackend> push_;
  std::vector<std::shared_ptr<PullWorker>> workers_;
  std::unique_ptr<BridgeProcess> bridge_;
  bridge::v1::CallStarted started_;  // of the last call connected
};

// Sends `command` and waits up to kWait for its result (matched by its
// command_id); nullopt, and a failure, when it could not be sent.
std::optional<CallEvent> SendForResult(BackendCall& call, const CallCommand& command);

// Messages that arrive within `duration` (silence flows continuously, so
// "until quiet" would never end).
std::vector<Received> ReadFor(FakeAsterisk& asterisk, absl::Duration duration);

// A path for `name` in the test's temporary folder.
std::string TempPath(const std::string& name);
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, const std::string& contents);

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_BRIDGE_FIXTURE_H_
