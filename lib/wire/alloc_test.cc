// Proves the codec allocation-free in steady state: this binary links the
// allocation counter (tests/support), which replaces the global operator
// new, and counts calls while a warmed-up decoder and encoder
// handle thousands of messages of every kind, fed whole, in frames and in
// odd-sized chunks.

#include <vector>

#include "gtest/gtest.h"
#include "lib/wire/wire.h"
#include "tests/support/allocation_counter.h"

namespace audiosocket::wire {
namespace {

// Encodes one message of every extended-dialect kind plus 320- and 640-byte
// audio into `out`; allocation-free once `out` has the capacity.
void EncodeCall(const std::vector<uint8_t>& pcm, std::vector<uint8_t>* out) {
  static const uint8_t kFlags[1] = {kErrorCallerHangup};
  const auto d = Dialect::kExtended;
  const auto p = Peer::kServer;
  bool ok = Encode(CallUuid{}, d, p, out).ok();
  ok &= Encode(Audio{8000, absl::MakeConstSpan(pcm.data(), 320)}, d, p, out).ok();
  ok &= Encode(Audio{16000, absl::MakeConstSpan(pcm.data(), 640)}, d, p, out).ok();
  ok &= Encode(DtmfEvent{true, '1', 0}, d, p, out).ok();
  ok &= Encode(DtmfEvent{false, '1', 80}, d, p, out).ok();
  ok &= Encode(Control{4}, d, p, out).ok();
  ok &= Encode(Error{absl::MakeConstSpan(kFlags)}, d, p, out).ok();
  ok &= Encode(Hangup{}, d, p, out).ok();
  ASSERT_TRUE(ok);
}

// Feeds `stream` in pieces of `chunk` bytes and drains every message.
size_t DecodeAll(Decoder& decoder, const std::vector<uint8_t>& stream, size_t chunk) {
  size_t messages = 0;
  for (size_t i = 0; i < stream.size(); i += chunk) {
    decoder.Feed(absl::MakeConstSpan(stream.data() + i, std::min(chunk, stream.size() - i)));
    while (true) {
      absl::StatusOr<std::optional<Message>> next = decoder.Next();
      if (!next.ok() || !next->has_value()) break;
      ++messages;
    }
  }
  return messages;
}

TEST(AllocTest, CounterSeesAllocations) {
  const long before = audiosocket::testing::AllocationCount();
  auto* p = new std::vector<int>(10);
  delete p;
  EXPECT_GE(audiosocket::testing::AllocationCount() - before, 2);
}

TEST(AllocTest, EncoderSteadyStateAllocatesNothing) {
  std::vector<uint8_t> pcm(640, 0x11);
  std::vector<uint8_t> out;
  EncodeCall(pcm, &out);  // warm-up: `out` reaches its capacity
  const long before = audiosocket::testing::AllocationCount();
  for (int i = 0; i < 10000; ++i) {
    out.clear();
    EncodeCall(pcm, &out);
  }
  EXPECT_EQ(audiosocket::testing::AllocationCount() - before, 0);
}

TEST(AllocTest, DecoderSteadyStateAllocatesNothing) {
  std::vector<uint8_t> pcm(640, 0x22);
  std::vector<uint8_t> stream;
  for (int i = 0; i < 50; ++i) EncodeCall(pcm, &stream);
  const size_t per_call = 8;
  for (size_t chunk : {stream.size(), size_t{320 + 3}, size_t{640 + 3}, size_t{1}, size_t{97}}) {
    Decoder decoder(DecoderOptions{Dialect::kExtended});
    ASSERT_EQ(DecodeAll(decoder, stream, chunk), 50 * per_call);  // warm-up
    const long before = audiosocket::testing::AllocationCount();
    size_t messages = 0;
    for (int round = 0; round < 20; ++round) messages += DecodeAll(decoder, stream, chunk);
    EXPECT_EQ(audiosocket::testing::AllocationCount() - before, 0) << "chunk " << chunk;
    EXPECT_EQ(messages, 20 * 50 * per_call);
  }
}

TEST(AllocTest, ZeroCopyInputSteadyStateAllocatesNothing) {
  std::vector<uint8_t> pcm(640, 0x33);
  std::vector<uint8_t> stream;
  EncodeCall(pcm, &stream);
  Decoder decoder(DecoderOptions{Dialect::kExtended});
  auto one_round = [&] {
    size_t pos = 0, messages = 0;
    while (pos < stream.size()) {
      absl::Span<uint8_t> room = decoder.PrepareWrite(500);
      const size_t n = std::min(room.size(), std::min<size_t>(500, stream.size() - pos));
      std::copy(stream.begin() + pos, stream.begin() + pos + n, room.begin());
      decoder.Commit(n);
      pos += n;
      while (true) {
        absl::StatusOr<std::optional<Message>> next = decoder.Next();
        if (!next.ok() || !next->has_value()) break;
        ++messages;
      }
    }
    return messages;
  };
  ASSERT_EQ(one_round(), 8u);
  const long before = audiosocket::testing::AllocationCount();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(one_round(), 8u);
  EXPECT_EQ(audiosocket::testing::AllocationCount() - before, 0);
}

}  // namespace
}  // namespace audiosocket::wire
