#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_STREAM_TRACKER_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_STREAM_TRACKER_H_

// gRPC streams that have not reached OnDone: the client streams the bridge
// opened (push mode), or the server streams backends opened (ClaimCall,
// WatchCalls). Shutdown waits on it so the process never exits while a
// backend's last event (CallEnded) is still queued or on its way: a push
// stream reaches OnDone once the backend finished it, after reading
// everything the bridge wrote; a server stream once its Finish was sent.
//
// Threads: any. Streams register when they start and leave in OnDone, as
// their last touch. The tracker outlives every stream it tracks (the
// Bridge owns it and waits for it before it goes).

#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/backend/backend_link.h"

namespace audiosocket {

class StreamTracker {
 public:
  // A stream started; `link` (may be empty) is cancelled by AbortAll.
  // Returns its key.
  uint64_t Add(std::weak_ptr<BackendLink> link);
  // The stream with `key` reached OnDone.
  void Done(uint64_t key);
  // Waits until no stream is open or `deadline` passes; true when none is.
  bool WaitIdle(absl::Time deadline);
  // Cancels every open stream (each still reaches OnDone and leaves).
  void AbortAll();
  size_t open() const;

 private:
  bool NoneOpen() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_.empty(); }

  mutable absl::Mutex mu_;
  uint64_t next_key_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<uint64_t, std::weak_ptr<BackendLink>> open_ ABSL_GUARDED_BY(mu_);
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_STREAM_TRACKER_H_
