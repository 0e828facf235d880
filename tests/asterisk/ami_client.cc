#include "tests/asterisk/ami_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "tests/support/loopback.h"

namespace audiosocket::testing {

std::string Field(const AmiClient::Message& message, const std::string& key) {
  auto it = message.find(key);
  return it == message.end() ? std::string() : it->second;
}

absl::StatusOr<std::unique_ptr<AmiClient>> AmiClient::Connect(int port, const std::string& user,
                                                              const std::string& secret,
                                                              absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  int fd = -1;
  // Asterisk opens the manager port a little after it reports booted.
  while (true) {
    fd = ConnectLoopback(port);
    if (fd >= 0) break;
    const int error = errno;
    if (absl::Now() > deadline) {
      return absl::UnavailableError(
          absl::StrCat("AMI on 127.0.0.1:", port, " refused: ", std::strerror(error)));
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  std::unique_ptr<AmiClient> client(new AmiClient(fd));
  client->reader_ = std::thread([c = client.get()] { c->ReadLoop(); });
  auto login = client->Action("Login", {{"Username", user}, {"Secret", secret}, {"Events", "on"}},
                              deadline - absl::Now() + absl::Seconds(1));
  if (!login.ok()) return login.status();
  return client;
}

AmiClient::~AmiClient() {
  shutdown(fd_, SHUT_RDWR);
  if (reader_.joinable()) reader_.join();
  close(fd_);
}

bool AmiClient::WriteAll(const std::string& text) {
  absl::MutexLock lock(&write_mu_);
  size_t sent = 0;
  while (sent < text.size()) {
    const ssize_t n = send(fd_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

void AmiClient::ReadLoop() {
  std::string buffer;
  Message current;
  char chunk[65536];
  while (true) {
    const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buffer.append(chunk, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t end; (end = buffer.find("\r\n", start)) != std::string::npos; start = end + 2) {
      absl::string_view line(buffer.data() + start, end - start);
      if (!line.empty()) {
        const size_t colon = line.find(':');
        if (colon == absl::string_view::npos) continue;  // the banner line
        std::string key(line.substr(0, colon));
        std::string value(absl::StripLeadingAsciiWhitespace(line.substr(colon + 1)));
        auto [it, inserted] = current.emplace(key, value);
        if (!inserted) absl::StrAppend(&it->second, "\n", value);
        continue;
      }
      if (current.empty()) continue;
      absl::MutexLock lock(&mu_);
      if (current.count("Event") != 0) {
        events_.push_back(std::move(current));
      } else if (current.count("ActionID") != 0) {
        responses_[current["ActionID"]] = std::move(current);
      }
      current.clear();
    }
    buffer.erase(0, start);
  }
  absl::MutexLock lock(&mu_);
  closed_ = true;
}

absl::StatusOr<AmiClient::Message> AmiClient::Action(const std::string& action,
                                                     const Fields& fields, absl::Duration timeout) {
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    id = absl::StrCat("t", ++next_action_id_);
  }
  std::string text = absl::StrCat("Action: ", action, "\r\nActionID: ", id, "\r\n");
  for (const auto& [key, value] : fields) absl::StrAppend(&text, key, ": ", value, "\r\n");
  text += "\r\n";
  if (!WriteAll(text)) return absl::UnavailableError("AMI connection closed");
  absl::MutexLock lock(&mu_);
  auto ready = [this, &id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return closed_ || responses_.count(id) != 0;
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  auto it = responses_.find(id);
  if (it == responses_.end() && closed_) {
    return absl::UnavailableError(
        absl::StrCat("AMI connection closed before the response to ", action));
  }
  if (it == responses_.end()) {
    return absl::DeadlineExceededError(absl::StrCat(
        "AMI action ", action, " had no response within ", absl::FormatDuration(timeout)));
  }
  Message response = std::move(it->second);
  responses_.erase(it);
  if (Field(response, "Response") == "Error") {
    return absl::FailedPreconditionError(
        absl::StrCat("AMI action ", action, " failed: ", Field(response, "Message")));
  }
  return response;
}

absl::StatusOr<std::string> AmiClient::Command(const std::string& command, absl::Duration timeout) {
  auto response = Action("Command", {{"Command", command}}, timeout);
  if (!response.ok()) return response.status();
  return Field(*response, "Output");
}

std::optional<AmiClient::Message> AmiClient::WaitForEvent(
    const std::function<bool(const Message&)>& match, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  size_t seen = 0;
  absl::MutexLock lock(&mu_);
  while (true) {
    for (; seen < events_.size(); ++seen) {
      if (match(events_[seen])) return events_[seen];
    }
    if (closed_) return std::nullopt;
    const size_t known = events_.size();
    auto more = [this, known]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return closed_ || events_.size() > known;
    };
    if (!mu_.AwaitWithDeadline(absl::Condition(&more), deadline)) return std::nullopt;
  }
}

std::vector<AmiClient::Message> AmiClient::Events() const {
  absl::MutexLock lock(&mu_);
  return events_;
}

}  // namespace audiosocket::testing
