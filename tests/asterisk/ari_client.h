#ifndef AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_ARI_CLIENT_H_
#define AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_ARI_CLIENT_H_

// Asterisk's REST interface (ARI) for tests, over the HTTP server the
// fixture enables on 127.0.0.1 (user and password "test"): one request at a
// time, and a Stasis application held open by its event WebSocket.
//
// Threads: each object is used by one thread; AriRequest from any.

#include <string>

namespace audiosocket::testing {

// Sends `method` `path` (e.g. "POST", "/ari/channels/ID/hold") and returns
// the whole response, status line included; "" when the connection failed.
std::string AriRequest(int port, const std::string& method, const std::string& path);

// The HTTP status code of a response from AriRequest (0 when there is none).
int AriStatus(const std::string& response);

// A Stasis application exists while a client holds its event WebSocket
// (the events are not read). Channels that run Stasis(name) enter it.
class AriApplication {
 public:
  AriApplication(int port, const std::string& name);
  ~AriApplication();
  AriApplication(const AriApplication&) = delete;
  AriApplication& operator=(const AriApplication&) = delete;

  // Whether Asterisk accepted the WebSocket (101 Switching Protocols).
  bool ok() const;
  const std::string& status_line() const { return status_line_; }

 private:
  int fd_ = -1;
  std::string status_line_;
};

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_ASTERISK_ARI_CLIENT_H_
