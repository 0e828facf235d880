#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_GRPC_STATUS_CONVERT_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_GRPC_STATUS_CONVERT_H_

// Statuses cross between gRPC C++'s API (reactors, Finish) and the bridge's
// own code, which speaks absl::Status; both directions live here so that the
// code mapping and what happens to the message are the same everywhere.
//
// gRPC and Abseil number their canonical codes identically, so a code maps
// to the one with the same number. Abseil drops the message of an OK status.

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace audiosocket {

absl::Status ToAbsl(const grpc::Status& status);
grpc::Status ToGrpc(const absl::Status& status);

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_GRPC_STATUS_CONVERT_H_
