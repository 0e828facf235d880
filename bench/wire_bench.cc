// Throughput of the AudioSocket codec: decoding and encoding streams of
// 320-byte (20 ms at 8 kHz) and 640-byte (20 ms at 16 kHz) audio frames.
// Reports messages/s (items) and bytes/s, and the heap allocations per
// iteration counted by a replaced operator new (0 = allocation-free).
//
//   bazel run -c opt //bench:wire_bench

#include <cstdlib>
#include <cstring>
#include <vector>

#include "benchmark/benchmark.h"
#include "lib/wire/wire.h"
#include "tests/support/allocation_counter.h"

namespace audiosocket::wire {
namespace {

constexpr int kFramesPerBatch = 256;

std::vector<uint8_t> AudioStream(size_t frame_bytes, int frames) {
  std::vector<uint8_t> pcm(frame_bytes);
  for (size_t i = 0; i < pcm.size(); ++i) pcm[i] = static_cast<uint8_t>(i * 31);
  std::vector<uint8_t> out;
  for (int i = 0; i < frames; ++i) {
    if (!Encode(Audio{8000, pcm}, Dialect::kAsterisk, Peer::kAsterisk, &out).ok()) std::abort();
  }
  return out;
}

// Feed (a copy into the decoder's buffer, as from read(2)) and drain Next().
void BM_Decode(benchmark::State& state) {
  const size_t frame_bytes = static_cast<size_t>(state.range(0));
  const std::vector<uint8_t> stream = AudioStream(frame_bytes, kFramesPerBatch);
  Decoder decoder;
  long allocs = 0;
  size_t payload_bytes = 0;
  for (auto _ : state) {
    const long before = audiosocket::testing::AllocationCount();
    decoder.Feed(stream);
    while (true) {
      absl::StatusOr<std::optional<Message>> next = decoder.Next();
      if (!next.ok() || !next->has_value()) break;
      payload_bytes += std::get<Audio>(**next).payload.size();
      benchmark::DoNotOptimize(std::get<Audio>(**next).payload.data());
    }
    allocs += audiosocket::testing::AllocationCount() - before;
  }
  if (payload_bytes != state.iterations() * kFramesPerBatch * frame_bytes) {
    state.SkipWithError("lost messages");
  }
  state.SetItemsProcessed(state.iterations() * kFramesPerBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(stream.size()));
  // The first iteration grows the buffer once; steady state is 0.
  state.counters["allocs_per_iter"] =
      benchmark::Counter(static_cast<double>(allocs) / state.iterations());
}
BENCHMARK(BM_Decode)->Arg(320)->Arg(640);

// Zero-copy input: the bytes are written straight into PrepareWrite's region
// (here by memcpy standing in for read(2)), one frame at a time.
void BM_DecodeFramePerRead(benchmark::State& state) {
  const size_t frame_bytes = static_cast<size_t>(state.range(0));
  const std::vector<uint8_t> stream = AudioStream(frame_bytes, kFramesPerBatch);
  const size_t message_bytes = kHeaderSize + frame_bytes;
  Decoder decoder;
  for (auto _ : state) {
    for (size_t pos = 0; pos < stream.size(); pos += message_bytes) {
      absl::Span<uint8_t> room = decoder.PrepareWrite(message_bytes);
      std::memcpy(room.data(), stream.data() + pos, message_bytes);
      decoder.Commit(message_bytes);
      absl::StatusOr<std::optional<Message>> next = decoder.Next();
      benchmark::DoNotOptimize(next);
    }
  }
  state.SetItemsProcessed(state.iterations() * kFramesPerBatch);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(stream.size()));
}
BENCHMARK(BM_DecodeFramePerRead)->Arg(320)->Arg(640);

void BM_Encode(benchmark::State& state) {
  const size_t frame_bytes = static_cast<size_t>(state.range(0));
  std::vector<uint8_t> pcm(frame_bytes, 0x5a);
  std::vector<uint8_t> out;
  out.reserve(kFramesPerBatch * (kHeaderSize + frame_bytes));
  long allocs = 0;
  for (auto _ : state) {
    const long before = audiosocket::testing::AllocationCount();
    out.clear();
    for (int i = 0; i < kFramesPerBatch; ++i) {
      absl::Status status = Encode(Audio{16000, pcm}, Dialect::kAsterisk, Peer::kAsterisk, &out);
      benchmark::DoNotOptimize(status);
    }
    benchmark::DoNotOptimize(out.data());
    allocs += audiosocket::testing::AllocationCount() - before;
  }
  state.SetItemsProcessed(state.iterations() * kFramesPerBatch);
  state.SetBytesProcessed(state.iterations() * kFramesPerBatch *
                          static_cast<int64_t>(kHeaderSize + frame_bytes));
  state.counters["allocs_per_iter"] =
      benchmark::Counter(static_cast<double>(allocs) / state.iterations());
}
BENCHMARK(BM_Encode)->Arg(320)->Arg(640);

}  // namespace
}  // namespace audiosocket::wire

BENCHMARK_MAIN();
