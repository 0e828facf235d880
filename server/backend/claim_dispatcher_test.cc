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
#include "server/backend/claim_stream.h"

namespace audiosocket {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

class FakeCall final : public WaitingCall {
 public:
  explicit FakeCall(std::string id) : id_(std::move(id)) {}
  const std::string& call_id() const override { return id_; }
  const std::string& listener_name() const override { return listener_; }
  void OnClaimed(std::shared_ptr<ClaimStream> stream) override { claimed.push_back(stream); }

  std::vector<std::shared_ptr<ClaimStream>> claimed;

 private:
  std::string id_;
  std::string listener_ = "main";
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
