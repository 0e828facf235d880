// audiosocket-bridge: accepts AudioSocket calls from Asterisk and bridges each
// to a bidirectional gRPC stream. See README.md and docs/.
//
// Threads: main() blocks SIGINT/SIGTERM before any thread starts, so every
// thread inherits the mask and only main() receives them, with sigwait().

#include <signal.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "server/bridge.h"
#include "server/config/config.h"
#include "server/config/flags.h"
#include "server/ops/descriptor_room.h"
#include "server/ops/log.h"

namespace {

using audiosocket::BackendMode;
using audiosocket::BridgeConfig;

// A second SIGTERM/SIGINT this soon after the first is the same request
// delivered twice, not an operator asking to cut the drain short.
constexpr absl::Duration kSignalGrace = absl::Seconds(1);

// Errors begin with the setting at fault: "tls_cert_file: ...".
int Fail(const absl::Status& status) {
  const absl::string_view message = status.message();
  const size_t colon = message.find(": ");
  const absl::string_view setting =
      colon == absl::string_view::npos ? absl::string_view() : message.substr(0, colon);
  audiosocket::log::Error(
      "startup_failed",
      {{"setting", setting},
       {"error", colon == absl::string_view::npos ? message : message.substr(colon + 2)}});
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, so every absl::Mutex lock also
  // updates a global lock-order graph (deadlock detection: GraphCycles was
  // 1.4 % of the bridge's samples under load). Unit tests, which do not link
  // this file, keep the detection; the service does not pay for it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "Bridges Asterisk AudioSocket calls to gRPC streams.\n"
      "Usage: audiosocket-bridge [--flag=value ...]; every setting is listed below.");
  absl::StatusOr<audiosocket::Settings> settings = audiosocket::SettingsFromCommandLine(argc, argv);
  if (!settings.ok()) return Fail(settings.status());
  audiosocket::log::SetMinLevel(settings->log_level);
  const BridgeConfig& config = settings->config;
  // Before any thread exists: growing the descriptor table later, while
  // calls arrive, stalls the loop that accepts them (descriptor_room.h).
  const audiosocket::DescriptorRoom descriptors =
      audiosocket::ReserveDescriptors(audiosocket::DescriptorsForCalls(config.max_calls));
  if (descriptors.short_of_wanted()) {
    audiosocket::log::Warning(
        "descriptor_limit",
        {{"soft_limit", static_cast<int64_t>(descriptors.soft_limit)},
         {"hard_limit", static_cast<int64_t>(descriptors.hard_limit)},
         {"wanted", static_cast<int64_t>(descriptors.wanted)},
         {"max_calls", config.max_calls},
         {"detail",
          "connections past the limit wait in the backlog (accept_paused); raise the hard "
          "limit (ulimit -Hn, systemd LimitNOFILE=, the container's nofile ulimit) or lower "
          "--max_calls"}});
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  absl::StatusOr<std::unique_ptr<audiosocket::Bridge>> created =
      audiosocket::Bridge::Create(config, settings->io_threads);
  if (!created.ok()) return Fail(created.status());
  audiosocket::Bridge& bridge = **created;
  audiosocket::log::Info("listening",
                         {{"audiosocket", absl::StrJoin(bridge.audiosocket_addresses(), ",")},
                          {"grpc_port", bridge.grpc_port()},
                          {"metrics_port", bridge.metrics_port()},
                          {"mode", config.mode == BackendMode::kPush ? "push" : "pull"},
                          {"grpc_server", config.loop_server() ? "loop" : "grpc"},
                          {"pid", static_cast<int64_t>(getpid())},
                          {"descriptor_limit", static_cast<int64_t>(descriptors.soft_limit)}});

  int received = 0;
  sigwait(&signals, &received);
  const absl::Time first_signal = absl::Now();
  const absl::Duration drain = settings->drain_timeout;
  audiosocket::log::Info("draining", {{"signal", strsignal(received)},
                                      {"active_calls", bridge.active_calls()},
                                      {"drain_timeout_ms", absl::ToInt64Milliseconds(drain)}});
  bridge.StopAccepting();
  // A second signal during the drain exits at once, unless it follows the
  // first within kSignalGrace: GNU timeout, and shells that signal the
  // whole process group, deliver the same stop request twice.
  std::thread second([&signals, first_signal] {
    while (true) {
      int again = 0;
      sigwait(&signals, &again);
      if (absl::Now() - first_signal >= kSignalGrace) {
        audiosocket::log::Warning("exiting_now", {{"signal", strsignal(again)}});
        _exit(1);
      }
      audiosocket::log::Info(
          "signal_ignored",
          {{"signal", strsignal(again)}, {"detail", "within 1s of the first: the drain goes on"}});
    }
  });
  second.detach();
  const bool drained = bridge.WaitForCalls(drain);
  audiosocket::log::Info("shutting_down",
                         {{"drained", drained}, {"active_calls", bridge.active_calls()}});
  bridge.Shutdown(absl::Seconds(5));
  audiosocket::log::Info("stopped");
  _exit(0);
}
