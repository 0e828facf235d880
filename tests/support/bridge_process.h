#ifndef AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_BRIDGE_PROCESS_H_
#define AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_BRIDGE_PROCESS_H_

// The real bridge binary, started on ephemeral ports for a test.

#include <memory>
#include <string>
#include <vector>

#include "tests/support/subprocess.h"

namespace audiosocket::testing {

class BridgeProcess {
 public:
  // Starts server/audiosocket-bridge with `flags` (plus ephemeral ports
  // unless --listen / --grpc_listen are given) and waits until it listens.
  explicit BridgeProcess(std::vector<std::string> flags);

  bool ok() const { return ok_; }
  // Port of listener `index`.
  int audiosocket_port(size_t index = 0) const { return ports_.at(index); }
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }
  // GET /metrics; the value of one sample line ("name{labels}"), or -1.
  double Metric(const std::string& sample);
  Subprocess& process() { return *process_; }
  std::string Output() const { return process_->Output(); }

  // Waits for a log line with event `event` (and containing `needle`).
  std::optional<std::string> WaitForEvent(const std::string& event, const std::string& needle = "",
                                          absl::Duration timeout = absl::Seconds(10));

 private:
  std::unique_ptr<Subprocess> process_;
  bool ok_ = false;
  std::vector<int> ports_;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
};

// An HTTP GET on 127.0.0.1:`port`; the body, or "" on failure.
std::string HttpGet(int port, const std::string& path);

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_BRIDGE_PROCESS_H_
