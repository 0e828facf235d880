#ifndef AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_AMI_CLIENT_H_
#define AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_AMI_CLIENT_H_

// A minimal Asterisk Manager Interface client for tests: logs in over TCP,
// sends actions and collects every event Asterisk reports.
//
// AMI is a line protocol: each message is "Key: Value" lines ended by an
// empty line. Responses carry the ActionID of their action; events carry an
// "Event" key. A key that repeats (a Command's "Output") is joined with '\n'.
//
// Threads: one reader thread parses the socket; every public method may be
// called from any thread. Messages are guarded by mu_.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace audiosocket::testing {

class AmiClient {
 public:
  using Message = std::map<std::string, std::string>;
  using Fields = std::vector<std::pair<std::string, std::string>>;

  // Connects to 127.0.0.1:`port` and logs in.
  static absl::StatusOr<std::unique_ptr<AmiClient>> Connect(int port, const std::string& user,
                                                            const std::string& secret,
                                                            absl::Duration timeout);
  ~AmiClient();

  // Sends an action and waits for its response; an error when Asterisk
  // answers "Response: Error" (its Message in the status) or not in time.
  absl::StatusOr<Message> Action(const std::string& action, const Fields& fields,
                                 absl::Duration timeout = absl::Seconds(10));
  // Runs a CLI command; its output.
  absl::StatusOr<std::string> Command(const std::string& command,
                                      absl::Duration timeout = absl::Seconds(10));

  // The first event (from the start of the session) for which `match`
  // holds, waiting up to `timeout` for it to arrive.
  std::optional<Message> WaitForEvent(const std::function<bool(const Message&)>& match,
                                      absl::Duration timeout);
  // Every event received so far.
  std::vector<Message> Events() const;

 private:
  explicit AmiClient(int fd) : fd_(fd) {}
  void ReadLoop();
  bool WriteAll(const std::string& text);

  const int fd_;
  std::thread reader_;
  absl::Mutex write_mu_;
  mutable absl::Mutex mu_;
  std::vector<Message> events_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Message> responses_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  int next_action_id_ ABSL_GUARDED_BY(mu_) = 0;
};

// The value of `key` in `message`, or "".
std::string Field(const AmiClient::Message& message, const std::string& key);

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_AMI_CLIENT_H_
