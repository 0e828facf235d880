#ifndef AUDIOSOCKET_BRIDGE_SERVER_GRPC_CREDENTIALS_H_
#define AUDIOSOCKET_BRIDGE_SERVER_GRPC_CREDENTIALS_H_

// TLS for the bridge's gRPC: the server's own credentials (optionally
// requiring client certificates) and, in push mode, those it dials backends
// with. Errors name the setting at fault ("tls_cert_file: ...").

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>

#include "absl/status/statusor.h"
#include "server/config/config.h"

namespace audiosocket {

// Insecure unless --tls_cert_file/--tls_key_file are set.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    const BridgeConfig& config);
// Insecure unless --backend_tls_ca_file or --backend_tls_cert_file is set.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> BackendCredentialsFor(
    const BridgeConfig& config);

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_GRPC_CREDENTIALS_H_
