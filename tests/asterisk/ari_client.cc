#include "tests/asterisk/ari_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/support/loopback.h"

namespace audiosocket::testing {

std::string AriRequest(int port, const std::string& method, const std::string& path) {
  const int fd = ConnectLoopback(port);
  if (fd < 0) return "";
  const std::string request = absl::StrCat(
      method, " ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\nAuthorization: Basic dGVzdDp0ZXN0\r\n",
      "Content-Length: 0\r\nConnection: close\r\n\r\n");
  (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string response;
  char buffer[16384];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof(buffer), 0)) > 0) response.append(buffer, n);
  close(fd);
  return response;
}

int AriStatus(const std::string& response) {
  // "HTTP/1.1 204 No Content"
  const size_t space = response.find(' ');
  int status = 0;
  if (space == std::string::npos || !absl::SimpleAtoi(response.substr(space + 1, 3), &status)) {
    return 0;
  }
  return status;
}

AriApplication::AriApplication(int port, const std::string& name) {
  fd_ = ConnectLoopback(port);
  if (fd_ < 0) return;
  const std::string upgrade = absl::StrCat(
      "GET /ari/events?app=", name, "&api_key=test:test HTTP/1.1\r\nHost: 127.0.0.1\r\n",
      "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
  (void)!send(fd_, upgrade.data(), upgrade.size(), MSG_NOSIGNAL);
  char buffer[4096];
  const ssize_t n = recv(fd_, buffer, sizeof(buffer), 0);
  if (n > 0) status_line_ = std::string(buffer, static_cast<size_t>(n)).substr(0, 40);
}

AriApplication::~AriApplication() {
  if (fd_ >= 0) close(fd_);
}

bool AriApplication::ok() const { return absl::StrContains(status_line_, " 101 "); }

}  // namespace audiosocket::testing
