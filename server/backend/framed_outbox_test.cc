// FramedOutbox: the bytes it hands HTTP/2 are exactly gRPC's framing of the
// stream's wrapper message around each event, however they are read.

#include "server/backend/framed_outbox.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lib/grpc_client/message_reader.h"
#include "tests/support/allocation_counter.h"

namespace audiosocket {
namespace {

using bridge::v1::CallEvent;
using bridge::v1::ClaimCallResponse;
using bridge::v1::HandleCallRequest;

CallEvent Audio(uint64_t sequence, size_t pcm_bytes) {
  CallEvent event;
  event.mutable_audio()->set_sequence_number(sequence);
  event.mutable_audio()->set_sample_rate_hz(8000);
  event.mutable_audio()->set_pcm(std::string(pcm_bytes, '\x7f'));
  return event;
}

// The events of a call, from empty to a length that needs a 3-byte varint.
std::vector<CallEvent> Events() {
  std::vector<CallEvent> events;
  events.emplace_back();  // an empty event: a zero length
  events.push_back(Audio(1, 0));
  events.push_back(Audio(2, 100));    // a one-byte length
  events.push_back(Audio(3, 320));    // 20 ms at 8 kHz: two bytes
  events.push_back(Audio(4, 40000));  // three bytes
  // Each field alone, none, and values that need the longest varints.
  CallEvent fields;
  fields.mutable_audio();
  events.push_back(fields);
  fields.mutable_audio()->set_offset_samples(1);
  events.push_back(fields);
  fields.mutable_audio()->set_offset_samples(uint64_t{1} << 40);
  fields.mutable_audio()->set_sequence_number(~uint64_t{0});
  fields.mutable_audio()->set_sample_rate_hz(~uint32_t{0});
  events.push_back(fields);
  fields.mutable_audio()->set_pcm(std::string(16384, '\x01'));
  fields.mutable_audio()->set_sample_rate_hz(0);
  events.push_back(fields);
  events.push_back(Audio(5, 2));
  events.back().mutable_audio()->set_offset_samples(127);
  events.back().mutable_audio()->set_sample_rate_hz(192000);
  CallEvent mark;
  mark.mutable_mark()->set_name("greeting");
  events.push_back(mark);
  return events;
}

// What gRPC C++ would write for `events` on a stream of `Message`.
template <typename Message>
std::string Reference(const std::vector<CallEvent>& events) {
  std::string out;
  for (const CallEvent& event : events) {
    Message message;
    *message.mutable_event() = event;
    const std::string body = message.SerializeAsString();
    grpc_client::AppendMessagePrefix(body.size(), &out);
    out += body;
  }
  return out;
}

template <typename Message>
std::string ReadAll(FramedOutbox<Message>& outbox, size_t piece) {
  std::string out;
  std::vector<uint8_t> buffer(piece);
  while (!outbox.idle()) {
    const size_t n = outbox.Read(buffer.data(), buffer.size(), nullptr);
    out.append(reinterpret_cast<const char*>(buffer.data()), n);
  }
  return out;
}

template <typename Message>
void ExpectFramedLikeGrpc() {
  for (size_t piece : {1, 7, 16384}) {
    FramedOutbox<Message> outbox(100);
    for (const CallEvent& event : Events()) outbox.Push(CallEvent(event), event::MonoTime());
    EXPECT_EQ(ReadAll(outbox, piece), Reference<Message>(Events())) << "pieces of " << piece;
  }
}

TEST(FramedOutboxTest, PushStreamBytesAreGrpcFramedHandleCallRequests) {
  ExpectFramedLikeGrpc<HandleCallRequest>();
}

TEST(FramedOutboxTest, PullStreamBytesAreGrpcFramedClaimCallResponses) {
  ExpectFramedLikeGrpc<ClaimCallResponse>();
}

TEST(FramedOutboxTest, TheQueueBoundDropsTheOldestQueuedAudio) {
  FramedOutbox<HandleCallRequest> outbox(2);
  for (uint64_t i = 0; i < 5; ++i) outbox.Push(Audio(i, 320), event::MonoTime());
  // 0 is in flight; of 1..4 the bound keeps the newest two.
  EXPECT_EQ(outbox.events().dropped_audio_events(), 2u);
  EXPECT_EQ(outbox.events().dropped_audio_samples(), 320u);
  std::vector<CallEvent> kept = {Audio(0, 320), Audio(3, 320), Audio(4, 320)};
  EXPECT_EQ(ReadAll(outbox, 100), Reference<HandleCallRequest>(kept));
}

TEST(FramedOutboxTest, AMessageCountsAsWrittenOnlyWithItsLastByte) {
  FramedOutbox<HandleCallRequest> outbox(10);
  EXPECT_TRUE(outbox.Push(Audio(0, 320), event::MonoTime()));  // idle: the body resumes
  EXPECT_FALSE(outbox.Push(Audio(1, 320), event::MonoTime()));
  const size_t first = Reference<HandleCallRequest>({Audio(0, 320)}).size();
  std::vector<uint8_t> buffer(first - 1);
  EXPECT_EQ(outbox.Read(buffer.data(), buffer.size(), nullptr), first - 1);
  EXPECT_EQ(outbox.events().size(), 2u);
  buffer.resize(1);
  EXPECT_EQ(outbox.Read(buffer.data(), 1, nullptr), 1u);
  EXPECT_EQ(outbox.events().size(), 1u);
}

TEST(FramedOutboxTest, AWrittenAudioEventComesBackEmptiedForTheNextFrame) {
  FramedOutbox<HandleCallRequest> outbox(10);
  EXPECT_FALSE(outbox.TakeSpareAudioEvent().has_audio());  // none written yet
  outbox.Push(Audio(7, 320), event::MonoTime());
  // Framed, but not all of it taken: still the writer's.
  std::vector<uint8_t> buffer(10);
  outbox.Read(buffer.data(), buffer.size(), nullptr);
  EXPECT_FALSE(outbox.TakeSpareAudioEvent().has_audio());
  ReadAll(outbox, 100);
  CallEvent spare = outbox.TakeSpareAudioEvent();
  ASSERT_TRUE(spare.has_audio());
  EXPECT_EQ(spare.audio().SerializeAsString(), "");  // every field cleared
  EXPECT_GE(spare.mutable_audio()->mutable_pcm()->capacity(), 320u);
  EXPECT_FALSE(outbox.TakeSpareAudioEvent().has_audio());  // one spare, taken once
  // Other events are not kept.
  CallEvent mark;
  mark.mutable_mark()->set_name("m");
  outbox.Push(std::move(mark), event::MonoTime());
  ReadAll(outbox, 100);
  EXPECT_FALSE(outbox.TakeSpareAudioEvent().has_audio());
}

TEST(FramedOutboxTest, FillingTheSpareEventEachFrameAllocatesNothing) {
  FramedOutbox<HandleCallRequest> outbox(10);
  const std::string pcm(320, '\x11');
  std::vector<uint8_t> buffer(16384);
  auto frame = [&](uint64_t sequence) {
    CallEvent event = outbox.TakeSpareAudioEvent();
    auto* chunk = event.mutable_audio();
    chunk->mutable_pcm()->assign(pcm);
    chunk->set_sample_rate_hz(8000);
    chunk->set_sequence_number(sequence);
    outbox.Push(std::move(event), event::MonoTime());
    return outbox.Read(buffer.data(), buffer.size(), nullptr);
  };
  frame(1);  // the first event and the framing buffer are allocated once
  const long before = testing::AllocationCount();
  size_t bytes = 0;
  for (uint64_t i = 2; i < 102; ++i) bytes += frame(i);
  EXPECT_EQ(testing::AllocationCount() - before, 0);
  // (Sequence numbers below 128: every frame is the same size.)
  EXPECT_EQ(bytes, 100 * Reference<HandleCallRequest>({Audio(2, 320)}).size());
}

}  // namespace
}  // namespace audiosocket
