#ifndef AUDIOSOCKET_BRIDGE_SERVER_BACKEND_TESTING_LOOP_FIXTURES_H_
#define AUDIOSOCKET_BRIDGE_SERVER_BACKEND_TESTING_LOOP_FIXTURES_H_

// Test fixtures for the parts of a call that run on its loop: the loop runs
// on simulated time, so a timer falls due only when the test moves the clock,
// and what a call lends those parts (its counters, itself as their owner,
// itself as its links' observer) is a stand-in that lives as long as the test.
//
// Thread-safety: none; the loop is the test's thread.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/time_source.h"
#include "server/backend/backend_connector.h"
#include "server/backend/testing/link_fakes.h"
#include "server/ops/counters.h"

namespace audiosocket {

class SimulatedLoopTest : public ::testing::Test {
 protected:
  // Moves the clock by `step`, `steps` times, running what falls due after
  // each: timers fire in the rounds and at the times they would in a call.
  void StepClock(event::Nanos step, int64_t steps) {
    for (int64_t i = 0; i < steps; ++i) {
      time_.Advance(step);
      loop_.RunOnce(event::Nanos(0));
    }
  }
  void AdvanceMs(int64_t ms) { StepClock(std::chrono::milliseconds(1), ms); }

  event::SimulatedTimeSource time_;
  event::EpollDispatcher loop_{&time_};
  BridgeCounters counters_;
  std::shared_ptr<int> owner_ = std::make_shared<int>(0);
};

// For a BackendConnector: the Context its call would give it.
class ConnectorTest : public SimulatedLoopTest {
 protected:
  BackendConnector::Context MakeContext(BackendConnector::Host* host, std::string call_id,
                                        std::string listener) {
    BackendConnector::Context context;
    context.loop = &loop_;
    context.host = host;
    context.owner = owner_;
    context.observer = observer_;
    context.call_id = std::move(call_id);
    context.listener = std::move(listener);
    context.counters = &counters_;
    return context;
  }

  std::shared_ptr<NullObserver> observer_ = std::make_shared<NullObserver>();
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_BACKEND_TESTING_LOOP_FIXTURES_H_
