#include "tests/support/bridge_process.h"

#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"

namespace audiosocket::testing {

BridgeProcess::BridgeProcess(std::vector<std::string> flags) {
  std::vector<std::string> argv = {RunfilePath("server/audiosocket-bridge")};
  bool has_listen = false;
  bool has_grpc = false;
  for (const std::string& flag : flags) {
    has_listen |= absl::StartsWith(flag, "--listen=");
    has_grpc |= absl::StartsWith(flag, "--grpc_listen=");
  }
  if (!has_listen) argv.push_back("--listen=127.0.0.1:0");
  if (!has_grpc) argv.push_back("--grpc_listen=127.0.0.1:0");
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

}  // namespace audiosocket::testing
