#ifndef AUDIOSOCKET_BRIDGE_SERVER_GRPC_PROXY_STREAM_H_
#define AUDIOSOCKET_BRIDGE_SERVER_GRPC_PROXY_STREAM_H_

// One request on the loops' own gRPC server for a method it does not serve
// itself (ListCalls, WatchCalls, HangupCall, health checks, reflection),
// passed through to gRPC C++'s server over the loop's inner connection: the
// request's metadata and bytes as they come, the response's messages as
// they come, its status at the end. Those methods are not on the per-frame
// path; passing them through keeps one implementation of each.
//
// Both directions are bounded: a client that sends more than
// kMaxBufferedBytes the inner server has not taken, or reads so slowly that
// as much of the response waits for it, ends the stream with
// RESOURCE_EXHAUSTED.
//
// Threads: confined to the loop of both connections. Ownership: shared by
// the two connections, each until its side of the stream ends.

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "lib/grpc_client/connection.h"
#include "lib/grpc_server/server_connection.h"

namespace audiosocket {

class ProxyStream final : public std::enable_shared_from_this<ProxyStream> {
 public:
  static constexpr size_t kMaxBufferedBytes = 8 << 20;

  // Opens the inner stream for `head`; the handler to give the outer
  // connection for `stream_id`, or why the request cannot be passed on.
  static absl::StatusOr<std::shared_ptr<grpc_server::StreamHandler>> Open(
      grpc_server::ServerConnection* outer, int32_t stream_id, const grpc_server::RequestHead& head,
      grpc_client::Connection* inner);

 private:
  class Outer;  // the client's side: grpc_server::StreamHandler
  class Inner;  // the inner server's side: grpc_client::StreamHandler

  ProxyStream(grpc_server::ServerConnection* outer, int32_t stream_id);
  // Ends both sides: the client hears `status` after what is buffered.
  void Fail(const absl::Status& status);

  const std::weak_ptr<grpc_server::ServerConnection> outer_connection_;
  const int32_t outer_id_;
  std::weak_ptr<grpc_client::Connection> inner_connection_;
  int32_t inner_id_ = 0;

  std::string request_;  // from the client, not yet taken by the inner stream
  size_t request_offset_ = 0;
  bool request_ended_ = false;
  std::string response_;  // framed messages, not yet taken by the outer stream
  size_t response_offset_ = 0;
  bool inner_done_ = false;
  absl::Status status_;  // the inner stream's, once inner_done_
  bool outer_done_ = false;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_GRPC_PROXY_STREAM_H_
