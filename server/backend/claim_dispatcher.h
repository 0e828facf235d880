#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_CLAIM_DISPATCHER_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_CLAIM_DISPATCHER_H_

// Pull mode: pairs calls waiting for a backend with idle ClaimCall streams
// (worker slots), first come first served; among the slots that match a
// call, one on the call's own loop first.
//
// Threads: any. The dispatcher guards its state with its own mutex and
// never calls out (gRPC, calls) while holding it.

#include <grpcpp/grpcpp.h>

#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/event/dispatcher.h"
#include "server/backend/backend_link.h"

namespace audiosocket {

// A worker's ClaimCall stream as the dispatcher sees it: an idle slot, then
// the link of the call that took it. Implemented on gRPC C++'s server
// (ClaimSlot) and on the event loops' own (LoopClaimSlot). Thread-safe.
class ClaimSlot : public BackendLink {
 public:
  // What the worker asked for; set before the slot is added.
  virtual const bridge::v1::ClaimCall& claim() const = 0;
  // The call took this slot: commands now go to `observer`.
  virtual void Attach(uint64_t link_id, std::weak_ptr<LinkObserver> observer) = 0;
  // Ends a slot no call took (shutdown), after any queued write.
  virtual void EndIdle(grpc::Status status) = 0;
  // The event loop the stream runs on; null when it runs on gRPC's threads.
  virtual event::Dispatcher* loop() const { return nullptr; }
};

// A call waiting for a worker; implemented by Call. Thread-safe.
class WaitingCall {
 public:
  virtual ~WaitingCall() = default;
  virtual const std::string& call_id() const = 0;
  virtual const std::string& listener_name() const = 0;
  // The call's loop: a slot on the same loop is preferred, so the call's
  // frames never cross threads.
  virtual event::Dispatcher* loop() const { return nullptr; }
  // The dispatcher chose `slot` for this call. Asynchronous.
  virtual void OnClaimed(std::shared_ptr<ClaimSlot> slot) = 0;
};

// Streams are counted and limited by BridgeService (--max_pull_streams).
class ClaimDispatcher {
 public:
  // A call starts waiting; bound at once when a slot matches.
  void Offer(std::shared_ptr<WaitingCall> call);
  // The call stops waiting. False when it was already paired (its
  // OnClaimed is on its way).
  bool Withdraw(const WaitingCall* call);
  // A worker's claim: paired with a waiting call, or parked as idle.
  void AddSlot(std::shared_ptr<ClaimSlot> slot);
  // A slot went away while idle (no-op when it was paired).
  void RemoveSlot(const ClaimSlot* slot);
  // A paired call could not take its slot (it ended meanwhile): the slot
  // waits for the next call.
  void ReturnSlot(std::shared_ptr<ClaimSlot> slot);

  size_t idle_slots() const;
  size_t waiting_calls() const;

  // Shutdown: idle slots are ended with `status` now, and any slot added
  // or returned later at once, so no worker keeps the gRPC server's
  // shutdown waiting for a call that will never come.
  void EndIdleSlots(const grpc::Status& status);

 private:
  static bool Matches(const ClaimSlot& slot, const WaitingCall& call);
  // Pairs `slot` with the oldest matching call, or parks it (at the front
  // of the line when `front`).
  void PairOrPark(std::shared_ptr<ClaimSlot> slot, bool front);

  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<ClaimSlot>> slots_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<WaitingCall>> calls_ ABSL_GUARDED_BY(mu_);
  // Set by EndIdleSlots: new slots are ended with this status.
  std::optional<grpc::Status> ended_ ABSL_GUARDED_BY(mu_);
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_CLAIM_DISPATCHER_H_
