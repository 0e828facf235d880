#include "tests/support/bridge_process.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "tests/support/loopback.h"

namespace audiosocket::testing {

BridgeProcess::BridgeProcess(std::vector<std::string> flags) {
  // A test may run another build of the bridge (//server:audiosocket-bridge-opt)
  // by naming its runfile in AUDIOSOCKET_BRIDGE_BINARY.
  const char* binary = std::getenv("AUDIOSOCKET_BRIDGE_BINARY");
  std::vector<std::string> argv = {
      RunfilePath(binary != nullptr ? binary : "server/audiosocket-bridge")};
  bool has_listen = false;
  bool has_grpc = false;
  bool has_metrics = false;
  for (const std::string& flag : flags) {
    has_listen |= absl::StartsWith(flag, "--listen=");
    has_grpc |= absl::StartsWith(flag, "--grpc_listen=");
    has_metrics |= absl::StartsWith(flag, "--metrics_listen=");
  }
  if (!has_listen) argv.push_back("--listen=127.0.0.1:0");
  if (!has_grpc) argv.push_back("--grpc_listen=127.0.0.1:0");
  if (!has_metrics) argv.push_back("--metrics_listen=127.0.0.1:0");
  argv.insert(argv.end(), flags.begin(), flags.end());
  process_ = std::make_unique<Subprocess>(argv);
  auto line = process_->WaitForLine("\"event\":\"listening\"", absl::Seconds(20));
  if (!line.has_value()) return;
  std::smatch match;
  const std::string text = *line;
  if (std::regex_search(text, match, std::regex("\"audiosocket\":\"([^\"]*)\""))) {
    for (absl::string_view address : absl::StrSplit(match[1].str(), ',')) {
      int port = 0;
      if (absl::SimpleAtoi(address.substr(address.rfind(':') + 1), &port)) ports_.push_back(port);
    }
  }
  if (std::regex_search(text, match, std::regex("\"grpc_port\":([0-9]+)"))) {
    grpc_port_ = std::stoi(match[1].str());
  }
  if (std::regex_search(text, match, std::regex("\"metrics_port\":([0-9]+)"))) {
    metrics_port_ = std::stoi(match[1].str());
  }
  ok_ = !ports_.empty() && grpc_port_ > 0;
}

std::optional<std::string> BridgeProcess::WaitForEvent(const std::string& event,
                                                       const std::string& needle,
                                                       absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  const std::string tag = "\"event\":\"" + event + "\"";
  while (absl::Now() < deadline) {
    for (const std::string& line : process_->Lines()) {
      if (absl::StrContains(line, tag) && (needle.empty() || absl::StrContains(line, needle))) {
        return line;
      }
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return std::nullopt;
}

std::string HttpGet(int port, const std::string& path) {
  const int fd = ConnectLoopback(port);
  std::string response;
  if (fd >= 0) {
    const std::string request =
        "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buffer[65536];
    ssize_t n;
    while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, n);
    close(fd);
  }
  const size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

double BridgeProcess::Metric(const std::string& sample) {
  const std::string body = HttpGet(metrics_port_, "/metrics");
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (absl::StartsWith(line, sample + " ")) {
      double value = 0;
      if (absl::SimpleAtod(line.substr(sample.size() + 1), &value)) return value;
    }
  }
  return -1;
}

}  // namespace audiosocket::testing
