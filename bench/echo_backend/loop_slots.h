#ifndef AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_LOOP_SLOTS_H_
#define AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_LOOP_SLOTS_H_

// echo-backend's pull worker on the bridge's own event loop and HTTP/2
// client (lib/event, lib/grpc_client) instead of gRPC C++'s: `slots`
// ClaimCall streams kept open on one loop thread, each echoing every
// AudioChunk back as PlayAudio, all streams' replies of a round leaving in
// one write.
//
// Why it exists: the load side of a benchmark step (audiosocket-call and
// this backend) shares one core, and gRPC C++'s reactors cost about as much
// per frame as the bridge itself. This worker costs what the bridge's own
// gRPC leg does, so one core can carry the load of a step the bridge's
// core is measured at, up to 1,000 calls.
//
// Threads: Start on any thread; everything else happens on the worker's
// loop thread, which runs until the process exits. Counts go to g_stats
// (echo_stats.h).

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace audiosocket::echo_backend {

// Starts the loop thread with `slots` ClaimCall streams open to `bridge`
// (a lib/grpc_client target: "127.0.0.1:50051"), reopening each one that
// ends. `round_window` batches a round's input (EpollDispatcher).
absl::Status StartLoopSlots(const std::string& bridge, int slots, absl::Duration round_window);

}  // namespace audiosocket::echo_backend

#endif  // AUDIOSOCKET_BRIDGE_BENCH_ECHO_BACKEND_LOOP_SLOTS_H_
