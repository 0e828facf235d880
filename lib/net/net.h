#ifndef AUDIOSOCKET_BRIDGE_LIB_NET_NET_H_
#define AUDIOSOCKET_BRIDGE_LIB_NET_NET_H_

// Small POSIX socket helpers shared by the server, the tools and the
// benchmarks.
//
// Threads: free functions and value types, safe from any thread.

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace audiosocket::net {

// A host and a port as written by a user: "0.0.0.0:9092", "[::1]:9092",
// "localhost:9092". The port may be 0 to let the kernel choose.
struct HostPort {
  std::string host;
  int port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(absl::string_view text);

// A socket address with its length, printable as "host:port".
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string ToString() const;
  int port() const;
};

// Resolves `host_port` (numeric addresses or names) to its first address.
absl::StatusOr<SocketAddress> Resolve(const HostPort& host_port);

// A non-blocking listening TCP socket bound to `address` (SO_REUSEADDR set).
// Returns the descriptor; the caller owns it.
absl::StatusOr<int> ListenTcp(const SocketAddress& address, int backlog = 1024);

// The address a bound socket actually listens on (resolves port 0).
absl::StatusOr<SocketAddress> LocalAddress(int fd);
absl::StatusOr<SocketAddress> PeerAddress(int fd);

// A client network, e.g. 10.0.0.0/8 or fd00::/8 (a bare address is /32 or
// /128). IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 networks.
struct Cidr {
  int family = AF_INET;
  uint8_t address[16] = {};
  int prefix_bits = 32;
};
absl::StatusOr<Cidr> ParseCidr(absl::string_view text);
bool CidrContains(const Cidr& cidr, const SocketAddress& address);

// Sets O_NONBLOCK / TCP_NODELAY on `fd`.
absl::Status SetNonBlocking(int fd);
absl::Status SetNoDelay(int fd);

}  // namespace audiosocket::net

#endif  // AUDIOSOCKET_BRIDGE_LIB_NET_NET_H_
