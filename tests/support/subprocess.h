#ifndef AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_SUBPROCESS_H_
#define AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_SUBPROCESS_H_

// A child process for end-to-end tests: starts a real binary, collects its
// stdout and stderr line by line on a reader thread, and lets the test wait
// for a line, signal the process and collect its exit status.
//
// Thread-safety: all methods may be called from the test thread; the output
// is guarded by a mutex shared with the reader thread.

#include <sys/types.h>

#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace audiosocket::testing {

// Absolute path of a file in the test's runfiles, e.g. "server/audiosocket-bridge".
std::string RunfilePath(const std::string& workspace_relative);

class Subprocess {
 public:
  // Starts argv[0] with the given arguments. Dies (test failure) on error.
  explicit Subprocess(std::vector<std::string> argv);
  ~Subprocess();  // Kills the process if it still runs.

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }

  // Waits until a line of output (stdout or stderr) contains `needle`;
  // returns that line, or nullopt after `timeout` or when the process closed
  // its output first.
  std::optional<std::string> WaitForLine(const std::string& needle, absl::Duration timeout);

  // Waits until the output holds `count` lines containing `needle`.
  bool WaitForLines(const std::string& needle, int count, absl::Duration timeout);

  // Sends `signal` to the process.
  void Signal(int signal);

  // Waits for exit and returns the raw wait status, or nullopt on timeout.
  std::optional<int> Wait(absl::Duration timeout);

  // Everything the process printed so far.
  std::string Output() const;
  std::vector<std::string> Lines() const;

 private:
  void ReadLoop(int fd);

  pid_t pid_ = -1;
  bool reaped_ = false;
  std::thread reader_;
  mutable absl::Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
  std::string partial_ ABSL_GUARDED_BY(mu_);
  bool eof_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_SUBPROCESS_H_
