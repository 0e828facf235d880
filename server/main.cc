// audiosocket-bridge: accepts AudioSocket calls from Asterisk and bridges each
// to a bidirectional gRPC stream. See README.md and docs/.
//
// Threads: main() blocks SIGINT/SIGTERM before any thread starts, so every
// thread inherits the mask and only main() receives them, with sigwait().

#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/log.h"
#include "server/net.h"

ABSL_FLAG(std::string, audiosocket_listen, "0.0.0.0:9092",
          "Address the AudioSocket listener binds (host:port; port 0 picks a free one).");
ABSL_FLAG(std::string, grpc_listen, "0.0.0.0:50051",
          "Address the gRPC server binds (host:port; port 0 picks a free one).");
ABSL_FLAG(absl::Duration, shutdown_timeout, absl::Seconds(5),
          "How long shutdown waits for gRPC streams to finish before cancelling them.");
ABSL_FLAG(std::string, log_level, "info", "Lowest log level written: debug, info, warning, error.");

namespace {

int Fail(absl::string_view setting, absl::string_view message) {
  audiosocket::log::Error("startup_failed", {{"setting", setting}, {"error", message}});
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Bridges Asterisk AudioSocket calls to gRPC streams.\n"
      "Usage: audiosocket-bridge [--flag=value ...]; see --help for every setting.");
  absl::ParseCommandLine(argc, argv);

  audiosocket::log::Level level;
  if (!audiosocket::log::ParseLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return Fail("log_level", "must be one of debug, info, warning, error");
  }
  audiosocket::log::SetMinLevel(level);

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  auto audiosocket_hp = audiosocket::net::ParseHostPort(absl::GetFlag(FLAGS_audiosocket_listen));
  if (!audiosocket_hp.ok()) return Fail("audiosocket_listen", audiosocket_hp.status().message());
  auto audiosocket_addr = audiosocket::net::Resolve(*audiosocket_hp);
  if (!audiosocket_addr.ok()) {
    return Fail("audiosocket_listen", audiosocket_addr.status().message());
  }
  auto listen_fd = audiosocket::net::ListenTcp(*audiosocket_addr);
  if (!listen_fd.ok()) return Fail("audiosocket_listen", listen_fd.status().message());
  auto bound = audiosocket::net::LocalAddress(*listen_fd);
  if (!bound.ok()) return Fail("audiosocket_listen", bound.status().message());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int grpc_port = 0;
  builder.AddListeningPort(absl::GetFlag(FLAGS_grpc_listen), grpc::InsecureServerCredentials(),
                           &grpc_port);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || grpc_port == 0) {
    return Fail("grpc_listen", absl::StrCat("cannot listen on ", absl::GetFlag(FLAGS_grpc_listen)));
  }

  audiosocket::log::Info("listening", {{"audiosocket", bound->ToString()},
                                       {"grpc_port", grpc_port},
                                       {"pid", static_cast<int64_t>(getpid())}});

  int received = 0;
  sigwait(&signals, &received);
  audiosocket::log::Info("shutting_down", {{"signal", strsignal(received)}});

  ::close(*listen_fd);
  server->Shutdown(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_shutdown_timeout)));
  server->Wait();
  audiosocket::log::Info("stopped");
  return 0;
}
