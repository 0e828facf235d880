// ClaimDispatcher's pairing with slots no gRPC stream backs (their claim is
// empty: any call). Matching by listener and call id needs a claim read off
// a real stream: pull_connector_test covers it through BridgeService.

#include "server/backend/claim_dispatcher.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "server/backend/claim_stream.h"

namespace audiosocket {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class FakeCall final : public WaitingCall {
 public:
  explicit FakeCall(std::string id, event::Dispatcher* loop = nullptr)
      : id_(std::move(id)), loop_(loop) {}
  event::Dispatcher* loop() const override { return loop_; }
  const std::string& call_id() const override { return id_; }
  const std::string& listener_name() const override { return listener_; }
  void OnClaimed(std::shared_ptr<ClaimSlot> stream) override { claimed.push_back(stream); }

  std::vector<std::shared_ptr<ClaimSlot>> claimed;

 private:
  std::string id_;
  std::string listener_ = "main";
  event::Dispatcher* loop_;
};

// An idle slot on an event loop (the loops' own server); any call.
class LoopSlot final : public ClaimSlot {
 public:
  explicit LoopSlot(event::Dispatcher* loop) : loop_(loop) {}
  const bridge::v1::ClaimCall& claim() const override { return claim_; }
  void Attach(uint64_t, std::weak_ptr<LinkObserver>) override {}
  void EndIdle(grpc::Status) override {}
  event::Dispatcher* loop() const override { return loop_; }
  void SendEvent(bridge::v1::CallEvent&&) override {}
  void ExtendAudioQueue(uint64_t) override {}
  void CloseAfterQueued() override {}
  void Abort() override {}
  uint64_t dropped_audio_samples() const override { return 0; }
  uint64_t dropped_audio_events() const override { return 0; }

 private:
  event::Dispatcher* const loop_;
  bridge::v1::ClaimCall claim_;
};

class ClaimDispatcherTest : public ::testing::Test {
 protected:
  std::shared_ptr<ClaimStream> Slot() {
    return std::make_shared<ClaimStream>(nullptr, &dispatcher_, 50, nullptr, nullptr);
  }
  // A new slot, added: it goes to the call that waited longest, or waits.
  std::shared_ptr<ClaimStream> AddSlot() {
    std::shared_ptr<ClaimStream> slot = Slot();
    dispatcher_.AddSlot(slot);
    return slot;
  }
  // A new call, offered: it takes the slot that waited longest, or waits.
  std::shared_ptr<FakeCall> OfferCall(std::string id) {
    auto call = std::make_shared<FakeCall>(std::move(id));
    dispatcher_.Offer(call);
    return call;
  }
  ClaimDispatcher dispatcher_;
};

TEST_F(ClaimDispatcherTest, ACallTakesAnIdleSlotOnItsOwnLoopFirst) {
  event::EpollDispatcher loop_a;
  event::EpollDispatcher loop_b;
  auto on_a = std::make_shared<LoopSlot>(&loop_a);
  auto on_b = std::make_shared<LoopSlot>(&loop_b);
  auto also_on_a = std::make_shared<LoopSlot>(&loop_a);
  dispatcher_.AddSlot(on_a);
  dispatcher_.AddSlot(on_b);
  dispatcher_.AddSlot(also_on_a);
  auto call_b = std::make_shared<FakeCall>("b", &loop_b);
  dispatcher_.Offer(call_b);
  EXPECT_THAT(call_b->claimed, ElementsAre(on_b));  // not on_a, which waited longer
  // With none left on its loop, the one that waited longest.
  auto other_b = std::make_shared<FakeCall>("b2", &loop_b);
  dispatcher_.Offer(other_b);
  EXPECT_THAT(other_b->claimed, ElementsAre(on_a));
  // A call on no loop takes the longest waiting.
  auto anywhere = OfferCall("c");
  EXPECT_THAT(anywhere->claimed, ElementsAre(also_on_a));
}

TEST_F(ClaimDispatcherTest, ASlotGoesToTheCallThatWaitedLongest) {
  auto a = OfferCall("a");
  auto b = OfferCall("b");
  auto c = OfferCall("c");
  EXPECT_EQ(dispatcher_.waiting_calls(), 3u);
  auto s1 = AddSlot();
  auto s2 = AddSlot();
  EXPECT_THAT(a->claimed, ElementsAre(s1));
  EXPECT_THAT(b->claimed, ElementsAre(s2));
  EXPECT_THAT(c->claimed, IsEmpty());
  EXPECT_EQ(dispatcher_.waiting_calls(), 1u);
  EXPECT_EQ(dispatcher_.idle_slots(), 0u);
}

TEST_F(ClaimDispatcherTest, ACallTakesTheSlotThatWaitedLongest) {
  auto s1 = AddSlot();
  auto s2 = AddSlot();
  auto a = OfferCall("a");
  EXPECT_THAT(a->claimed, ElementsAre(s1));
  EXPECT_EQ(dispatcher_.idle_slots(), 1u);
  EXPECT_EQ(dispatcher_.waiting_calls(), 0u);
}

TEST_F(ClaimDispatcherTest, AReturnedSlotIsFirstInLine) {
  auto s1 = AddSlot();
  auto s2 = AddSlot();
  auto a = OfferCall("a");  // takes s1
  dispatcher_.ReturnSlot(s1);
  EXPECT_EQ(dispatcher_.idle_slots(), 2u);
  auto b = OfferCall("b");
  EXPECT_THAT(b->claimed, ElementsAre(s1));  // ahead of s2, which came later than s1
}

TEST_F(ClaimDispatcherTest, AReturnedSlotGoesToAWaitingCall) {
  auto a = OfferCall("a");
  auto s1 = Slot();
  dispatcher_.ReturnSlot(s1);
  EXPECT_THAT(a->claimed, ElementsAre(s1));
  EXPECT_EQ(dispatcher_.idle_slots(), 0u);
}

TEST_F(ClaimDispatcherTest, WithdrawIsTrueWhileWaitingAndFalseOncePaired) {
  auto a = OfferCall("a");
  auto b = OfferCall("b");
  EXPECT_TRUE(dispatcher_.Withdraw(a.get()));
  EXPECT_FALSE(dispatcher_.Withdraw(a.get()));  // already withdrawn
  auto s1 = AddSlot();
  EXPECT_THAT(a->claimed, IsEmpty());
  EXPECT_THAT(b->claimed, ElementsAre(s1));
  EXPECT_FALSE(dispatcher_.Withdraw(b.get()));  // paired: its OnClaimed is on its way
  EXPECT_EQ(dispatcher_.waiting_calls(), 0u);
}

TEST_F(ClaimDispatcherTest, RemoveSlotForgetsAnIdleSlotOnly) {
  auto s1 = AddSlot();
  auto s2 = AddSlot();
  dispatcher_.RemoveSlot(s1.get());
  EXPECT_EQ(dispatcher_.idle_slots(), 1u);
  dispatcher_.RemoveSlot(s1.get());  // no-op
  EXPECT_EQ(dispatcher_.idle_slots(), 1u);
  auto a = OfferCall("a");
  EXPECT_THAT(a->claimed, ElementsAre(s2));
}

TEST_F(ClaimDispatcherTest, EndIdleSlotsEmptiesTheLineAndKeepsLaterSlotsOut) {
  dispatcher_.AddSlot(Slot());
  dispatcher_.AddSlot(Slot());
  dispatcher_.EndIdleSlots(grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down"));
  EXPECT_EQ(dispatcher_.idle_slots(), 0u);
  dispatcher_.AddSlot(Slot());  // ended at once, not parked
  dispatcher_.ReturnSlot(Slot());
  EXPECT_EQ(dispatcher_.idle_slots(), 0u);
  auto a = OfferCall("a");
  EXPECT_THAT(a->claimed, IsEmpty());
  EXPECT_EQ(dispatcher_.waiting_calls(), 1u);
  // A call still waiting (drain) is served by a slot that arrives now.
  auto s = AddSlot();
  EXPECT_THAT(a->claimed, ElementsAre(s));
}

}  // namespace
}  // namespace audiosocket
