#include "server/backend/event_outbox.h"

#include "gtest/gtest.h"

namespace audiosocket {
namespace {

using bridge::v1::CallEvent;
using bridge::v1::HandleCallRequest;

CallEvent Audio(uint64_t sequence) {
  CallEvent event;
  event.mutable_audio()->set_sequence_number(sequence);
  event.mutable_audio()->set_pcm(std::string(320, '\0'));
  return event;
}

CallEvent Dtmf() {
  CallEvent event;
  event.mutable_dtmf()->set_digit("5");
  return event;
}

TEST(EventOutboxTest, FirstPushStartsAWriteLaterOnesQueue) {
  EventOutbox<HandleCallRequest> outbox(10);
  EXPECT_TRUE(outbox.Push(Audio(0)));
  EXPECT_FALSE(outbox.Push(Audio(1)));
  EXPECT_EQ(outbox.in_flight().event().audio().sequence_number(), 0u);
  EXPECT_TRUE(outbox.WriteDone());
  EXPECT_EQ(outbox.in_flight().event().audio().sequence_number(), 1u);
  EXPECT_FALSE(outbox.WriteDone());
  EXPECT_TRUE(outbox.idle());
}

TEST(EventOutboxTest, DropsOldestQueuedAudioButNeverOtherEventsOrTheWriteInFlight) {
  EventOutbox<HandleCallRequest> outbox(3);
  ASSERT_TRUE(outbox.Push(Audio(0)));  // in flight
  const HandleCallRequest* in_flight = &outbox.in_flight();
  outbox.Push(Dtmf());
  for (uint64_t i = 1; i <= 10; ++i) outbox.Push(Audio(i));
  // The borrowed message did not move while queued audio was dropped.
  EXPECT_EQ(in_flight, &outbox.in_flight());
  EXPECT_EQ(outbox.in_flight().event().audio().sequence_number(), 0u);
  EXPECT_EQ(outbox.dropped_audio_events(), 7u);
  EXPECT_EQ(outbox.dropped_audio_samples(), 7u * 160);
  std::vector<std::string> order;
  while (outbox.WriteDone()) {
    const CallEvent& e = outbox.in_flight().event();
    order.push_back(e.has_dtmf() ? "dtmf" : std::to_string(e.audio().sequence_number()));
  }
  EXPECT_EQ(order, (std::vector<std::string>{"dtmf", "8", "9", "10"}));
}

TEST(EventOutboxTest, ExtendedQueueTakesAWholeBurstThenShrinksAsItIsWritten) {
  EventOutbox<HandleCallRequest> outbox(3);
  outbox.ExtendAudioQueue(10);
  for (uint64_t i = 0; i < 10; ++i) outbox.Push(Audio(i));  // 1 in flight, 9 queued
  EXPECT_EQ(outbox.dropped_audio_events(), 0u);
  // Four writes use up four of the extra ten: the bound is now 3 + 6.
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(outbox.WriteDone());
  for (uint64_t i = 10; i < 14; ++i) outbox.Push(Audio(i));  // 9 queued
  EXPECT_EQ(outbox.dropped_audio_events(), 0u);
  outbox.Push(Audio(14));
  EXPECT_EQ(outbox.dropped_audio_events(), 1u) << "past the extended bound, oldest first";
  std::vector<uint64_t> written = {outbox.in_flight().event().audio().sequence_number()};
  while (outbox.WriteDone())
    written.push_back(outbox.in_flight().event().audio().sequence_number());
  EXPECT_EQ(written, (std::vector<uint64_t>{4, 6, 7, 8, 9, 10, 11, 12, 13, 14}));
  // Every extra slot was used up: back to the plain bound.
  for (uint64_t i = 20; i < 25; ++i) outbox.Push(Audio(i));  // 1 in flight, 4 queued
  EXPECT_EQ(outbox.dropped_audio_events(), 2u);
}

TEST(EventOutboxTest, DiscardEmptiesEverything) {
  EventOutbox<HandleCallRequest> outbox(3);
  outbox.Push(Audio(0));
  outbox.Push(Audio(1));
  outbox.Discard();
  EXPECT_TRUE(outbox.idle());
  EXPECT_EQ(outbox.size(), 0u);
}

TEST(EventOutboxTest, OtherEventsAreBoundedInBytesAndOverflowSaysTheBackendStoppedReading) {
  const uint64_t one = [] {
    HandleCallRequest message;
    *message.mutable_event() = Dtmf();
    return message.ByteSizeLong();
  }();
  EventOutbox<HandleCallRequest> outbox(3, /*max_other_bytes=*/10 * one);
  outbox.Push(Dtmf());  // in flight: gRPC's, not counted
  for (int i = 0; i < 10; ++i) outbox.Push(Dtmf());
  EXPECT_FALSE(outbox.overflowed());
  // Audio has its own bound and never counts here.
  for (int i = 0; i < 10; ++i) outbox.Push(Audio(i));
  EXPECT_FALSE(outbox.overflowed());
  outbox.Push(Dtmf());
  EXPECT_TRUE(outbox.overflowed());
  // Writing drains the count again.
  EXPECT_TRUE(outbox.WriteDone());
  EXPECT_TRUE(outbox.WriteDone());
  EXPECT_FALSE(outbox.overflowed());
}

TEST(EventOutboxTest, DiscardQueuedKeepsTheWriteInFlight) {
  EventOutbox<HandleCallRequest> outbox(3);
  outbox.Push(Audio(0));
  outbox.Push(Dtmf());
  outbox.Push(Audio(1));
  outbox.DiscardQueued();
  EXPECT_FALSE(outbox.idle());
  EXPECT_EQ(outbox.in_flight().event().audio().sequence_number(), 0u);
  EXPECT_EQ(outbox.size(), 1u);
  EXPECT_FALSE(outbox.WriteDone());
}

}  // namespace
}  // namespace audiosocket
