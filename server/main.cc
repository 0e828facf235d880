// audiosocket-bridge: accepts AudioSocket calls from Asterisk and bridges each
// to a bidirectional gRPC stream. See README.md and docs/.
//
// Threads: main() blocks SIGINT/SIGTERM before any thread starts, so every
// thread inherits the mask and only main() receives them, with sigwait().

#include <signal.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "server/bridge.h"
#include "server/config.h"
#include "server/log.h"

ABSL_FLAG(std::string, listen, "0.0.0.0:9092",
          "AudioSocket listeners, separated by ';'. Each is ADDRESS[,dialect=asterisk|extended]"
          "[,name=NAME][,encoding=slin|ulaw|alaw][,rate=HZ][,inband_dtmf=true|false], e.g. "
          "\"0.0.0.0:9092;0.0.0.0:9093,dialect=extended,name=ext\". Port 0 picks a free port.");
ABSL_FLAG(std::string, grpc_listen, "0.0.0.0:50051",
          "Address the gRPC server binds (Bridge service, health, reflection).");
ABSL_FLAG(std::string, mode, "auto",
          "push (dial --backend per call), pull (backends claim calls over ClaimCall), or auto "
          "(push when --backend is set).");
ABSL_FLAG(std::string, backend, "",
          "Push mode: the backends' gRPC target, e.g. dns:///agents.default.svc:50051 or "
          "ipv4:10.0.0.1:50051,10.0.0.2:50051 (round-robin across addresses).");
ABSL_FLAG(int, backend_attempts, 3,
          "Push mode: streams tried per call before the call ends ALL_BACKENDS_REJECTED.");
ABSL_FLAG(absl::Duration, accept_timeout, absl::Seconds(3),
          "Push mode: time for a backend to accept a call (all attempts).");
ABSL_FLAG(absl::Duration, claim_timeout, absl::Seconds(10),
          "Pull mode: time a call waits for a worker to claim it.");
ABSL_FLAG(absl::Duration, uuid_timeout, absl::Seconds(5),
          "Time for a new connection to send its UUID before it is closed.");
ABSL_FLAG(absl::Duration, first_audio_wait, absl::Milliseconds(500),
          "Time after the UUID to wait for the first audio message (which gives the call's rate) "
          "before the backend is told of the call.");
ABSL_FLAG(bool, send_silence, true,
          "Send silence frames to Asterisk when no audio is queued (some Asterisk versions stall "
          "their own audio until the server sends something).");
ABSL_FLAG(int, max_payload, 65535, "Largest AudioSocket payload accepted, in bytes.");
ABSL_FLAG(int, hold_audio_ms, 2000,
          "Caller audio held (bounded) until a backend accepts or claims the call, in ms.");
ABSL_FLAG(int, backend_queue_ms, 1000,
          "Caller audio queued toward a slow backend before the oldest is dropped, in ms.");
ABSL_FLAG(int, max_playout_ms, 120000, "Backend audio queued per call for the caller, in ms.");
ABSL_FLAG(int, playout_high_watermark_ms, 5000, "Playout level that sends HIGH_WATERMARK (XOFF).");
ABSL_FLAG(int, playout_low_watermark_ms, 1000, "Playout level that sends LOW_WATERMARK (XON).");
ABSL_FLAG(int, max_unsent_ms, 1000,
          "Audio Asterisk has not read before further frames are dropped, in ms.");
ABSL_FLAG(absl::Duration, write_stall_timeout, absl::Seconds(5),
          "Time Asterisk may stop reading before the call ends CALLER_UNRESPONSIVE.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(30),
          "On SIGTERM: time active calls get to finish before they end with reason SHUTDOWN.");
ABSL_FLAG(int, io_threads, 1, "Event-loop threads that run AudioSocket calls.");
ABSL_FLAG(std::string, log_level, "info", "Lowest log level written: debug, info, warning, error.");

namespace {

using audiosocket::BackendMode;
using audiosocket::BridgeConfig;

int Fail(absl::string_view setting, absl::string_view message) {
  audiosocket::log::Error("startup_failed", {{"setting", setting}, {"error", message}});
  return 2;
}

// Fills `config` from the flags; on error names the setting.
bool ConfigFromFlags(BridgeConfig* config, std::string* setting, std::string* error) {
  config->listeners.clear();
  int index = 0;
  for (absl::string_view entry :
       absl::StrSplit(absl::GetFlag(FLAGS_listen), ';', absl::SkipWhitespace())) {
    auto listener = audiosocket::ParseListener(absl::StripAsciiWhitespace(entry), index++);
    if (!listener.ok()) {
      *setting = "listen";
      *error = std::string(listener.status().message());
      return false;
    }
    config->listeners.push_back(*listener);
  }
  if (config->listeners.empty()) {
    *setting = "listen";
    *error = "at least one AudioSocket listener is needed";
    return false;
  }
  config->grpc_listen = absl::GetFlag(FLAGS_grpc_listen);
  config->backend_target = absl::GetFlag(FLAGS_backend);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "push" || (mode == "auto" && !config->backend_target.empty())) {
    config->mode = BackendMode::kPush;
  } else if (mode == "pull" || mode == "auto") {
    config->mode = BackendMode::kPull;
  } else {
    *setting = "mode";
    *error = "must be push, pull or auto";
    return false;
  }
  if (config->mode == BackendMode::kPush && config->backend_target.empty()) {
    *setting = "backend";
    *error = "push mode needs --backend (a gRPC target)";
    return false;
  }
  struct IntSetting {
    const char* name;
    int value;
    int min;
    int max;
    int* out;
  };
  const IntSetting ints[] = {
      {"backend_attempts", absl::GetFlag(FLAGS_backend_attempts), 1, 100,
       &config->backend_attempts},
      {"hold_audio_ms", absl::GetFlag(FLAGS_hold_audio_ms), 0, 600000, &config->hold_audio_ms},
      {"backend_queue_ms", absl::GetFlag(FLAGS_backend_queue_ms), 20, 600000,
       &config->backend_queue_ms},
      {"max_playout_ms", absl::GetFlag(FLAGS_max_playout_ms), 20, 3600000, &config->max_playout_ms},
      {"playout_high_watermark_ms", absl::GetFlag(FLAGS_playout_high_watermark_ms), 20, 3600000,
       &config->playout_high_watermark_ms},
      {"playout_low_watermark_ms", absl::GetFlag(FLAGS_playout_low_watermark_ms), 0, 3600000,
       &config->playout_low_watermark_ms},
      {"max_unsent_ms", absl::GetFlag(FLAGS_max_unsent_ms), 20, 60000, &config->max_unsent_ms},
  };
  for (const IntSetting& s : ints) {
    if (s.value < s.min || s.value > s.max) {
      *setting = s.name;
      *error = absl::StrCat("must be between ", s.min, " and ", s.max, " (got ", s.value, ")");
      return false;
    }
    *s.out = s.value;
  }
  if (config->playout_low_watermark_ms >= config->playout_high_watermark_ms) {
    *setting = "playout_low_watermark_ms";
    *error = "must be below playout_high_watermark_ms";
    return false;
  }
  const int max_payload = absl::GetFlag(FLAGS_max_payload);
  if (max_payload < 16 || max_payload > 65535) {
    *setting = "max_payload";
    *error = "must be between 16 and 65535 bytes";
    return false;
  }
  config->max_payload = static_cast<size_t>(max_payload);
  struct DurationSetting {
    const char* name;
    absl::Duration value;
    absl::Duration* out;
  };
  const DurationSetting durations[] = {
      {"accept_timeout", absl::GetFlag(FLAGS_accept_timeout), &config->accept_timeout},
      {"claim_timeout", absl::GetFlag(FLAGS_claim_timeout), &config->claim_timeout},
      {"uuid_timeout", absl::GetFlag(FLAGS_uuid_timeout), &config->uuid_timeout},
      {"first_audio_wait", absl::GetFlag(FLAGS_first_audio_wait), &config->first_audio_wait},
      {"write_stall_timeout", absl::GetFlag(FLAGS_write_stall_timeout),
       &config->write_stall_timeout},
  };
  for (const DurationSetting& d : durations) {
    if (d.value <= absl::ZeroDuration()) {
      *setting = d.name;
      *error = "must be a positive duration, e.g. 5s or 200ms";
      return false;
    }
    *d.out = d.value;
  }
  config->send_silence = absl::GetFlag(FLAGS_send_silence);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Bridges Asterisk AudioSocket calls to gRPC streams.\n"
      "Usage: audiosocket-bridge [--flag=value ...]; every setting is listed below.");
  absl::ParseCommandLine(argc, argv);

  audiosocket::log::Level level;
  if (!audiosocket::log::ParseLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return Fail("log_level", "must be one of debug, info, warning, error");
  }
  audiosocket::log::SetMinLevel(level);

  BridgeConfig config;
  std::string setting;
  std::string error;
  if (!ConfigFromFlags(&config, &setting, &error)) return Fail(setting, error);
  const int io_threads = absl::GetFlag(FLAGS_io_threads);
  if (io_threads < 1 || io_threads > 64) return Fail("io_threads", "must be between 1 and 64");

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  audiosocket::Bridge bridge(config, io_threads);
  if (absl::Status started = bridge.Start(); !started.ok()) {
    return Fail(absl::StrContains(started.message(), "listener") ? "listen" : "grpc_listen",
                started.message());
  }
  audiosocket::log::Info("listening",
                         {{"audiosocket", absl::StrJoin(bridge.audiosocket_addresses(), ",")},
                          {"grpc_port", bridge.grpc_port()},
                          {"mode", config.mode == BackendMode::kPush ? "push" : "pull"},
                          {"pid", static_cast<int64_t>(getpid())}});

  int received = 0;
  sigwait(&signals, &received);
  const absl::Duration drain = absl::GetFlag(FLAGS_drain_timeout);
  audiosocket::log::Info("draining", {{"signal", strsignal(received)},
                                      {"active_calls", bridge.counters().active_calls.load()},
                                      {"drain_timeout_ms", absl::ToInt64Milliseconds(drain)}});
  bridge.StopAccepting();
  // A second signal during the drain exits at once.
  std::thread second([&signals] {
    int again = 0;
    sigwait(&signals, &again);
    audiosocket::log::Warning("exiting_now", {{"signal", strsignal(again)}});
    _exit(1);
  });
  second.detach();
  const bool drained = bridge.WaitForCalls(drain);
  audiosocket::log::Info(
      "shutting_down",
      {{"drained", drained}, {"active_calls", bridge.counters().active_calls.load()}});
  bridge.Shutdown(absl::Seconds(5));
  audiosocket::log::Info("stopped");
  _exit(0);
}
