#ifndef AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_ASTERISK_SERVER_H_
#define AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_ASTERISK_SERVER_H_

// A real Asterisk for end-to-end tests: started from an installed prefix
// (tests/asterisk/build-asterisk.sh) with a configuration generated for this
// run alone (its own directories under /tmp, AMI and HTTP on free ports),
// driven through AMI, stopped at destruction.
//
// Calls are placed with Originate into Local channels: the ";1" leg runs
// the caller's context (plays, sends DTMF, records what it hears), the ";2"
// leg runs the context that connects to the bridge.
//
// Threads: one owner; ami() may be used from any thread.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "tests/asterisk/ami_client.h"
#include "tests/support/subprocess.h"

namespace audiosocket::testing {

class AsteriskServer {
 public:
  // The install prefix from $ASTERISK_PREFIX, or "" when the suite runs
  // without one (the tests then skip, saying why).
  static std::string InstallPrefix();

  static absl::StatusOr<std::unique_ptr<AsteriskServer>> Start(const std::string& prefix);
  ~AsteriskServer();

  AmiClient& ami() { return *ami_; }
  // Per-run folder; recordings go under recordings_dir().
  const std::string& dir() const { return dir_; }
  std::string recordings_dir() const { return dir_ + "/rec"; }
  int http_port() const { return http_port_; }

  // Replaces the dialplan (extensions.conf) and reloads it.
  absl::Status SetDialplan(const std::string& extensions);

  struct Originate {
    std::string channel;  // e.g. "Local/UUID@bridge-app/n"
    std::string context;  // where the ";1" leg (the caller) runs
    std::string exten = "s";
    std::vector<std::pair<std::string, std::string>> variables;
    std::string codecs;  // e.g. "ulaw", "slin16"; "" for Asterisk's default
    // The ";1" leg's unique id (ARI's channel id); "" for Asterisk's own.
    std::string channel_id;
  };
  // Starts a call (asynchronously: the call runs on when this returns).
  absl::Status Place(const Originate& call);

  // Waits until no channel is left (e.g. after a test's calls ended).
  absl::Status WaitForNoChannels(absl::Duration timeout);

  // Asterisk's log file ("full": notices, warnings, errors, verbose, DTMF).
  std::string Log() const;
  // Its last `lines` lines, for a failing test's output.
  std::string LogTail(size_t lines) const;

  // Between tests: hangs up whatever a test left up and waits until no
  // channel remains, so nothing leaks into the next test.
  absl::Status HangUpEverything(absl::Duration timeout);
  // Lines of Log() from byte `since` on, at ERROR or WARNING level, that
  // name `needle` and none of `expected`.
  std::vector<std::string> LogProblems(size_t since, const std::string& needle,
                                       const std::vector<std::string>& expected = {}) const;

 private:
  AsteriskServer() = default;

  std::string prefix_;
  std::string dir_;
  int ami_port_ = 0;
  int http_port_ = 0;
  std::unique_ptr<Subprocess> process_;
  std::unique_ptr<AmiClient> ami_;
};

// A port that was free a moment ago on 127.0.0.1.
int FreeTcpPort();

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_ASTERISK_SERVER_H_
