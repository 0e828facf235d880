#ifndef AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_LOOP_PUSH_SERVER_H_
#define AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_LOOP_PUSH_SERVER_H_

// echo-backend's push server on the bridge's own event loop and HTTP/2
// server (lib/event, lib/grpc_server) instead of gRPC C++'s: serves
// CallHandlerService/HandleCall on one loop thread, accepts every call and
// echoes every AudioChunk back as PlayAudio, all streams' replies of a
// round leaving in one write. The push twin of loop_slots.h, for the same
// reason: a load side light enough for one core to carry 1,000 calls.
//
// Threads: Start on any thread; everything else happens on the server's
// loop thread, which runs until the process exits. Counts go to g_stats
// (echo_stats.h).

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace audiosocket::echo_backend {

// Listens on 127.0.0.1:`port` (0: any free port) and serves on a new loop
// thread. Returns the port.
absl::StatusOr<int> StartLoopPushServer(int port, absl::Duration round_window);

// The same on a Unix domain socket at `path` (replacing a stale socket
// there, but no other kind of file): a backend beside the bridge, as a
// pod's sidecar would be.
absl::Status StartLoopPushServerOnUnixSocket(const std::string& path, absl::Duration round_window);

}  // namespace audiosocket::echo_backend

#endif  // AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_LOOP_PUSH_SERVER_H_
