// The bridge binary starts, says where it listens, and exits 0 on SIGINT and
// SIGTERM after logging that it stopped.

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/ops/descriptor_room.h"
#include "tests/support/subprocess.h"

namespace {

using ::audiosocket::testing::RunfilePath;
using ::audiosocket::testing::Subprocess;
using ::testing::HasSubstr;

class ShutdownTest : public ::testing::TestWithParam<int> {};

TEST_P(ShutdownTest, LogsListenAddressAndExitsCleanlyOnSignal) {
  Subprocess bridge({RunfilePath("server/audiosocket-bridge"), "--listen=127.0.0.1:0",
                     "--grpc_listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0"});
  auto listening = bridge.WaitForLine("\"event\":\"listening\"", absl::Seconds(20));
  ASSERT_TRUE(listening.has_value()) << bridge.Output();
  EXPECT_THAT(*listening, HasSubstr("\"audiosocket\":\"127.0.0.1:"));
  EXPECT_THAT(*listening, ::testing::ContainsRegex("\"grpc_port\":[1-9][0-9]*"));

  bridge.Signal(GetParam());
  auto status = bridge.Wait(absl::Seconds(20));
  ASSERT_TRUE(status.has_value()) << "bridge did not exit after the signal\n" << bridge.Output();
  ASSERT_TRUE(WIFEXITED(*status)) << bridge.Output();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << bridge.Output();
  EXPECT_THAT(bridge.Output(), HasSubstr("\"event\":\"stopped\""));
}

INSTANTIATE_TEST_SUITE_P(Signals, ShutdownTest, ::testing::Values(SIGINT, SIGTERM),
                         [](const auto& info) {
                           return info.param == SIGINT ? "SIGINT" : "SIGTERM";
                         });

TEST(StartupTest, InvalidSettingStopsStartupNamingIt) {
  Subprocess bridge({RunfilePath("server/audiosocket-bridge"), "--listen=nonsense",
                     "--grpc_listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0"});
  auto status = bridge.Wait(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_THAT(bridge.Output(), HasSubstr("\"setting\":\"listen\""));
}

// The environment reaches the binary's settings, and the command line wins
// over it. (Precedence in full is tested in server/config/flags_test.cc.)
TEST(StartupTest, InvalidEnvironmentSettingStopsStartupNamingIt) {
  ASSERT_EQ(setenv("AUDIOSOCKET_BRIDGE_MAX_CALLS", "many", 1), 0);
  Subprocess bridge({RunfilePath("server/audiosocket-bridge"), "--listen=127.0.0.1:0",
                     "--grpc_listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0"});
  unsetenv("AUDIOSOCKET_BRIDGE_MAX_CALLS");
  auto status = bridge.Wait(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_NE(WEXITSTATUS(*status), 0);
  EXPECT_THAT(bridge.Output(), HasSubstr("\"setting\":\"max_calls\""));
  EXPECT_THAT(bridge.Output(), HasSubstr("AUDIOSOCKET_BRIDGE_MAX_CALLS"));
}

TEST(StartupTest, CommandLineOverridesTheEnvironment) {
  ASSERT_EQ(setenv("AUDIOSOCKET_BRIDGE_MAX_CALLS", "many", 1), 0);
  Subprocess bridge({RunfilePath("server/audiosocket-bridge"), "--listen=127.0.0.1:0",
                     "--grpc_listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0", "--max_calls=5"});
  unsetenv("AUDIOSOCKET_BRIDGE_MAX_CALLS");
  auto listening = bridge.WaitForLine("\"event\":\"listening\"", absl::Seconds(20));
  ASSERT_TRUE(listening.has_value()) << bridge.Output();
  bridge.Signal(SIGTERM);
  auto status = bridge.Wait(absl::Seconds(20));
  ASSERT_TRUE(status.has_value()) << bridge.Output();
  ASSERT_TRUE(WIFEXITED(*status)) << bridge.Output();
  EXPECT_EQ(WEXITSTATUS(*status), 0) << bridge.Output();
}

// The descriptor table is grown for --max_calls before calls arrive, and a
// low soft limit raised within the hard one (descriptor_room.h).
TEST(StartupTest, MakesRoomForMaxCallsDescriptorsBeforeServing) {
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < 4096) GTEST_SKIP() << "hard limit";
  rlimit low = saved;
  low.rlim_cur = 512;  // the child inherits it
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  Subprocess bridge({RunfilePath("server/audiosocket-bridge"), "--listen=127.0.0.1:0",
                     "--grpc_listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
                     "--max_calls=3000"});
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  auto listening = bridge.WaitForLine("\"event\":\"listening\"", absl::Seconds(20));
  ASSERT_TRUE(listening.has_value()) << bridge.Output();
  EXPECT_THAT(*listening, HasSubstr("\"descriptor_limit\":3256"));
  EXPECT_GE(audiosocket::DescriptorTableSlots(bridge.pid()), 3256u);
  bridge.Signal(SIGTERM);
  ASSERT_TRUE(bridge.Wait(absl::Seconds(20)).has_value());
}

}  // namespace
