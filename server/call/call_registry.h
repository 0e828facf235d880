#ifndef AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_REGISTRY_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_REGISTRY_H_

// Every call the bridge holds, by call id: for ListCalls, WatchCalls,
// HangupCall, duplicate-id refusal and the active-call limit.
//
// Thread-safe: calls register from their loops, gRPC handlers read from
// gRPC threads. Watchers are called outside the lock.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "audiosocket/bridge/v1/bridge.pb.h"

namespace audiosocket {

// What the registry can ask of a call. Thread-safe.
class RegisteredCall {
 public:
  virtual ~RegisteredCall() = default;
  // Ends the call with HANGUP_REQUESTED (asynchronously).
  virtual void RequestHangup() = 0;
};

class CallRegistry {
 public:
  // Called with each change and its sequence number. Changes are numbered
  // under the lock, so a watcher can drop those its snapshot already holds.
  using Watcher = std::function<void(const bridge::v1::WatchCallsResponse&, uint64_t sequence)>;

  // ALREADY_EXISTS when a call with this id is active.
  absl::Status Add(const bridge::v1::CallInfo& info, std::weak_ptr<RegisteredCall> call);
  void SetState(const std::string& call_id, bridge::v1::CallState state,
                uint32_t call_sample_rate_hz);
  void Remove(const std::string& call_id, bridge::v1::CallEndReason reason,
              const std::string& detail);

  std::vector<bridge::v1::CallInfo> List(const std::string& listener) const;
  // NOT_FOUND when no such call.
  absl::Status Hangup(const std::string& call_id);
  size_t size() const;

  // Adds a watcher and returns its id plus the calls that exist now; changes
  // numbered up to *snapshot_sequence are already in `existing`.
  uint64_t AddWatcher(Watcher watcher, std::vector<bridge::v1::CallInfo>* existing,
                      std::atomic<uint64_t>* snapshot_sequence);
  void RemoveWatcher(uint64_t id);

 private:
  struct Entry {
    bridge::v1::CallInfo info;
    std::weak_ptr<RegisteredCall> call;
  };
  void Notify(const bridge::v1::WatchCallsResponse& change, uint64_t sequence);

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, Entry> calls_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, std::shared_ptr<Watcher>> watchers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_watcher_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t sequence_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_REGISTRY_H_
