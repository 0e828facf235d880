#ifndef AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_ADDRESS_H_
#define AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_ADDRESS_H_

// gRPC targets, as --backend takes them, and the socket addresses they
// name. Supported: "host:port", "dns:///host:port" (also "dns:host:port"),
// "ipv4:a.b.c.d:port[,a.b.c.d:port...]", "ipv6:[::1]:port[,...]" and
// "unix:/path". A host name resolves to every address it has, and each
// stream goes to the next of them (round-robin), as gRPC's round_robin
// policy does.

#include <sys/socket.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace audiosocket::grpc_client {

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  std::string text;  // for logs and errors: "10.0.0.1:50051"
};

struct Target {
  // Names to resolve, each "host:port"; or, for literal and unix targets,
  // the addresses themselves, and `names` empty.
  std::vector<std::string> names;
  std::vector<Address> addresses;
  // :authority for the streams: the host:port the target named.
  std::string authority;
};

// Parses `target`; an error says what is wrong with it.
absl::StatusOr<Target> ParseTarget(absl::string_view target);

// Resolves "host:port" to its addresses (blocking: call it off the loop).
absl::StatusOr<std::vector<Address>> ResolveName(const std::string& host_port);

}  // namespace audiosocket::grpc_client

#endif  // AUDIOSOCKET_BRIDGE_LIB_GRPC_CLIENT_ADDRESS_H_
