// SettingsFromCommandLine: precedence (command line, then environment, then
// --config_file) and errors that name the setting.
//
// Abseil's flags are process-wide and SettingsFromCommandLine parses argv
// into them (and remembers which names the command line gave), so it may
// run once per process. Each case therefore runs in a child process of its
// own: a death test (EXPECT_EXIT) whose child parses, prints what it got on
// stderr and exits; the parent never parses.

#include "server/config/flags.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket {
namespace {

using ::testing::ExitedWithCode;

// Parses `args` (after the program name) with `env` set, prints either
// "ok " and the settings under test or "error: " and the message, and
// exits 0 or 1.
[[noreturn]] void ParseAndExit(std::vector<std::string> args,
                               std::vector<std::pair<std::string, std::string>> env = {}) {
  for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
  std::vector<std::string> storage = {"audiosocket-bridge"};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);
  absl::StatusOr<Settings> settings =
      SettingsFromCommandLine(static_cast<int>(storage.size()), argv.data());
  if (!settings.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(settings.status().message()).c_str());
    std::fflush(stderr);
    std::_Exit(1);
  }
  const BridgeConfig& c = settings->config;
  const char* transports[] = {"auto", "loop", "grpc"};
  std::fprintf(stderr,
               "ok backend_attempts=%d max_calls=%d send_silence=%d listener=%s io=%d "
               "push_transport=%s server_transport=%s loop_server=%d round_window_us=%lld\n",
               c.backend_attempts, c.max_calls, c.send_silence ? 1 : 0,
               c.listeners.empty() ? "" : c.listeners[0].name.c_str(), settings->io_threads,
               transports[static_cast<int>(c.push_transport)],
               transports[static_cast<int>(c.server_transport)], c.loop_server() ? 1 : 0,
               static_cast<long long>(absl::ToInt64Microseconds(c.io_round_window)));
  std::fflush(stderr);
  std::_Exit(0);
}

std::string WriteConfigFile(const std::string& name, const std::string& text) {
  const char* dir = std::getenv("TEST_TMPDIR");
  const std::string path = absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
  std::ofstream(path) << text;
  return path;
}

class FlagsTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(FlagsTest, DefaultsWithNothingSet) {
  EXPECT_EXIT(ParseAndExit({}), ExitedWithCode(0),
              "ok backend_attempts=3 max_calls=10000 send_silence=1 listener=default io=1");
}

TEST_F(FlagsTest, TheConfigFileAppliesWhenNothingElseSetsTheValue) {
  const std::string file = WriteConfigFile("file_only.conf",
                                           "# comment\n"
                                           "\n"
                                           "backend_attempts = 5\n"
                                           "--max_calls=7\n");
  EXPECT_EXIT(ParseAndExit({"--config_file=" + file}), ExitedWithCode(0),
              "ok backend_attempts=5 max_calls=7 ");
}

TEST_F(FlagsTest, TheEnvironmentBeatsTheConfigFile) {
  const std::string file = WriteConfigFile("env_over_file.conf", "backend_attempts=5\n");
  EXPECT_EXIT(
      ParseAndExit({"--config_file=" + file}, {{"AUDIOSOCKET_BRIDGE_BACKEND_ATTEMPTS", "6"}}),
      ExitedWithCode(0), "ok backend_attempts=6 ");
}

TEST_F(FlagsTest, TheCommandLineBeatsTheEnvironmentAndTheConfigFile) {
  const std::string file =
      WriteConfigFile("all_three.conf", "backend_attempts=5\nlisten=127.0.0.1:0,name=file\n");
  EXPECT_EXIT(ParseAndExit({"--config_file=" + file, "--backend_attempts=7"},
                           {{"AUDIOSOCKET_BRIDGE_BACKEND_ATTEMPTS", "6"},
                            {"AUDIOSOCKET_BRIDGE_LISTEN", "127.0.0.1:0,name=env"}}),
              ExitedWithCode(0), "ok backend_attempts=7 .* listener=env ");
}

TEST_F(FlagsTest, ANegatedBooleanOnTheCommandLineBeatsTheEnvironment) {
  EXPECT_EXIT(ParseAndExit({"--nosend_silence"}, {{"AUDIOSOCKET_BRIDGE_SEND_SILENCE", "true"}}),
              ExitedWithCode(0), "send_silence=0");
  EXPECT_EXIT(ParseAndExit({}, {{"AUDIOSOCKET_BRIDGE_SEND_SILENCE", "false"}}), ExitedWithCode(0),
              "send_silence=0");
}

TEST_F(FlagsTest, AnOutOfRangeValueNamesTheSetting) {
  EXPECT_EXIT(ParseAndExit({"--backend_attempts=0"}), ExitedWithCode(1),
              "error: backend_attempts: must be between 1 and 100 \\(got 0\\)");
  EXPECT_EXIT(ParseAndExit({"--io_threads=0"}), ExitedWithCode(1), "error: io_threads: ");
  EXPECT_EXIT(ParseAndExit({"--playout_low_watermark_ms=6000"}), ExitedWithCode(1),
              "error: playout_low_watermark_ms: must be below playout_high_watermark_ms");
}

TEST_F(FlagsTest, AnInvalidListenerNamesTheSetting) {
  EXPECT_EXIT(ParseAndExit({"--listen=127.0.0.1:0,dialect=klingon"}), ExitedWithCode(1),
              "error: listen: listener .* dialect must be asterisk or extended");
  EXPECT_EXIT(ParseAndExit({"--listen=;"}), ExitedWithCode(1),
              "error: listen: at least one AudioSocket listener is needed");
}

TEST_F(FlagsTest, PushTransportIsAutoUnlessSetAndLoopRefusesTls) {
  EXPECT_EXIT(ParseAndExit({}), ExitedWithCode(0), "push_transport=auto");
  EXPECT_EXIT(ParseAndExit({"--push_transport=grpc"}), ExitedWithCode(0), "push_transport=grpc");
  EXPECT_EXIT(ParseAndExit({}, {{"AUDIOSOCKET_BRIDGE_PUSH_TRANSPORT", "loop"}}), ExitedWithCode(0),
              "push_transport=loop");
  EXPECT_EXIT(ParseAndExit({"--push_transport=quic"}), ExitedWithCode(1),
              "error: push_transport: must be loop, grpc or auto");
  EXPECT_EXIT(ParseAndExit({"--push_transport=loop", "--backend_tls_ca_file=/ca.pem"}),
              ExitedWithCode(1), "error: push_transport: loop speaks plaintext HTTP/2 only");
}

TEST_F(FlagsTest, ServerTransportIsTheLoopsInPullModeUnlessTlsOrAnotherAddressForm) {
  EXPECT_EXIT(ParseAndExit({}), ExitedWithCode(0), "server_transport=auto loop_server=1");
  EXPECT_EXIT(ParseAndExit({"--backend=localhost:50052"}), ExitedWithCode(0),
              "server_transport=auto loop_server=0");
  EXPECT_EXIT(ParseAndExit({"--server_transport=loop", "--backend=localhost:50052"}),
              ExitedWithCode(0), "server_transport=loop loop_server=1");
  EXPECT_EXIT(ParseAndExit({"--server_transport=grpc"}), ExitedWithCode(0),
              "server_transport=grpc loop_server=0");
  EXPECT_EXIT(ParseAndExit({"--grpc_listen=unix:/tmp/bridge.sock"}), ExitedWithCode(0),
              "server_transport=auto loop_server=0");
  EXPECT_EXIT(ParseAndExit({"--tls_cert_file=/c.pem", "--tls_key_file=/k.pem"}), ExitedWithCode(0),
              "server_transport=auto loop_server=0");
  EXPECT_EXIT(
      ParseAndExit({"--server_transport=loop", "--tls_cert_file=/c.pem", "--tls_key_file=/k.pem"}),
      ExitedWithCode(1), "error: server_transport: loop speaks plaintext HTTP/2 only");
  EXPECT_EXIT(ParseAndExit({"--server_transport=loop", "--grpc_listen=unix:/tmp/b.sock"}),
              ExitedWithCode(1), "error: server_transport: loop serves a host:port");
  EXPECT_EXIT(ParseAndExit({"--server_transport=udp"}), ExitedWithCode(1),
              "error: server_transport: must be loop, grpc or auto");
}

// 1 ms: half the wake-ups of 500 us at 100-300 calls, and latency toward
// the backend still within 2 ms at p99 (docs/BENCHMARKS.md).
TEST_F(FlagsTest, TheRoundWindowIsOneMillisecondUnlessSet) {
  EXPECT_EXIT(ParseAndExit({}), ExitedWithCode(0), "ok .* round_window_us=1000\n");
  EXPECT_EXIT(ParseAndExit({"--io_round_window=500us"}), ExitedWithCode(0),
              "ok .* round_window_us=500\n");
}

TEST_F(FlagsTest, TheRoundWindowIsBoundedToTwoMilliseconds) {
  EXPECT_EXIT(ParseAndExit({"--io_round_window=0"}), ExitedWithCode(0), "ok");
  EXPECT_EXIT(ParseAndExit({"--io_round_window=2ms"}), ExitedWithCode(0), "ok");
  EXPECT_EXIT(ParseAndExit({"--io_round_window=3ms"}), ExitedWithCode(1),
              "error: io_round_window: must be between 0 and 2ms");
  EXPECT_EXIT(ParseAndExit({"--io_round_window=-1ms"}), ExitedWithCode(1),
              "error: io_round_window: must be between 0 and 2ms");
}

TEST_F(FlagsTest, PushModeWithoutABackendNamesTheSetting) {
  EXPECT_EXIT(ParseAndExit({"--mode=push"}), ExitedWithCode(1),
              "error: backend: push mode needs --backend");
  EXPECT_EXIT(ParseAndExit({"--mode=sideways"}), ExitedWithCode(1), "error: mode: ");
}

TEST_F(FlagsTest, AnUnparsableEnvironmentValueNamesTheSettingAndTheVariable) {
  EXPECT_EXIT(ParseAndExit({}, {{"AUDIOSOCKET_BRIDGE_MAX_CALLS", "many"}}), ExitedWithCode(1),
              "error: max_calls: invalid value \"many\" from environment variable "
              "AUDIOSOCKET_BRIDGE_MAX_CALLS");
}

TEST_F(FlagsTest, ConfigFileErrorsNameTheSettingAndTheLine) {
  const std::string unknown = WriteConfigFile("unknown.conf", "max_calls=5\nnonsense=1\n");
  EXPECT_EXIT(ParseAndExit({"--config_file=" + unknown}), ExitedWithCode(1),
              "error: nonsense: unknown setting in config file .*unknown.conf line 2");
  const std::string no_equals = WriteConfigFile("no_equals.conf", "max_calls\n");
  EXPECT_EXIT(ParseAndExit({"--config_file=" + no_equals}), ExitedWithCode(1),
              "error: config_file: .*no_equals.conf line 1: expected flag=value");
  const std::string bad = WriteConfigFile("bad_value.conf", "\nmax_calls=lots\n");
  EXPECT_EXIT(ParseAndExit({"--config_file=" + bad}), ExitedWithCode(1),
              "error: max_calls: invalid value \"lots\" from config file .*bad_value.conf line 2");
  EXPECT_EXIT(ParseAndExit({"--config_file=/nonexistent/bridge.conf"}), ExitedWithCode(1),
              "error: config_file: cannot read \"/nonexistent/bridge.conf\"");
}

TEST_F(FlagsTest, TheCommandLineWinsEvenOverAnInvalidFileValueForTheSameSetting) {
  // The file's value is never parsed for a setting the command line gave.
  const std::string file = WriteConfigFile("shadowed.conf", "max_calls=lots\n");
  EXPECT_EXIT(ParseAndExit({"--config_file=" + file, "--max_calls=9"}), ExitedWithCode(0),
              "max_calls=9 ");
}

}  // namespace
}  // namespace audiosocket
