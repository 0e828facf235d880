// End to end: the audiosocket-call binary against the audiosocket-echo
// binary on 127.0.0.1. Real time, so only counts with generous bounds.

#include <sys/wait.h>

#include <string>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/subprocess.h"

namespace {

using ::audiosocket::testing::RunfilePath;
using ::audiosocket::testing::Subprocess;
using ::testing::HasSubstr;

// The integer value of "key":N in a JSON line, or -1.
long long Field(const std::string& json, const std::string& key) {
  const std::string needle = "\"" + key + "\":";
  const size_t at = json.find(needle);
  if (at == std::string::npos) return -1;
  size_t end = at + needle.size();
  while (end < json.size() && (isdigit(json[end]) != 0)) ++end;
  long long value = -1;
  if (!absl::SimpleAtoi(json.substr(at + needle.size(), end - at - needle.size()), &value)) {
    return -1;
  }
  return value;
}

class EchoServer {
 public:
  explicit EchoServer(std::vector<std::string> extra_args = {})
      : process_(Args(std::move(extra_args))) {
    auto line = process_.WaitForLine("\"event\":\"listening\"", absl::Seconds(20));
    if (!line.has_value()) {
      ADD_FAILURE() << process_.Output();
      return;
    }
    const size_t at = line->find("\"address\":\"") + 11;
    address_ = line->substr(at, line->find('"', at) - at);
  }
  const std::string& address() const { return address_; }

 private:
  static std::vector<std::string> Args(std::vector<std::string> extra) {
    std::vector<std::string> args = {RunfilePath("bench/echo_server/audiosocket-echo"),
                                     "--listen=127.0.0.1:0"};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  Subprocess process_;
  std::string address_;
};

struct CallRun {
  int exit_code = -1;
  std::string summary;  // the JSON line on stdout
  std::string output;
};

CallRun RunCall(std::vector<std::string> args) {
  args.insert(args.begin(), RunfilePath("tools/audiosocket-call/audiosocket-call"));
  Subprocess call(args);
  CallRun run;
  auto status = call.Wait(absl::Seconds(60));
  run.output = call.Output();
  if (status.has_value() && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
  for (const std::string& line : call.Lines()) {
    if (line.rfind("{\"calls\":", 0) == 0) run.summary = line;
  }
  return run;
}

TEST(EndToEndTest, OneCallAgainstEchoMeasuresFramesAndRoundTrip) {
  EchoServer echo;
  CallRun run = RunCall({"--target=" + echo.address(), "--source=tone:440", "--duration=1s"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(Field(run.summary, "frames_sent"), 50) << run.summary;
  EXPECT_GE(Field(run.summary, "frames_received"), 40) << run.summary;
  EXPECT_LE(Field(run.summary, "frames_received"), 50) << run.summary;
  EXPECT_THAT(run.summary, HasSubstr("\"rtt_ms\":{\"p50\":"));
  EXPECT_GE(Field(run.summary.substr(run.summary.find("\"rtt_ms\"")), "count"), 40);
  EXPECT_THAT(run.summary, HasSubstr("\"ended\":\"hangup_sent\""));
}

// The benchmark's far end looks at its sockets once per interval instead of
// sleeping in epoll_wait; it must still read and echo everything.
TEST(EndToEndTest, PollingEchoServerEchoesEveryFrame) {
  EchoServer echo({"--poll_interval=1ms"});
  CallRun run = RunCall({"--target=" + echo.address(), "--calls=5", "--ramp=100",
                         "--source=tone:440", "--duration=1s"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(Field(run.summary, "frames_sent"), 5 * 50) << run.summary;
  EXPECT_EQ(Field(run.summary, "frames_received"), 5 * 50) << run.summary;
}

TEST(EndToEndTest, ManyCallsAreAggregated) {
  EchoServer echo;
  CallRun run = RunCall({"--target=" + echo.address(), "--calls=20", "--ramp=100",
                         "--duration=500ms", "--end=close"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_EQ(Field(run.summary, "calls"), 20);
  EXPECT_EQ(Field(run.summary, "ok"), 20);
  EXPECT_EQ(Field(run.summary, "frames_sent"), 20 * 25);
  EXPECT_THAT(run.summary, HasSubstr("\"ended_counts\":{\"closed\":20}"));
}

TEST(EndToEndTest, FailedCallExitsOneAndListsTheFailure) {
  // Nothing listens on port 1 of the loopback address.
  CallRun run = RunCall({"--target=127.0.0.1:1", "--duration=100ms"});
  EXPECT_EQ(run.exit_code, 1) << run.output;
  EXPECT_THAT(run.summary, HasSubstr("\"per_call_failures\":[{\"call\":0"));
  EXPECT_THAT(run.summary, HasSubstr("connect to 127.0.0.1:1"));
}

TEST(EndToEndTest, InvalidFlagExitsTwoNamingIt) {
  CallRun run = RunCall({"--target=127.0.0.1:9", "--rate=11025"});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_THAT(run.output, HasSubstr("--rate=11025"));
}

}  // namespace
