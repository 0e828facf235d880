#ifndef AUDIOSOCKET_BRIDGE_SERVER_GRPC_BEARER_AUTH_H_
#define AUDIOSOCKET_BRIDGE_SERVER_GRPC_BEARER_AUTH_H_

// The bearer-token check of every RPC the bridge serves ("authorization:
// Bearer <token>", --auth_token_file).
//
// Why a check the service calls first in each handler, rather than gRPC's
// hooks: an AuthMetadataProcessor runs only on TLS server credentials
// (gRPC 1.51 aborts when one is set on insecure credentials), and the token
// must also protect a plaintext port inside a cluster; server interceptors
// in this gRPC release cannot end an RPC with a status of their own. One
// object holds the rule, so every handler applies the same one.
//
// Threads: immutable; called from any gRPC thread.

#include <grpcpp/grpcpp.h>

#include <optional>
#include <string>
#include <string_view>

namespace audiosocket {

class BearerAuth {
 public:
  // Empty `token`: every call is allowed.
  explicit BearerAuth(std::string token) : expected_(token.empty() ? "" : "Bearer " + token) {}

  // OK, or UNAUTHENTICATED saying what is wrong (never echoing the token).
  grpc::Status Check(const grpc::ServerContextBase& context) const;
  // The same for the "authorization" header's value, when there is one
  // (the loops' own server).
  grpc::Status CheckHeader(std::optional<std::string_view> authorization) const;

 private:
  const std::string expected_;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_GRPC_BEARER_AUTH_H_
