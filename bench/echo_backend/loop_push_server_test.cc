// echo-backend's loop push server against the real bridge in push mode, on
// TCP and on a Unix domain socket: it accepts the call and echoes the
// caller's audio back, and the stream ends cleanly when the call does.

#include "bench/echo_backend/loop_push_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "bench/echo_backend/echo_stats.h"
#include "bench/echo_backend/echo_test_call.h"
#include "gtest/gtest.h"
#include "tests/support/bridge_process.h"
#include "tests/support/fake_asterisk.h"

namespace audiosocket::echo_backend {
namespace {

using testing::BridgeProcess;
using testing::FakeAsterisk;

// One call through a bridge that pushes to `backend`: the caller's audio
// comes back, and the stream ends cleanly when the call does. g_stats is the
// process's, so each figure is compared as a change.
void ExpectAnEchoedCall(const std::string& backend) {
  const uint64_t calls = g_stats.calls.load();
  const uint64_t chunks = g_stats.chunks.load();
  const uint64_t gaps = g_stats.gap_samples.load();
  const uint64_t ended = g_stats.calls_ended.load();
  const uint64_t failed = g_stats.streams_failed.load();
  BridgeProcess bridge({"--mode=push", absl::StrCat("--backend=", backend)});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();

  FakeAsterisk asterisk;
  ASSERT_TRUE(asterisk.Dial(bridge.audiosocket_port(), "0c8d7e2a-3f4b-4a6c-9d1e-5b2f7a9c4e10"));
  const std::vector<int16_t> sent = SendRamp(asterisk, -1000, -1);
  const std::vector<int16_t> echoed = ReadEcho(asterisk, sent.size());
  EXPECT_EQ(echoed, sent);
  EXPECT_EQ(g_stats.calls.load() - calls, 1u);
  EXPECT_GE(g_stats.chunks.load() - chunks, 10u);
  EXPECT_EQ(g_stats.gap_samples.load() - gaps, 0u);

  // The call ends; the bridge half-closes and the stream ends OK.
  asterisk.SendHangup();
  const absl::Time ended_by = absl::Now() + absl::Seconds(10);
  while (g_stats.calls_ended.load() - ended < 1 && absl::Now() < ended_by) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(g_stats.calls_ended.load() - ended, 1u);
  const absl::Time closed_by = absl::Now() + absl::Seconds(10);
  while (bridge.Metric("audiosocket_bridge_active_calls") != 0 && absl::Now() < closed_by) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_active_calls"), 0);
  EXPECT_EQ(g_stats.streams_failed.load() - failed, 0u);
}

TEST(LoopPushServerTest, AcceptsACallAndEchoesItsAudio) {
  absl::StatusOr<int> port = StartLoopPushServer(0, absl::Microseconds(500));
  ASSERT_TRUE(port.ok()) << port.status();
  ExpectAnEchoedCall(absl::StrCat("127.0.0.1:", *port));
}

// A backend beside the bridge on a Unix domain socket: the bridge's own
// HTTP/2 client dials unix: targets, and a stale socket file from an
// earlier run does not stop the server from listening.
TEST(LoopPushServerTest, ServesOnAUnixSocket) {
  // Not under TEST_TMPDIR: a socket path has at most 107 bytes.
  const std::string path = absl::StrCat("/tmp/echo-backend-test-", getpid(), ".sock");
  const int stale = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  ASSERT_EQ(bind(stale, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  close(stale);

  ASSERT_TRUE(StartLoopPushServerOnUnixSocket(path, absl::Microseconds(500)).ok());
  ExpectAnEchoedCall(absl::StrCat("unix:", path));
  unlink(path.c_str());
}

TEST(LoopPushServerTest, LeavesAFileThatIsNotASocketInPlace) {
  const std::string path = absl::StrCat("/tmp/echo-backend-test-", getpid(), ".file");
  const int file = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  ASSERT_GE(file, 0);
  close(file);

  const absl::Status status = StartLoopPushServerOnUnixSocket(path, absl::Microseconds(500));
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("listen on unix:"), absl::string_view::npos) << status;
  struct stat still {};
  ASSERT_EQ(lstat(path.c_str(), &still), 0);
  EXPECT_TRUE(S_ISREG(still.st_mode));
  unlink(path.c_str());
}

TEST(LoopPushServerTest, RefusesAUnixSocketPathTooLongForTheKernel) {
  const absl::Status status =
      StartLoopPushServerOnUnixSocket(std::string(200, 'x'), absl::Microseconds(500));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace audiosocket::echo_backend
