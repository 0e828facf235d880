// Operations: settings from flags, environment and file; health through a
// drain; metrics over HTTP; limits; allowlists; TLS, mutual TLS and tokens;
// the fallback WAV. Each runs the real bridge binary.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "lib/audio/wav.h"
#include "tests/support/bridge_fixture.h"
#include "tests/support/bridge_process.h"
#include "tests/support/fake_asterisk.h"
#include "tests/support/test_backends.h"

namespace audiosocket::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
namespace v1 = ::audiosocket::bridge::v1;

// Runs the binary to completion and returns its output and exit code.
std::pair<std::string, int> RunToExit(std::vector<std::string> args) {
  args.insert(args.begin(), RunfilePath("server/audiosocket-bridge"));
  Subprocess process(args);
  auto status = process.Wait(absl::Seconds(20));
  const int code = status.has_value() && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
  return {process.Output(), code};
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(int port) {
  auto channel =
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
  if (!status.ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  return response.status();
}

// ------------------------------------------------------------- settings

TEST(SettingsTest, HelpDocumentsEverySetting) {
  auto [output, code] = RunToExit({"--help"});
  for (const char* flag : {"listen",
                           "grpc_listen",
                           "metrics_listen",
                           "mode",
                           "backend",
                           "backend_attempts",
                           "accept_timeout",
                           "claim_timeout",
                           "uuid_timeout",
                           "first_audio_wait",
                           "send_silence",
                           "max_payload",
                           "hold_audio_ms",
                           "backend_queue_ms",
                           "max_playout_ms",
                           "playout_high_watermark_ms",
                           "playout_low_watermark_ms",
                           "max_unsent_ms",
                           "max_audio_ahead_ms",
                           "write_stall_timeout",
                           "drain_timeout",
                           "io_threads",
                           "log_level",
                           "max_calls",
                           "max_pull_streams",
                           "fallback_wav",
                           "tls_cert_file",
                           "tls_key_file",
                           "tls_client_ca_file",
                           "backend_tls_ca_file",
                           "backend_tls_cert_file",
                           "backend_tls_key_file",
                           "auth_token_file",
                           "config_file"}) {
    EXPECT_THAT(output, HasSubstr(absl::StrCat("--", flag, " ("))) << flag;
  }
  // Every option a listener accepts (server/config/config.cc ParseListener).
  for (const char* option : {"dialect=", "name=", "encoding=", "rate=", "inband_dtmf=", "allow="}) {
    EXPECT_THAT(output, HasSubstr(option)) << option;
  }
}

TEST(SettingsTest, InvalidValuesStopStartupNamingTheSetting) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--max_calls=0"}, "max_calls"},
      {{"--mode=sideways"}, "mode"},
      {{"--mode=push"}, "backend"},
      {{"--listen=127.0.0.1:0,dialect=klingon"}, "listen"},
      {{"--listen=127.0.0.1:0,allow=10.0.0.0/99"}, "listen"},
      {{"--playout_low_watermark_ms=6000"}, "playout_low_watermark_ms"},
      {{"--tls_cert_file=/nonexistent/cert.pem", "--tls_key_file=/nonexistent/key.pem"},
       "tls_cert_file"},
      {{"--auth_token_file=/nonexistent/token"}, "auth_token_file"},
      {{"--fallback_wav=/nonexistent/x.wav"}, "fallback_wav"},
  };
  for (const auto& [flags, setting] : cases) {
    std::vector<std::string> args = {"--listen=127.0.0.1:0", "--grpc_listen=127.0.0.1:0",
                                     "--metrics_listen=127.0.0.1:0"};
    args.insert(args.end(), flags.begin(), flags.end());
    auto [output, code] = RunToExit(args);
    EXPECT_NE(code, 0) << flags[0];
    EXPECT_THAT(output, HasSubstr(absl::StrCat("\"setting\":\"", setting, "\""))) << flags[0];
  }
}

TEST(SettingsTest, ConfigFileEnvironmentAndCommandLineInThatPrecedence) {
  const std::string file = TempPath("bridge.conf");
  WriteFile(file,
            "# settings\n"
            "listen=127.0.0.1:0,name=from-file\n"
            "grpc_listen=127.0.0.1:0\n"
            "metrics_listen=127.0.0.1:0\n"
            "uuid_timeout=250ms\n"
            "claim_timeout=1s\n");
  setenv("AUDIOSOCKET_BRIDGE_LISTEN", "127.0.0.1:0,name=from-env", 1);
  setenv("AUDIOSOCKET_BRIDGE_CLAIM_TIMEOUT", "300ms", 1);
  BridgeProcess bridge(
      {"--config_file=" + file, "--first_audio_wait=50ms", "--claim_timeout=200ms"});
  unsetenv("AUDIOSOCKET_BRIDGE_LISTEN");
  unsetenv("AUDIOSOCKET_BRIDGE_CLAIM_TIMEOUT");
  // BridgeProcess adds --listen only when the flags lack one; here the
  // environment must win over the file, and the command line over both.
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  // uuid_timeout from the file: a silent connection is closed.
  FakeAsterisk silent;
  ASSERT_TRUE(silent.Connect(bridge.audiosocket_port()));
  EXPECT_TRUE(silent.WaitClosed(absl::Seconds(5)));
  // The call's listener name tells which listen setting won.
  FakeAsterisk caller;
  ASSERT_TRUE(caller.Dial(bridge.audiosocket_port(), kUuid));
  auto started = bridge.WaitForEvent("call_started");
  ASSERT_TRUE(started.has_value()) << bridge.Output();
  auto ended = bridge.WaitForEvent("call_ended", "CLAIM_TIMEOUT");
  ASSERT_TRUE(ended.has_value()) << bridge.Output();
  EXPECT_THAT(*ended, HasSubstr("200ms")) << "the command line's claim_timeout wins";
}

TEST(SettingsTest, UnknownSettingInTheConfigFileIsNamed) {
  const std::string file = TempPath("bad.conf");
  WriteFile(file, "listen=127.0.0.1:0\nvolume=11\n");
  auto [output, code] = RunToExit({"--config_file=" + file});
  EXPECT_NE(code, 0);
  EXPECT_THAT(output, HasSubstr("\"setting\":\"volume\""));
  EXPECT_THAT(output, HasSubstr("line 2"));
}

TEST(SettingsTest, BadEnvironmentValueIsNamed) {
  setenv("AUDIOSOCKET_BRIDGE_MAX_CALLS", "lots", 1);
  auto [output, code] = RunToExit({"--listen=127.0.0.1:0"});
  unsetenv("AUDIOSOCKET_BRIDGE_MAX_CALLS");
  EXPECT_NE(code, 0);
  EXPECT_THAT(output, HasSubstr("\"setting\":\"max_calls\""));
  EXPECT_THAT(output, HasSubstr("AUDIOSOCKET_BRIDGE_MAX_CALLS"));
}

// ------------------------------------------------------- health and drain

TEST(DrainTest, HealthIsNotServingWhileActiveCallsFinish) {
  BridgeProcess bridge({"--mode=pull", "--drain_timeout=3s", "--first_audio_wait=50ms"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  EXPECT_EQ(Health(bridge.grpc_port()), grpc::health::v1::HealthCheckResponse::SERVING);
  PullWorker worker(bridge.grpc_port(), ClaimAny());
  FakeAsterisk caller;
  ASSERT_TRUE(caller.Dial(bridge.audiosocket_port(), kUuid));
  caller.SendAudio(NumberedFrame(0));
  ASSERT_TRUE(worker.Next(kWait).has_value());
  bridge.process().Signal(SIGTERM);
  ASSERT_TRUE(bridge.WaitForEvent("draining").has_value());
  EXPECT_EQ(Health(bridge.grpc_port()), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  // New callers are turned away; the active call goes on.
  FakeAsterisk late;
  EXPECT_FALSE(late.Connect(bridge.audiosocket_port()) && [&] {
    late.SendUuid("11111111-1111-4111-8111-111111111111");
    return !late.WaitClosed(absl::Seconds(2));
  }());
  caller.SendAudio(NumberedFrame(1));
  auto audio = worker.NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait);
  ASSERT_TRUE(audio.has_value());
  // After the drain timeout the call ends with SHUTDOWN and the bridge exits 0.
  auto ended = worker.NextEnded(kWait);
  ASSERT_TRUE(ended.has_value());
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_SHUTDOWN);
  EXPECT_TRUE(caller.WaitClosed(kWait));
  auto status = bridge.process().Wait(kWait);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << bridge.Output();
}

// Dials a call that `worker` claims, then sends the first SIGTERM and waits
// until the bridge is draining, with the call still up.
void DrainWithOneClaimedCall(BridgeProcess& bridge, PullWorker& worker, FakeAsterisk& caller) {
  ASSERT_TRUE(caller.Dial(bridge.audiosocket_port(), kUuid));
  ASSERT_TRUE(worker.Next(kWait).has_value());
  bridge.process().Signal(SIGTERM);
  ASSERT_TRUE(bridge.WaitForEvent("draining").has_value());
}

TEST(DrainTest, DrainEndsEarlyWhenCallsFinishAndASecondSignalExitsAtOnce) {
  {
    BridgeProcess bridge({"--mode=pull", "--drain_timeout=60s"});
    ASSERT_TRUE(bridge.ok());
    bridge.process().Signal(SIGTERM);
    auto status = bridge.process().Wait(kWait);
    ASSERT_TRUE(status.has_value()) << "no calls: the drain ends at once";
    EXPECT_EQ(WEXITSTATUS(*status), 0);
  }
  BridgeProcess bridge({"--mode=pull", "--drain_timeout=60s", "--first_audio_wait=50ms"});
  ASSERT_TRUE(bridge.ok());
  PullWorker worker(bridge.grpc_port(), ClaimAny());
  FakeAsterisk caller;
  ASSERT_NO_FATAL_FAILURE(DrainWithOneClaimedCall(bridge, worker, caller));
  // Later than the grace after the first signal: an operator's second signal.
  absl::SleepFor(absl::Milliseconds(1500));
  bridge.process().Signal(SIGTERM);
  auto status = bridge.process().Wait(kWait);
  ASSERT_TRUE(status.has_value()) << "the second signal must not wait for the drain";
  EXPECT_THAT(bridge.Output(), HasSubstr("exiting_now"));
}

TEST(DrainTest, SignalRepeatedAtOnceStillDrainsTheCall) {
  // GNU timeout, and a shell signalling the process group, deliver SIGTERM
  // twice within microseconds: that is one request to stop, not two.
  BridgeProcess bridge({"--mode=pull", "--drain_timeout=1s", "--first_audio_wait=50ms"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  PullWorker worker(bridge.grpc_port(), ClaimAny());
  FakeAsterisk caller;
  ASSERT_NO_FATAL_FAILURE(DrainWithOneClaimedCall(bridge, worker, caller));
  // Once the first is taken (two pending SIGTERMs would merge into one).
  bridge.process().Signal(SIGTERM);
  auto ended = worker.NextEnded(kWait);
  ASSERT_TRUE(ended.has_value()) << bridge.Output();
  EXPECT_EQ(ended->ended().reason(), v1::CALL_END_REASON_SHUTDOWN);
  EXPECT_TRUE(caller.WaitClosed(kWait));
  auto status = bridge.process().Wait(kWait);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << bridge.Output();
  EXPECT_THAT(bridge.Output(), Not(HasSubstr("exiting_now")));
  EXPECT_THAT(bridge.Output(), HasSubstr("signal_ignored"));
}

TEST(DrainTest, IdleWorkersDoNotDelayTheExit) {
  // No call is left, so the bridge stops at once: idle ClaimCall and
  // WatchCalls streams are ended (UNAVAILABLE) rather than waited for.
  BridgeProcess bridge({"--mode=pull", "--drain_timeout=60s"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  std::vector<std::unique_ptr<PullWorker>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(std::make_unique<PullWorker>(bridge.grpc_port(), ClaimAny()));
  }
  auto stub = BridgeServiceStub(bridge.grpc_port());
  grpc::ClientContext watch_context;
  auto watch = stub->WatchCalls(&watch_context, v1::WatchCallsRequest());
  const absl::Time idle_by = absl::Now() + kWait;
  while (bridge.Metric("audiosocket_bridge_idle_pull_slots") < 3 && absl::Now() < idle_by) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(bridge.Metric("audiosocket_bridge_idle_pull_slots"), 3);
  const absl::Time signalled = absl::Now();
  bridge.process().Signal(SIGTERM);
  auto status = bridge.process().Wait(absl::Seconds(30));
  const absl::Duration took = absl::Now() - signalled;
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(WEXITSTATUS(*status), 0) << bridge.Output();
  std::cout << "figures: SIGTERM with 3 idle workers and a watcher, exited after "
            << absl::FormatDuration(took) << "\n";
  // Generous for a loaded machine; the drain allows 60 s and the gRPC
  // server's shutdown deadline is 5 s.
  EXPECT_LT(took, absl::Seconds(4)) << bridge.Output();
  for (auto& worker : workers) {
    EXPECT_EQ(worker->status().error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(worker->status().error_message(), HasSubstr("shutting down"));
  }
  v1::WatchCallsResponse change;
  while (watch->Read(&change)) {
  }
  const grpc::Status watch_status = watch->Finish();
  EXPECT_EQ(watch_status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(watch_status.error_message(), HasSubstr("shutting down"));
}

// ---------------------------------------------------------------- metrics

TEST(MetricsTest, EventsAreCountedAndScrapedOverHttp) {
  BridgeProcess bridge({"--mode=pull", "--first_audio_wait=50ms", "--uuid_timeout=200ms"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_calls_started_total"), 0);
  {
    PullWorker worker(bridge.grpc_port(), ClaimAny());
    FakeAsterisk caller;
    ASSERT_TRUE(caller.Dial(bridge.audiosocket_port(), kUuid));
    for (int i = 0; i < 5; ++i) caller.SendAudio(NumberedFrame(i));
    ASSERT_TRUE(worker.Next(kWait).has_value());
    for (int i = 0; i < 5; ++i) {
      ASSERT_TRUE(
          worker.NextMatching([](const CallEvent& e) { return e.has_audio(); }, kWait).has_value());
    }
    // The first frame of silence goes on the call's slot of the tick grid,
    // up to 5 ms after the UUID: on a fast machine the call got that far
    // before it.
    const std::optional<Received> silence = caller.Read(kWait);
    ASSERT_TRUE(silence.has_value() && silence->is_audio());
    EXPECT_EQ(bridge.Metric("audiosocket_bridge_active_calls"), 1);
    EXPECT_EQ(bridge.Metric("audiosocket_bridge_pull_streams"), 1);
    EXPECT_EQ(bridge.Metric("audiosocket_bridge_accept_latency_seconds_count"), 1);
    // A histogram as Prometheus reads one: cumulative buckets up to +Inf.
    EXPECT_EQ(bridge.Metric("audiosocket_bridge_accept_latency_seconds_bucket{le=\"+Inf\"}"), 1);
    EXPECT_EQ(bridge.Metric("audiosocket_bridge_accept_latency_seconds_bucket{le=\"10\"}"), 1);
    EXPECT_GT(bridge.Metric("audiosocket_bridge_accept_latency_seconds_sum"), 0);
    EXPECT_LT(bridge.Metric("audiosocket_bridge_accept_latency_seconds_sum"), 10);
    caller.Close();
    ASSERT_TRUE(worker.NextEnded(kWait).has_value());
  }
  FakeAsterisk silent;
  ASSERT_TRUE(silent.Connect(bridge.audiosocket_port()));
  EXPECT_TRUE(silent.WaitClosed(kWait));
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_calls_started_total"), 1);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_calls_ended_total{reason=\"caller_hung_up\"}"), 1);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_active_calls"), 0);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_frames_total{direction=\"in\"}"), 5);
  EXPECT_GT(bridge.Metric("audiosocket_bridge_frames_total{direction=\"out\"}"), 0);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_bytes_total{direction=\"in\"}"), 5 * 323);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_connections_rejected_total{reason=\"uuid_timeout\"}"),
            1);
  EXPECT_GE(bridge.Metric("audiosocket_bridge_inbound_to_backend_latency_seconds_count"), 5);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_idle_pull_slots"), 0);
  EXPECT_GE(bridge.Metric("audiosocket_bridge_mutex_waits_total"), 0);  // -1: not exported
  // Silence was played from the UUID on: every tick observed.
  EXPECT_GT(bridge.Metric("audiosocket_bridge_playout_tick_lateness_seconds_count"), 0);
  // The rounds of the loop that served the call.
  EXPECT_GT(bridge.Metric("audiosocket_bridge_loop_round_seconds_count"), 0);
  // The process's own figures, as other Prometheus clients export them.
  EXPECT_GT(bridge.Metric("process_resident_memory_bytes"), 1 << 20);
  EXPECT_GT(bridge.Metric("process_open_fds"), 3);
  EXPECT_GE(bridge.Metric("process_cpu_seconds_total"), 0);
  EXPECT_GT(bridge.Metric("process_start_time_seconds"), 1.7e9);
}

// Each event loop's calls count in that loop's own counters; /metrics and
// the call limit see their sum.
TEST(MetricsTest, CountsOfCallsOnEveryLoopAreSummed) {
  BridgeProcess bridge({"--mode=pull", "--io_threads=3", "--max_calls=3"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  std::vector<std::unique_ptr<FakeAsterisk>> callers;
  for (int c = 0; c < 3; ++c) {
    callers.push_back(std::make_unique<FakeAsterisk>());
    ASSERT_TRUE(callers.back()->Connect(bridge.audiosocket_port()));
    callers.back()->SendUuid(absl::StrCat("40325ec2-5efd-4bd3-805f-53576e58100", c));
    for (int i = 0; i < 4; ++i) callers.back()->SendAudio(NumberedFrame(i));
  }
  const absl::Time deadline = absl::Now() + kWait;
  while (bridge.Metric("audiosocket_bridge_frames_total{direction=\"in\"}") < 12 &&
         absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_frames_total{direction=\"in\"}"), 12);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_calls_started_total"), 3);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_active_calls"), 3);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_open_connections"), 3);
  // The limit counts the connections of every loop.
  FakeAsterisk fourth;
  ASSERT_TRUE(fourth.Connect(bridge.audiosocket_port()));
  EXPECT_TRUE(fourth.WaitClosed(kWait));
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_connections_rejected_total{reason=\"call_limit\"}"),
            1);
  for (auto& caller : callers) caller->Close();
  const absl::Time ended = absl::Now() + kWait;
  while (bridge.Metric("audiosocket_bridge_active_calls") != 0 && absl::Now() < ended) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_active_calls"), 0);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_calls_ended_total{reason=\"caller_hung_up\"}"), 3);
}

TEST(MetricsTest, EveryAcceptedConnectionHasOneCountedOutcome) {
  // Listener 0 refuses 127.0.0.1 (allowlist); listener 1 takes everyone.
  BridgeProcess bridge({"--mode=pull", "--uuid_timeout=300ms", "--first_audio_wait=50ms",
                        "--listen=127.0.0.1:0,allow=10.0.0.0/8;127.0.0.1:0"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  const int port = bridge.audiosocket_port(1);
  std::vector<std::unique_ptr<FakeAsterisk>> callers;
  auto connect = [&](int to) {
    callers.push_back(std::make_unique<FakeAsterisk>());
    EXPECT_TRUE(callers.back()->Connect(to));
    return callers.back().get();
  };
  for (int i = 0; i < 3; ++i) connect(port)->Close();    // closed before the UUID
  connect(port)->SendRaw({0x7e, 0x00, 0x00});            // garbage
  std::vector<uint8_t> short_uuid = {0x01, 0x00, 0x0f};  // a UUID of 15 bytes
  short_uuid.resize(3 + 15, 0x11);
  connect(port)->SendRaw(short_uuid);
  FakeAsterisk* truncated = connect(port);
  truncated->SendRaw({0x01, 0x00});  // a header cut short, then closed
  truncated->Close();
  connect(port);                        // says nothing
  connect(bridge.audiosocket_port(0));  // not allowed
  FakeAsterisk* call = connect(port);
  call->SendUuid(kUuid);
  ASSERT_TRUE(bridge.WaitForEvent("call_started").has_value());
  call->Close();
  constexpr int kConnections = 9;
  const std::string kRejected = "audiosocket_bridge_connections_rejected_total";
  const std::vector<std::pair<std::string, int>> expected = {
      {"caller_closed", 3}, {"protocol_error", 3}, {"uuid_timeout", 1}, {"allowlist", 1}};
  auto rejected = [&] {
    double total = 0;
    std::istringstream metrics(HttpGet(bridge.metrics_port(), "/metrics"));
    std::string line;
    while (std::getline(metrics, line)) {
      if (line.rfind(kRejected + "{", 0) == 0) total += std::stod(line.substr(line.find(' ')));
    }
    return total;
  };
  const absl::Time settled_by = absl::Now() + kWait;
  while (rejected() < kConnections - 1 && absl::Now() < settled_by) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_connections_accepted_total"), kConnections);
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_calls_started_total"), 1);
  EXPECT_EQ(rejected(), kConnections - 1) << HttpGet(bridge.metrics_port(), "/metrics");
  for (const auto& [reason, count] : expected) {
    EXPECT_EQ(bridge.Metric(absl::StrCat(kRejected, "{reason=\"", reason, "\"}")), count) << reason;
  }
  // Each also has its log line.
  EXPECT_TRUE(bridge.process().WaitForLines("\"caller_closed\"", 3, kWait)) << bridge.Output();
  EXPECT_TRUE(bridge.process().WaitForLines("\"connection_closed\"", 7, kWait)) << bridge.Output();
}

TEST(MetricsTest, PortInUseNamesTheSettingAndTheAddress) {
  // Hold a port as another process would.
  const int held = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(held, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(held, 1), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(held, reinterpret_cast<sockaddr*>(&address), &length), 0);
  const std::string metrics_listen = absl::StrCat("127.0.0.1:", ntohs(address.sin_port));
  auto [output, code] = RunToExit(
      {"--listen=127.0.0.1:0", "--grpc_listen=127.0.0.1:0", "--metrics_listen=" + metrics_listen});
  close(held);
  EXPECT_EQ(code, 2) << output;
  EXPECT_THAT(output, HasSubstr("\"setting\":\"metrics_listen\""));
  EXPECT_THAT(output, HasSubstr("--metrics_listen=" + metrics_listen));
  EXPECT_THAT(output, HasSubstr("Address already in use"));
  EXPECT_THAT(output, Not(HasSubstr("CivetServer")));
}

// ----------------------------------------------------------------- errors

TEST(ErrorsTest, HangupWithAMegabyteIdAnswersNotFoundQuotingItShort) {
  BridgeProcess bridge({"--mode=pull"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  auto stub = BridgeServiceStub(bridge.grpc_port());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::HangupCallRequest request;
  request.set_call_id(std::string(1 << 20, 'x'));
  v1::HangupCallResponse response;
  const grpc::Status status = stub->HangupCall(&context, request, &response);
  // Echoing the whole id made the status too large for the client's
  // metadata limit: it saw RESOURCE_EXHAUSTED instead of NOT_FOUND.
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND) << status.error_message().size();
  EXPECT_LT(status.error_message().size(), 200u);
  EXPECT_THAT(status.error_message(), HasSubstr("(1048576 bytes)"));
}

// ----------------------------------------------------------------- limits

TEST(LimitsTest, ConnectionsBeyondMaxCallsAreClosedAndCounted) {
  BridgeProcess bridge({"--mode=pull", "--max_calls=1"});
  ASSERT_TRUE(bridge.ok());
  FakeAsterisk first;
  ASSERT_TRUE(first.Dial(bridge.audiosocket_port(), kUuid));
  ASSERT_TRUE(bridge.WaitForEvent("call_started").has_value());
  FakeAsterisk second;
  ASSERT_TRUE(second.Connect(bridge.audiosocket_port()));
  EXPECT_TRUE(second.WaitClosed(kWait));
  EXPECT_FALSE(first.closed());
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_connections_rejected_total{reason=\"call_limit\"}"),
            1);
}

TEST(LimitsTest, PullStreamsBeyondTheLimitAreRefused) {
  BridgeProcess bridge({"--mode=pull", "--max_pull_streams=1"});
  ASSERT_TRUE(bridge.ok());
  PullWorker first(bridge.grpc_port(), ClaimAny());
  absl::SleepFor(absl::Milliseconds(200));
  PullWorker second(bridge.grpc_port(), ClaimAny());
  EXPECT_EQ(second.status().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(second.status().error_message(), HasSubstr("max_pull_streams"));
}

TEST(LimitsTest, OversizedPayloadIsAProtocolError) {
  BridgeProcess bridge({"--mode=pull", "--max_payload=640", "--first_audio_wait=50ms"});
  ASSERT_TRUE(bridge.ok());
  FakeAsterisk caller;
  ASSERT_TRUE(caller.Dial(bridge.audiosocket_port(), kUuid));
  caller.SendAudio(std::vector<int16_t>(400));  // 800 bytes
  EXPECT_TRUE(caller.WaitClosed(kWait));
  auto ended = bridge.WaitForEvent("call_ended", "PROTOCOL_ERROR");
  ASSERT_TRUE(ended.has_value()) << bridge.Output();
  EXPECT_THAT(*ended, HasSubstr("640"));
}

// --------------------------------------------------------------- security

TEST(AllowlistTest, OtherNetworksAreRefusedAndCounted) {
  BridgeProcess bridge({"--mode=pull",
                        "--listen=127.0.0.1:0,allow=10.0.0.0/8|192.168.0.0/16;"
                        "127.0.0.1:0,allow=127.0.0.0/8"});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  FakeAsterisk refused;
  ASSERT_TRUE(refused.Dial(bridge.audiosocket_port(0), kUuid));
  EXPECT_TRUE(refused.WaitClosed(kWait));
  EXPECT_TRUE(bridge.WaitForEvent("connection_refused", "allowlist").has_value());
  EXPECT_EQ(bridge.Metric("audiosocket_bridge_connections_rejected_total{reason=\"allowlist\"}"),
            1);
  FakeAsterisk allowed;
  ASSERT_TRUE(allowed.Dial(bridge.audiosocket_port(1), kUuid));
  EXPECT_TRUE(bridge.WaitForEvent("call_started").has_value());
}

// Certificates made by openssl for one test run.
class Certificates {
 public:
  Certificates() {
    dir_ = TempPath("certs");
    const std::string script = absl::StrCat(
        "set -e; mkdir -p ", dir_, "; cd ", dir_,
        "; key() { openssl ecparam -name prime256v1 -genkey -noout -out $1.key; }"
        "; ca() { key $1; openssl req -x509 -new -key $1.key -out $1.pem -days 2 -subj /CN=$1; }"
        "; leaf() { key $1; openssl req -new -key $1.key -out $1.csr -subj /CN=$1;"
        " printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > $1.ext;"
        " openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial -out $1.pem"
        " -days 2 -extfile $1.ext; }"
        "; ca ca; ca other-ca; leaf server ca; leaf client ca; leaf stranger other-ca",
        " >/dev/null 2>&1");
    ok_ = std::system(script.c_str()) == 0;
  }
  bool ok() const { return ok_; }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string read(const std::string& name) const {
    std::ifstream in(path(name));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string dir_;
  bool ok_ = false;
};

grpc::Status ListCalls(int port, std::shared_ptr<grpc::ChannelCredentials> credentials,
                       const std::string& token = "") {
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port), credentials, args);
  auto stub = v1::BridgeService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
  v1::ListCallsResponse response;
  return stub->ListCalls(&context, v1::ListCallsRequest(), &response);
}

TEST(TlsTest, PullServerTlsAndMutualTls) {
  Certificates certs;
  ASSERT_TRUE(certs.ok()) << "openssl failed";
  {
    BridgeProcess bridge({"--mode=pull", "--tls_cert_file=" + certs.path("server.pem"),
                          "--tls_key_file=" + certs.path("server.key")});
    ASSERT_TRUE(bridge.ok()) << bridge.Output();
    grpc::SslCredentialsOptions right;
    right.pem_root_certs = certs.read("ca.pem");
    EXPECT_TRUE(ListCalls(bridge.grpc_port(), grpc::SslCredentials(right)).ok());
    grpc::SslCredentialsOptions wrong;
    wrong.pem_root_certs = certs.read("other-ca.pem");
    EXPECT_FALSE(ListCalls(bridge.grpc_port(), grpc::SslCredentials(wrong)).ok());
    EXPECT_FALSE(ListCalls(bridge.grpc_port(), grpc::InsecureChannelCredentials()).ok());
  }
  BridgeProcess bridge({"--mode=pull", "--tls_cert_file=" + certs.path("server.pem"),
                        "--tls_key_file=" + certs.path("server.key"),
                        "--tls_client_ca_file=" + certs.path("ca.pem")});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  grpc::SslCredentialsOptions with_cert;
  with_cert.pem_root_certs = certs.read("ca.pem");
  with_cert.pem_cert_chain = certs.read("client.pem");
  with_cert.pem_private_key = certs.read("client.key");
  EXPECT_TRUE(ListCalls(bridge.grpc_port(), grpc::SslCredentials(with_cert)).ok());
  grpc::SslCredentialsOptions without_cert;
  without_cert.pem_root_certs = certs.read("ca.pem");
  EXPECT_FALSE(ListCalls(bridge.grpc_port(), grpc::SslCredentials(without_cert)).ok());
  grpc::SslCredentialsOptions stranger;
  stranger.pem_root_certs = certs.read("ca.pem");
  stranger.pem_cert_chain = certs.read("stranger.pem");
  stranger.pem_private_key = certs.read("stranger.key");
  EXPECT_FALSE(ListCalls(bridge.grpc_port(), grpc::SslCredentials(stranger)).ok());
}

// Push mode over mutual TLS; a backend the bridge cannot verify is refused.
TEST(TlsTest, PushBackendMutualTls) {
  Certificates certs;
  ASSERT_TRUE(certs.ok()) << "openssl failed";
  grpc::SslServerCredentialsOptions server(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  server.pem_key_cert_pairs.push_back({certs.read("server.key"), certs.read("server.pem")});
  server.pem_root_certs = certs.read("ca.pem");
  PushBackend backend(grpc::SslServerCredentials(server));
  {
    BridgeProcess bridge({"--backend=" + backend.target(), "--first_audio_wait=50ms",
                          "--backend_tls_ca_file=" + certs.path("ca.pem"),
                          "--backend_tls_cert_file=" + certs.path("client.pem"),
                          "--backend_tls_key_file=" + certs.path("client.key")});
    ASSERT_TRUE(bridge.ok()) << bridge.Output();
    FakeAsterisk caller;
    ASSERT_TRUE(caller.Dial(bridge.audiosocket_port(), kUuid));
    auto call = backend.NextCall(kWait);
    ASSERT_NE(call, nullptr) << bridge.Output();
    ASSERT_TRUE(call->Next(kWait).has_value());
    ASSERT_TRUE(call->Accept());
    EXPECT_TRUE(bridge.WaitForEvent("call_connected").has_value());
  }
  // Without a client certificate the backend refuses the bridge.
  BridgeProcess bridge({"--backend=" + backend.target(), "--first_audio_wait=50ms",
                        "--backend_tls_ca_file=" + certs.path("ca.pem")});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  FakeAsterisk caller;
  ASSERT_TRUE(caller.Dial(bridge.audiosocket_port(), kUuid));
  EXPECT_TRUE(bridge.WaitForEvent("call_ended", "ALL_BACKENDS_REJECTED").has_value())
      << bridge.Output();
}

TEST(TokenTest, PullRequiresTheTokenAndPushSendsIt) {
  const std::string token_file = TempPath("token");
  WriteFile(token_file, "s3cret-token\n");
  {
    BridgeProcess bridge({"--mode=pull", "--auth_token_file=" + token_file});
    ASSERT_TRUE(bridge.ok()) << bridge.Output();
    const auto insecure = grpc::InsecureChannelCredentials();
    EXPECT_EQ(ListCalls(bridge.grpc_port(), insecure).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_EQ(ListCalls(bridge.grpc_port(), insecure, "wrong").error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_TRUE(ListCalls(bridge.grpc_port(), insecure, "s3cret-token").ok());
    PullWorker no_token(bridge.grpc_port(), ClaimAny());
    EXPECT_EQ(no_token.status().error_code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  PushBackend backend;
  BridgeProcess bridge({"--backend=" + backend.target(), "--first_audio_wait=50ms",
                        "--auth_token_file=" + token_file});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  FakeAsterisk caller;
  ASSERT_TRUE(caller.Dial(bridge.audiosocket_port(), kUuid));
  auto call = backend.NextCall(kWait);
  ASSERT_NE(call, nullptr);
  EXPECT_EQ(call->authorization(), "Bearer s3cret-token");
}

// ---------------------------------------------------------------- scaling

// The established TCP connections to local port `port`, from the kernel's
// tables (gRPC's sockets are IPv6 with IPv4-mapped addresses, so both): a
// push backend's only clients are the bridge's channels.
int ConnectionsTo(int port) {
  const std::string suffix = absl::StrFormat(":%04X", port);
  int count = 0;
  for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream table(path);
    std::string line;
    std::getline(table, line);  // the header
    while (std::getline(table, line)) {
      std::istringstream fields(line);
      std::string slot, local, far, state;
      fields >> slot >> local >> far >> state;
      count += absl::EndsWith(far, suffix) && state == "01";  // TCP_ESTABLISHED
    }
  }
  return count;
}

// Each event loop reaches a push backend over a connection of its own: one
// connection for all loops would serialize every frame of every call in
// gRPC's work for that connection, and more --io_threads would not carry
// more calls.
TEST(ScalingTest, EachEventLoopHasItsOwnConnectionToAPushBackend) {
  for (int loops : {1, 3}) {
    PushBackend backend;
    BridgeProcess bridge({"--backend=" + backend.target(), "--first_audio_wait=50ms",
                          absl::StrCat("--io_threads=", loops)});
    ASSERT_TRUE(bridge.ok()) << bridge.Output();
    std::vector<std::unique_ptr<FakeAsterisk>> callers;
    std::vector<std::shared_ptr<BackendCall>> calls;
    for (int c = 0; c < 3; ++c) {  // calls go to the loops in turn
      callers.push_back(std::make_unique<FakeAsterisk>());
      ASSERT_TRUE(callers.back()->Dial(bridge.audiosocket_port(),
                                       absl::StrCat("40325ec2-5efd-4bd3-805f-53576e58100", c)));
      calls.push_back(backend.AcceptNextCall(kWait));
      ASSERT_NE(calls.back(), nullptr) << bridge.Output();
    }
    EXPECT_EQ(ConnectionsTo(backend.port()), loops) << "with --io_threads=" << loops;
  }
}

// --------------------------------------------------------------- fallback

TEST(FallbackTest, CallerHearsTheFallbackWavThenTheHangup) {
  int dead_port;
  {
    PushBackend gone;
    dead_port = gone.port();
  }
  const std::string wav = TempPath("sorry.wav");
  WriteFile(wav, audio::EncodeWav(8000, std::vector<int16_t>(4000, 1234)));  // 0.5 s
  BridgeProcess bridge({absl::StrCat("--backend=ipv4:127.0.0.1:", dead_port),
                        "--first_audio_wait=50ms", "--fallback_wav=" + wav});
  ASSERT_TRUE(bridge.ok()) << bridge.Output();
  FakeAsterisk caller;
  ASSERT_TRUE(caller.Dial(bridge.audiosocket_port(), kUuid));
  EXPECT_TRUE(caller.WaitClosed(kWait));
  EXPECT_EQ(std::count(caller.audio().begin(), caller.audio().end(), 1234), 4000);
  ASSERT_FALSE(caller.others().empty());
  EXPECT_EQ(caller.others().back().kind, 0x00);
  EXPECT_TRUE(bridge.WaitForEvent("call_ended", "ALL_BACKENDS_REJECTED").has_value());
}

// ------------------------------------------------------------------- logs

TEST(LogsTest, EveryCallLogsItsStartAndItsEndWithReasonAndCounters) {
  BridgeProcess bridge({"--mode=pull", "--first_audio_wait=50ms"});
  ASSERT_TRUE(bridge.ok());
  PullWorker worker(bridge.grpc_port(), ClaimAny());
  FakeAsterisk caller;
  ASSERT_TRUE(caller.Dial(bridge.audiosocket_port(), kUuid));
  caller.SendAudio(NumberedFrame(0));
  ASSERT_TRUE(worker.Next(kWait).has_value());
  caller.Close();
  auto start = bridge.WaitForEvent("call_started");
  auto end = bridge.WaitForEvent("call_ended");
  ASSERT_TRUE(start.has_value() && end.has_value());
  for (const std::string* line : {&*start, &*end}) {
    EXPECT_THAT(*line, ::testing::StartsWith("{\"time\":\""));
    EXPECT_THAT(*line, HasSubstr(absl::StrCat("\"call_id\":\"", kUuid, "\"")));
  }
  for (const char* field : {"\"reason\":\"CALLER_HUNG_UP\"", "\"frames_in\":1",
                            "\"frames_out\":", "\"bytes_in\":", "\"duration_ms\":"}) {
    EXPECT_THAT(*end, HasSubstr(field));
  }
}

}  // namespace
}  // namespace audiosocket::testing
