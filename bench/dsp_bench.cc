// DSP benchmarks: cost per 20 ms frame of the DTMF detector (its
// budget: 2 µs at 8 kHz, 4 µs at 16 kHz), generator, G.711 and resampler.
// Run: bazel run -c opt //bench:dsp_bench
#include <benchmark/benchmark.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "lib/dsp/dtmf_detector.h"
#include "lib/dsp/dtmf_generator.h"
#include "lib/dsp/g711.h"
#include "lib/dsp/resampler.h"

namespace audiosocket::dsp {
namespace {

// Ten seconds of speech-like input: DTMF digits over noise-ish audio, so the
// detector exercises both the hit and the miss paths.
std::vector<int16_t> TestAudio(int rate) {
  std::vector<int16_t> x(static_cast<size_t>(rate) * 10);
  uint32_t s = 12345;
  for (size_t i = 0; i < x.size(); ++i) {
    s = s * 1664525u + 1013904223u;
    x[i] = static_cast<int16_t>(static_cast<int32_t>(s >> 16) % 2000 - 1000 +
                                3000 * std::sin(2 * std::numbers::pi * 440 * i / rate));
  }
  auto gen = DtmfGenerator::Create(rate);
  (void)gen->Queue("0123456789*#ABCD0123456789*#ABCD0123456789*#ABCD0123456789*#ABCD");
  gen->Mix(absl::MakeSpan(x));
  return x;
}

void BM_DtmfDetectFrame(benchmark::State& state) {
  const int rate = static_cast<int>(state.range(0));
  const size_t frame = static_cast<size_t>(rate / 50);
  const auto audio = TestAudio(rate);
  auto det = DtmfDetector::Create(rate);
  std::vector<DtmfEvent> events;
  events.reserve(16);
  size_t pos = 0;
  for (auto _ : state) {
    det->Process(absl::MakeConstSpan(audio).subspan(pos, frame), &events);
    events.clear();
    pos += frame;
    if (pos + frame > audio.size()) pos = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * frame * 2));
  state.SetLabel("per 20 ms frame");
}
BENCHMARK(BM_DtmfDetectFrame)->Arg(8000)->Arg(16000);

void BM_DtmfGenerateFrame(benchmark::State& state) {
  const int rate = static_cast<int>(state.range(0));
  auto gen = DtmfGenerator::Create(rate);
  std::vector<int16_t> frame(static_cast<size_t>(rate / 50));
  for (auto _ : state) {
    if (gen->Idle()) (void)gen->Queue("0123456789");
    benchmark::DoNotOptimize(gen->Generate(absl::MakeSpan(frame)));
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * frame.size() * 2));
}
BENCHMARK(BM_DtmfGenerateFrame)->Arg(8000)->Arg(48000);

void BM_G711Frame(benchmark::State& state) {
  const bool alaw = state.range(0) != 0;
  const auto audio = TestAudio(8000);
  std::vector<uint8_t> coded(160);
  std::vector<int16_t> decoded(160);
  size_t pos = 0;
  for (auto _ : state) {
    const auto in = absl::MakeConstSpan(audio).subspan(pos, 160);
    if (alaw) {
      LinearToAlaw(in, absl::MakeSpan(coded));
      AlawToLinear(coded, absl::MakeSpan(decoded));
    } else {
      LinearToUlaw(in, absl::MakeSpan(coded));
      UlawToLinear(coded, absl::MakeSpan(decoded));
    }
    benchmark::DoNotOptimize(decoded.data());
    pos = pos + 320 > audio.size() ? 0 : pos + 160;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * 160 * 2));
  state.SetLabel(alaw ? "A-law encode+decode, 20 ms" : "mu-law encode+decode, 20 ms");
}
BENCHMARK(BM_G711Frame)->Arg(0)->Arg(1);

void BM_ResampleFrame(benchmark::State& state) {
  const int in_rate = static_cast<int>(state.range(0));
  const int out_rate = static_cast<int>(state.range(1));
  const auto audio = TestAudio(in_rate);
  auto r = Resampler::Create(in_rate, out_rate);
  const size_t frame = static_cast<size_t>(in_rate / 50);
  std::vector<int16_t> out(r->MaxOutputSamples(frame));
  size_t pos = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        r->Process(absl::MakeConstSpan(audio).subspan(pos, frame), absl::MakeSpan(out)));
    pos = pos + 2 * frame > audio.size() ? 0 : pos + frame;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * frame * 2));
  state.SetLabel("per 20 ms frame, quality 7");
}
BENCHMARK(BM_ResampleFrame)
    ->Args({8000, 16000})
    ->Args({16000, 8000})
    ->Args({8000, 48000})
    ->Args({48000, 16000})
    ->Args({44100, 16000});

}  // namespace
}  // namespace audiosocket::dsp

BENCHMARK_MAIN();
