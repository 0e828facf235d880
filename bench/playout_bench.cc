// What a clear of many queued marks costs the call's event loop: the round
// that runs the ClearAudio command, and all the rounds until every mark's
// CLEARED event is built and serialized (what the call does with each
// notice before it goes to the backend). A round is what every other call
// on the same loop waits for.
//
//   bazel run -c opt //bench:playout_bench

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/time_source.h"
#include "server/ops/counters.h"
#include "server/playout/notice_events.h"
#include "server/playout/playout.h"

namespace audiosocket {
namespace {

// Turns each notice into its event and serializes it, as the call does
// before handing it to the backend's stream.
class SerializingDelegate : public Playout::Delegate {
 public:
  void OnPlayoutFrame(absl::Span<const uint8_t>) override {}
  void OnPlayoutNotices(const std::vector<PlayoutNotice>& notices, bool before_frame) override {
    for (const PlayoutNotice& notice : notices) {
      if (before_frame != (notice.type == PlayoutNotice::Type::kDtmfStart)) continue;
      std::optional<bridge::v1::CallEvent> event = NoticeEvent(notice, 0);
      if (event.has_value()) {
        event->SerializeToString(&wire_);
        benchmark::DoNotOptimize(wire_);
      }
      ++events;
    }
  }
  size_t events = 0;

 private:
  std::string wire_;
};

struct Fixture {
  explicit Fixture(int marks) {
    playout = std::make_unique<Playout>(&loop, Playout::Options{}, &counters, &delegate, owner);
    playout->Restart(8000);
    for (int i = 0; i < marks; ++i) {
      (void)playout->queue().EnqueueMark(absl::StrCat("sentence-", i));
    }
  }
  event::SimulatedTimeSource time;
  event::EpollDispatcher loop{&time};
  BridgeCounters counters;
  SerializingDelegate delegate;
  std::shared_ptr<int> owner = std::make_shared<int>(0);
  std::unique_ptr<Playout> playout;
};

// Times the clear of state.range(0) marks: the round that runs the command
// (the clear itself and the first slice), or with `all_rounds` every round
// until each mark's event is out.
void ClearMarks(benchmark::State& state, bool all_rounds) {
  const size_t marks = static_cast<size_t>(state.range(0));
  size_t rounds = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto f = std::make_unique<Fixture>(static_cast<int>(marks));
    state.ResumeTiming();
    (void)f->playout->queue().Clear("");
    f->playout->FlushNotices();
    ++rounds;
    while (all_rounds && f->delegate.events < marks) {
      f->loop.RunOnce(event::Nanos(0));
      ++rounds;
    }
    state.PauseTiming();
    f.reset();
    state.ResumeTiming();
  }
  state.counters["rounds"] =
      benchmark::Counter(static_cast<double>(rounds), benchmark::Counter::kAvgIterations);
}

void BM_ClearRound(benchmark::State& state) { ClearMarks(state, /*all_rounds=*/false); }
BENCHMARK(BM_ClearRound)->Arg(100)->Arg(1000)->Arg(25000)->Unit(benchmark::kMicrosecond);

void BM_ClearAllRounds(benchmark::State& state) { ClearMarks(state, /*all_rounds=*/true); }
BENCHMARK(BM_ClearAllRounds)->Arg(100)->Arg(1000)->Arg(25000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace audiosocket

BENCHMARK_MAIN();
