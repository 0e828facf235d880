// echo-backend: a gRPC backend for the bridge benchmark (bench/run.sh) built
// on the gRPC callback API. It echoes every AudioChunk back as PlayAudio.
//
// - push: serves CallHandlerService on --listen, accepts every call;
// - pull: keeps --slots ClaimCall streams open to --bridge as worker slots
//   and opens a new one whenever one ends.
//
// When the caller's frames carry a send stamp (audiosocket-call
// --stamp_frames: CLOCK_MONOTONIC ns in the low bit of samples 32..95), it
// measures the latency from the emulator's send to this process receiving
// the chunk (same host, same clock). On SIGINT/SIGTERM it prints one JSON
// line on stdout: calls, chunks, latency percentiles, audio gaps.
//
// Thread-safety: reactors run on gRPC's callback threads; each reactor's
// write queue is guarded by its own mutex, the statistics are atomics.

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <time.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lib/event/time_source.h"
#include "proto/audiosocket/bridge/v1/bridge.grpc.pb.h"

ABSL_FLAG(std::string, mode, "push", "push (serve CallHandlerService) or pull (ClaimCall slots)");
ABSL_FLAG(std::string, listen, "127.0.0.1:0", "push: address to serve CallHandlerService on");
ABSL_FLAG(std::string, bridge, "", "pull: the bridge's gRPC address, e.g. 127.0.0.1:50051");
ABSL_FLAG(int, slots, 100, "pull: ClaimCall streams kept open");
ABSL_FLAG(int, clear_every_ms, 0,
          "push: also send ClearAudio each time a call's audio passes a multiple of this many ms "
          "(0: never); bench/soak.sh uses it");

namespace {

namespace v1 = audiosocket::bridge::v1;

// The monotonic clock audiosocket-call stamps its frames with.
int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             audiosocket::event::RealTimeSource::Get()->Now().time_since_epoch())
      .count();
}

// The stamp audiosocket-call --stamp_frames writes; 0 when too short.
int64_t ReadStamp(const std::string& pcm) {
  if (pcm.size() < 2 * 96) return 0;
  uint64_t bits = 0;
  for (size_t i = 0; i < 64; ++i) {
    bits |= static_cast<uint64_t>(static_cast<uint8_t>(pcm[2 * (32 + i)]) & 1) << i;
  }
  return static_cast<int64_t>(bits);
}

// Latency histogram: 10 us buckets up to 100 ms, then one overflow bucket.
class LatencyHistogram {
 public:
  static constexpr int64_t kBucketNanos = 10000;
  static constexpr size_t kBuckets = 10000;

  void Add(int64_t nanos) {
    const size_t b = static_cast<size_t>(nanos / kBucketNanos);
    buckets_[b < kBuckets ? b : kBuckets].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    int64_t m = max_.load(std::memory_order_relaxed);
    while (nanos > m && !max_.compare_exchange_weak(m, nanos, std::memory_order_relaxed)) {
    }
  }
  uint64_t count() const { return count_.load(); }
  double max_ms() const { return static_cast<double>(max_.load()) / 1e6; }
  // Upper edge of the bucket holding quantile q, in ms.
  double PercentileMs(double q) const {
    const uint64_t n = count_.load();
    if (n == 0) return 0;
    const uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(n - 1)) + 1;
    uint64_t seen = 0;
    for (size_t b = 0; b <= kBuckets; ++b) {
      seen += buckets_[b].load();
      if (seen >= rank) return static_cast<double>((b + 1) * kBucketNanos) / 1e6;
    }
    return max_ms();
  }

 private:
  std::array<std::atomic<uint64_t>, kBuckets + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> max_{0};
};

struct Stats {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> calls_ended{0};
  std::atomic<uint64_t> chunks{0};
  std::atomic<uint64_t> gap_samples{0};  // offset jumps: audio the bridge dropped
  std::atomic<uint64_t> unstamped{0};
  std::atomic<uint64_t> streams_failed{0};
  LatencyHistogram latency;
};

Stats g_stats;

// Per-call receive logic shared by both modes. Returns the PlayAudio echo.
void OnAudio(const v1::AudioChunk& audio, uint64_t* next_offset, v1::CallCommand* echo) {
  const int64_t now = NowNanos();
  g_stats.chunks.fetch_add(1, std::memory_order_relaxed);
  const int64_t stamp = ReadStamp(audio.pcm());
  if (stamp > 0 && now >= stamp && now - stamp < 10'000'000'000) {
    g_stats.latency.Add(now - stamp);
  } else {
    g_stats.unstamped.fetch_add(1, std::memory_order_relaxed);
  }
  if (audio.offset_samples() > *next_offset) {
    g_stats.gap_samples.fetch_add(audio.offset_samples() - *next_offset, std::memory_order_relaxed);
  }
  *next_offset = audio.offset_samples() + audio.pcm().size() / 2;
  echo->mutable_play()->set_pcm(audio.pcm());
}

// Push: one reactor per HandleCall stream.
class PushReactor final
    : public grpc::ServerBidiReactor<v1::HandleCallRequest, v1::HandleCallResponse> {
 public:
  PushReactor() { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> lock(mu_);
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    const v1::CallEvent& event = request_.event();
    if (event.has_started()) {
      g_stats.calls.fetch_add(1, std::memory_order_relaxed);
      v1::HandleCallResponse response;
      response.mutable_accept();
      Enqueue(std::move(response));
    } else if (event.has_audio()) {
      v1::HandleCallResponse response;
      const uint64_t before = next_offset_;
      OnAudio(event.audio(), &next_offset_, response.mutable_command());
      Enqueue(std::move(response));
      const uint64_t every = static_cast<uint64_t>(clear_every_ms_) * 8;  // samples at 8 kHz
      if (every > 0 && before / every != next_offset_ / every) {
        v1::HandleCallResponse clear;
        clear.mutable_command()->mutable_clear();
        Enqueue(std::move(clear));
      }
    } else if (event.has_ended()) {
      g_stats.calls_ended.fetch_add(1, std::memory_order_relaxed);
    }
    StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.pop_front();
    writing_ = false;
    if (!ok) {
      queue_.clear();
      write_failed_ = true;
    }
    if (!queue_.empty()) {
      writing_ = true;
      StartWrite(&queue_.front());
      return;
    }
    MaybeFinishLocked();
  }

  void OnDone() override { delete this; }
  void OnCancel() override {}

 private:
  void Enqueue(v1::HandleCallResponse response) {
    std::lock_guard<std::mutex> lock(mu_);
    if (write_failed_ || finished_) return;
    queue_.push_back(std::move(response));
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
  }
  void MaybeFinishLocked() {
    if (reads_done_ && !writing_ && !finished_) {
      finished_ = true;
      Finish(grpc::Status::OK);
    }
  }

  v1::HandleCallRequest request_;
  const int clear_every_ms_ = absl::GetFlag(FLAGS_clear_every_ms);
  uint64_t next_offset_ = 0;  // only touched by OnReadDone, one at a time
  std::mutex mu_;
  std::deque<v1::HandleCallResponse> queue_;  // front is being written
  bool writing_ = false;
  bool reads_done_ = false;
  bool write_failed_ = false;
  bool finished_ = false;
};

class PushService final : public v1::CallHandlerService::CallbackService {
  grpc::ServerBidiReactor<v1::HandleCallRequest, v1::HandleCallResponse>* HandleCall(
      grpc::CallbackServerContext*) override {
    return new PushReactor();
  }
};

std::atomic<int> g_open_slots{0};

// Pull: one reactor per ClaimCall stream; it deletes itself when done.
class SlotReactor final
    : public grpc::ClientBidiReactor<v1::ClaimCallRequest, v1::ClaimCallResponse> {
 public:
  explicit SlotReactor(v1::BridgeService::Stub* stub) {
    g_open_slots.fetch_add(1);
    stub->async()->ClaimCall(&context_, this);
    v1::ClaimCallRequest claim;
    claim.mutable_claim();
    Enqueue(std::move(claim));
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // OnDone follows once the status arrives
    const v1::CallEvent& event = response_.event();
    if (event.has_started()) {
      g_stats.calls.fetch_add(1, std::memory_order_relaxed);
    } else if (event.has_audio()) {
      v1::ClaimCallRequest request;
      OnAudio(event.audio(), &next_offset_, request.mutable_command());
      Enqueue(std::move(request));
    } else if (event.has_ended()) {
      g_stats.calls_ended.fetch_add(1, std::memory_order_relaxed);
    }
    StartRead(&response_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.pop_front();
    if (!ok) {
      queue_.clear();
      write_failed_ = true;
    }
    if (!queue_.empty()) {
      StartWrite(&queue_.front());
    } else {
      writing_ = false;
    }
  }

  void OnDone(const grpc::Status& status) override {
    if (!status.ok()) g_stats.streams_failed.fetch_add(1, std::memory_order_relaxed);
    g_open_slots.fetch_sub(1);
    delete this;
  }

 private:
  void Enqueue(v1::ClaimCallRequest request) {
    std::lock_guard<std::mutex> lock(mu_);
    if (write_failed_) return;
    queue_.push_back(std::move(request));
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
  }

  grpc::ClientContext context_;
  v1::ClaimCallResponse response_;
  uint64_t next_offset_ = 0;
  std::mutex mu_;
  std::deque<v1::ClaimCallRequest> queue_;
  bool writing_ = false;
  bool write_failed_ = false;
};

void PrintStats(const std::string& mode) {
  const LatencyHistogram& h = g_stats.latency;
  std::printf(
      "%s\n",
      absl::StrCat(
          "{\"event\":\"stopped\",\"mode\":\"", mode, "\",\"calls\":", g_stats.calls.load(),
          ",\"calls_ended\":", g_stats.calls_ended.load(), ",\"chunks\":", g_stats.chunks.load(),
          ",\"unstamped\":", g_stats.unstamped.load(), ",\"gap_samples\":",
          g_stats.gap_samples.load(), ",\"streams_failed\":", g_stats.streams_failed.load(),
          ",\"latency_ms\":{\"p50\":", absl::StrFormat("%.3f", h.PercentileMs(0.5)),
          ",\"p99\":", absl::StrFormat("%.3f", h.PercentileMs(0.99)),
          ",\"max\":", absl::StrFormat("%.3f", h.max_ms()), ",\"count\":", h.count(), "}}")
          .c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // threads inherit the mask
  const std::string mode = absl::GetFlag(FLAGS_mode);
  std::atomic<bool> stop{false};
  std::unique_ptr<grpc::Server> server;
  PushService push_service;
  std::thread filler;
  if (mode == "push") {
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&push_service);
    server = builder.BuildAndStart();
    if (server == nullptr || port == 0) {
      std::fprintf(stderr, "{\"event\":\"error\",\"error\":\"cannot listen\"}\n");
      return 1;
    }
    std::fprintf(stderr, "{\"event\":\"listening\",\"port\":%d}\n", port);
  } else if (mode == "pull") {
    const std::string bridge = absl::GetFlag(FLAGS_bridge);
    const int slots = absl::GetFlag(FLAGS_slots);
    if (bridge.empty() || slots < 1) {
      std::fprintf(stderr, "pull mode needs --bridge and --slots >= 1\n");
      return 2;
    }
    filler = std::thread([bridge, slots, &stop] {
      auto channel = grpc::CreateChannel(bridge, grpc::InsecureChannelCredentials());
      auto stub = v1::BridgeService::NewStub(channel);
      // Re-open ended slots; at most `slots` new streams per 5 ms tick.
      while (!stop.load()) {
        for (int i = 0; i < slots && g_open_slots.load() < slots; ++i) new SlotReactor(stub.get());
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      // Give open streams a moment to end; the process exits after that.
      for (int i = 0; i < 100 && g_open_slots.load() > 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    });
    std::fprintf(stderr, "{\"event\":\"started\",\"slots\":%d}\n", slots);
  } else {
    std::fprintf(stderr, "--mode must be push or pull\n");
    return 2;
  }
  int received = 0;
  sigwait(&signals, &received);
  stop.store(true);
  PrintStats(mode);
  if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
  if (filler.joinable()) filler.join();
  std::_Exit(0);  // streams still open in pull mode: do not wait for them
}
