#ifndef AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_END_NOTIFIER_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_END_NOTIFIER_H_

// Tells a call's backend that the call ended: first what was still queued
// for playout (each mark resolved CALL_ENDED, each SendDtmf answered
// CALL_ENDED), then the CallEnded event; then closes the stream once those
// are written, and aborts it if the backend has not finished reading it
// within kGracePeriod.
//
// The leftovers are resolved kPerRound at a time: the first slice at once,
// each further one in a later round of the loop, so that the timers and
// sockets of every other call on the loop run between slices. Within its
// bounds a backend can leave some 25,000 marks queued; resolving them in
// one go held the loop for tens of milliseconds, and for hundreds on a
// loaded machine, and every call on it missed its ticks meanwhile.
//
// Threads: the call's loop only. Ownership: keeps itself alive (its posted
// task holds it) until the CallEnded is queued; the call may be gone by
// then.

#include <chrono>
#include <cstddef>
#include <memory>
#include <vector>

#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/event/dispatcher.h"
#include "server/backend/backend_link.h"
#include "server/playout/playout_queue.h"

namespace audiosocket {

class CallEndNotifier : public std::enable_shared_from_this<CallEndNotifier> {
 public:
  // Leftovers resolved per loop round.
  static constexpr size_t kPerRound = 512;
  // How long a backend has to finish the stream after the CallEnded.
  static constexpr std::chrono::seconds kGracePeriod{5};

  // Sends the first slice now; the rest follow a round at a time.
  static void Start(event::Dispatcher* loop, std::shared_ptr<BackendLink> link,
                    PlayoutQueue::Leftovers leftovers, bridge::v1::CallEvent ended);

  CallEndNotifier(event::Dispatcher* loop, std::shared_ptr<BackendLink> link,
                  PlayoutQueue::Leftovers leftovers, bridge::v1::CallEvent ended);

 private:
  void SendSlice();

  event::Dispatcher* const loop_;
  const std::shared_ptr<BackendLink> link_;
  PlayoutQueue::Leftovers leftovers_;
  bridge::v1::CallEvent ended_;
  std::vector<PlayoutNotice> slice_;  // reused: its capacity stays
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CALL_CALL_END_NOTIFIER_H_
