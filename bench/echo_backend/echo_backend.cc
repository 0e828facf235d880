// echo-backend: a gRPC backend for the bridge benchmark (bench/bridge/run.sh)
// built on the gRPC callback API.
//
// - push: serves CallHandlerService on --listen, accepts every call;
// - pull: keeps --slots ClaimCall streams open to --bridge as worker slots
//   and opens a new one whenever one ends.
//
// Workloads (--workload):
// - echo: every AudioChunk goes back at once as PlayAudio;
// - voice_agent: caller audio is only consumed; every --prompt_every_ms
//   (first after --first_prompt_ms) the backend sends a prompt of
//   --prompt_ms of audio in --prompt_chunks PlayAudio messages spread over
//   --prompt_burst_ms (faster than real time), then a Mark; prompts 2, 2 +
//   N, 2 + 2N, ... (N = --barge_every) are cut by a ClearAudio
//   --barge_after_ms after their first chunk (barge-in). It measures when
//   each mark resolves against the expected end of play-out (first chunk
//   sent + prompt length) and, for the barged prompts, the ClearResult's
//   played_ms against the time the clear was sent after the first chunk.
//
// When the caller's frames carry a send stamp (audiosocket-call
// --stamp_frames: CLOCK_MONOTONIC ns in the low bit of samples 32..95), it
// measures the latency from the emulator's send to this process receiving
// the chunk (same host, same clock). On SIGINT/SIGTERM it prints one JSON
// line on stdout: calls, chunks, latency percentiles, audio gaps.
//
// Thread-safety: reactors run on gRPC's callback threads; each reactor's
// write queue is guarded by its own mutex, the statistics are atomics. Voice
// agents run on one scheduler thread and on the reactors' read callbacks;
// each agent has its own mutex (taken before its reactor's, never after),
// their statistics one more.

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <queue>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "bench/echo_backend/echo_stats.h"
#include "bench/echo_backend/loop_push_server.h"
#include "bench/echo_backend/loop_slots.h"
#include "proto/audiosocket/bridge/v1/bridge.grpc.pb.h"

ABSL_FLAG(std::string, mode, "push", "push (serve CallHandlerService) or pull (ClaimCall slots)");
ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "push: address to serve CallHandlerService on (host:port, or unix:PATH)");
ABSL_FLAG(std::string, bridge, "", "pull: the bridge's gRPC address, e.g. 127.0.0.1:50051");
ABSL_FLAG(int, slots, 100, "pull: ClaimCall streams kept open");
ABSL_FLAG(std::string, transport, "grpc",
          "grpc (gRPC C++'s callback API) or loop (echo workload only: the bridge's own event "
          "loop and HTTP/2 client or server, one thread; a backend as cheap per frame as the "
          "bridge's gRPC leg)");
ABSL_FLAG(int, clear_every_ms, 0,
          "push: also send ClearAudio each time a call's audio passes a multiple of this many ms "
          "(0: never); bench/soak.sh uses it");
ABSL_FLAG(std::string, workload, "echo",
          "echo (PlayAudio of every chunk) or voice_agent (prompts)");
ABSL_FLAG(int, first_prompt_ms, 1000, "voice_agent: first prompt this long after the call starts");
ABSL_FLAG(int, prompt_every_ms, 3000, "voice_agent: a prompt every this many ms");
ABSL_FLAG(int, prompt_ms, 2000, "voice_agent: audio per prompt, ms");
ABSL_FLAG(int, prompt_burst_ms, 100, "voice_agent: a prompt's chunks are sent over this many ms");
ABSL_FLAG(int, prompt_chunks, 20, "voice_agent: PlayAudio messages per prompt");
ABSL_FLAG(int, barge_every, 4, "voice_agent: every Nth prompt (2, 2+N, ...) is cleared (0: never)");
ABSL_FLAG(int, barge_after_ms, 500, "voice_agent: the clear comes this long after the first chunk");

namespace {

namespace v1 = audiosocket::bridge::v1;

using audiosocket::echo_backend::g_stats;
using audiosocket::echo_backend::LatencyHistogram;
using audiosocket::echo_backend::NowNanos;
using audiosocket::echo_backend::OnAudio;

// ------------------------------------------------------------ voice agent

struct VoiceAgentConfig {
  int64_t first_ns, every_ns, prompt_ns, burst_ns, barge_after_ns;
  int chunks, barge_every;
  static VoiceAgentConfig FromFlags() {
    constexpr int64_t kMs = 1'000'000;
    return {absl::GetFlag(FLAGS_first_prompt_ms) * kMs,
            absl::GetFlag(FLAGS_prompt_every_ms) * kMs,
            absl::GetFlag(FLAGS_prompt_ms) * kMs,
            absl::GetFlag(FLAGS_prompt_burst_ms) * kMs,
            absl::GetFlag(FLAGS_barge_after_ms) * kMs,
            std::max(1, absl::GetFlag(FLAGS_prompt_chunks)),
            absl::GetFlag(FLAGS_barge_every)};
  }
};

// Everything the voice agents measured; one mutex (a few events per call
// per second).
struct VoiceStats {
  std::mutex mu;
  uint64_t prompts = 0, chunks = 0, marks_sent = 0, marks_played = 0, marks_cleared = 0,
           marks_call_ended = 0, marks_unresolved = 0, barged_marks_played = 0,
           unbarged_marks_cleared = 0, clears_sent = 0, clear_results = 0, command_errors = 0;
  std::vector<int64_t> mark_error_ns;          // resolved PLAYED - expected end of play-out
  std::vector<int64_t> clear_latency_ns;       // ClearResult received - ClearAudio sent
  std::vector<int64_t> clear_played_error_ms;  // played_ms - (clear sent - first chunk)
  std::vector<int64_t> clear_played_ms;
};
VoiceStats g_voice;

// One prompt's audio at `rate` Hz: a 350 Hz tone at -20 dBFS, shared by all
// calls at that rate.
std::shared_ptr<const std::string> PromptAudio(int rate, int64_t prompt_ns) {
  static std::mutex mu;
  static std::map<int, std::shared_ptr<const std::string>> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto& audio = cache[rate];
  if (audio == nullptr) {
    const size_t samples =
        static_cast<size_t>(static_cast<int64_t>(rate) * prompt_ns / 1'000'000'000);
    std::string pcm(samples * 2, '\0');
    for (size_t i = 0; i < samples; ++i) {
      const auto v = static_cast<int16_t>(3277 * std::sin(2 * M_PI * 350.0 * i / rate));
      pcm[2 * i] = static_cast<char>(v & 0xff);
      pcm[2 * i + 1] = static_cast<char>((v >> 8) & 0xff);
    }
    audio = std::make_shared<const std::string>(std::move(pcm));
  }
  return audio;
}

// Where a voice agent's commands go: the push or the pull reactor.
class CommandSink {
 public:
  virtual ~CommandSink() = default;
  virtual void SendCommand(v1::CallCommand command) = 0;
};

// One call's voice agent. OnTimer runs on the scheduler thread, OnEvent on
// the reactor's read callback; Detach before the reactor goes away.
class VoiceAgent {
 public:
  VoiceAgent(CommandSink* sink, int rate, int64_t now)
      : cfg_(VoiceAgentConfig::FromFlags()),
        sink_(sink),
        audio_(PromptAudio(rate, cfg_.prompt_ns)),
        next_prompt_(now + cfg_.first_ns) {}

  int64_t first_wake() const { return next_prompt_; }

  // Sends what is due at `now`; returns when to be called next, 0 when
  // detached.
  int64_t OnTimer(int64_t now) {
    std::lock_guard<std::mutex> lock(mu_);
    if (sink_ == nullptr) return 0;
    if (!in_prompt_ && now >= next_prompt_) {
      in_prompt_ = true;
      prompt_start_ = now;
      sent_ = 0;
      ++prompt_;
      barged_ = cfg_.barge_every > 0 && prompt_ % cfg_.barge_every == 2 % cfg_.barge_every;
      if (barged_) {
        clear_at_ = now + cfg_.barge_after_ns;
        clear_pending_ = true;
      }
      std::lock_guard<std::mutex> stats(g_voice.mu);
      ++g_voice.prompts;
    }
    if (in_prompt_) {
      const size_t total = audio_->size() / 2;
      while (sent_ < cfg_.chunks && now >= prompt_start_ + sent_ * cfg_.burst_ns / cfg_.chunks) {
        const size_t from = total * sent_ / cfg_.chunks, to = total * (sent_ + 1) / cfg_.chunks;
        v1::CallCommand play;
        play.mutable_play()->set_pcm(audio_->substr(2 * from, 2 * (to - from)));
        play.mutable_play()->set_response_id(absl::StrCat("r", prompt_));
        sink_->SendCommand(std::move(play));
        ++sent_;
      }
      {
        std::lock_guard<std::mutex> stats(g_voice.mu);
        g_voice.chunks += sent_ - counted_chunks_;
        counted_chunks_ = sent_;
      }
      if (sent_ == cfg_.chunks) {
        const std::string name = absl::StrCat("m", prompt_);
        v1::CallCommand mark;
        mark.mutable_mark()->set_name(name);
        sink_->SendCommand(std::move(mark));
        marks_[name] = {prompt_start_ + cfg_.prompt_ns, barged_};
        in_prompt_ = false;
        counted_chunks_ = 0;
        next_prompt_ = prompt_start_ + cfg_.every_ns;
        std::lock_guard<std::mutex> stats(g_voice.mu);
        ++g_voice.marks_sent;
      }
    }
    if (clear_pending_ && now >= clear_at_) {
      clear_pending_ = false;
      const std::string id = absl::StrCat("c", prompt_);
      v1::CallCommand clear;
      clear.set_command_id(id);
      clear.mutable_clear();
      sink_->SendCommand(std::move(clear));
      clears_[id] = {now, prompt_start_, absl::StrCat("r", prompt_)};
      std::lock_guard<std::mutex> stats(g_voice.mu);
      ++g_voice.clears_sent;
    }
    int64_t next = in_prompt_ ? prompt_start_ + sent_ * cfg_.burst_ns / cfg_.chunks : next_prompt_;
    if (clear_pending_) next = std::min(next, clear_at_);
    return std::max(next, now + 1);
  }

  void OnEvent(const v1::CallEvent& event, int64_t now) {
    std::lock_guard<std::mutex> lock(mu_);
    std::lock_guard<std::mutex> stats(g_voice.mu);
    if (event.has_mark()) {
      auto it = marks_.find(event.mark().name());
      if (it == marks_.end()) return;
      const Pending p = it->second;
      marks_.erase(it);
      switch (event.mark().resolution()) {
        case v1::MARK_RESOLUTION_PLAYED:
          ++g_voice.marks_played;
          if (p.barged) {
            ++g_voice.barged_marks_played;
          } else {
            g_voice.mark_error_ns.push_back(now - p.expected_end);
          }
          break;
        case v1::MARK_RESOLUTION_CLEARED:
          ++g_voice.marks_cleared;
          if (!p.barged) ++g_voice.unbarged_marks_cleared;
          break;
        default:
          ++g_voice.marks_call_ended;
      }
    } else if (event.has_cleared()) {
      auto it = clears_.find(event.cleared().command_id());
      if (it == clears_.end()) return;
      ++g_voice.clear_results;
      g_voice.clear_latency_ns.push_back(now - it->second.sent);
      for (const v1::ResponsePlayout& r : event.cleared().responses()) {
        if (r.response_id() != it->second.response_id) continue;
        g_voice.clear_played_ms.push_back(r.played_ms());
        g_voice.clear_played_error_ms.push_back(static_cast<int64_t>(r.played_ms()) -
                                                (it->second.sent - it->second.prompt_start) /
                                                    1'000'000);
      }
      clears_.erase(it);
    } else if (event.has_result()) {
      if (event.result().code() != v1::RESULT_CODE_OK) ++g_voice.command_errors;
    } else if (event.has_ended()) {
      g_voice.marks_unresolved += marks_.size();
      marks_.clear();
      sink_ = nullptr;  // nothing more to send
    }
  }

  void Detach() {
    std::lock_guard<std::mutex> lock(mu_);
    sink_ = nullptr;
  }

 private:
  struct Pending {
    int64_t expected_end;
    bool barged;
  };
  struct Clear {
    int64_t sent, prompt_start;
    std::string response_id;
  };
  const VoiceAgentConfig cfg_;
  std::mutex mu_;
  CommandSink* sink_;
  const std::shared_ptr<const std::string> audio_;
  int64_t next_prompt_;
  bool in_prompt_ = false, barged_ = false, clear_pending_ = false;
  int64_t prompt_start_ = 0, clear_at_ = 0;
  int prompt_ = 0, sent_ = 0, counted_chunks_ = 0;
  std::map<std::string, Pending> marks_;
  std::map<std::string, Clear> clears_;
};

// Runs every voice agent's timers on one thread.
class Scheduler {
 public:
  void Add(std::shared_ptr<VoiceAgent> agent, int64_t when) {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push({when, std::move(agent)});
    cv_.notify_one();
  }

  void Run(const std::atomic<bool>& stop) {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop.load()) {
      if (queue_.empty()) {
        cv_.wait_for(lock, std::chrono::milliseconds(100));
        continue;
      }
      const int64_t now = NowNanos();
      if (queue_.top().when > now) {
        cv_.wait_for(lock, std::chrono::nanoseconds(queue_.top().when - now));
        continue;
      }
      std::shared_ptr<VoiceAgent> agent = queue_.top().agent;
      queue_.pop();
      lock.unlock();
      const int64_t next = agent->OnTimer(NowNanos());
      lock.lock();
      if (next > 0) queue_.push({next, std::move(agent)});
    }
  }

 private:
  struct Entry {
    int64_t when;
    std::shared_ptr<VoiceAgent> agent;
    bool operator>(const Entry& o) const { return when > o.when; }
  };
  std::mutex mu_;
  std::condition_variable cv_;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue_;
};

Scheduler g_scheduler;

bool VoiceAgentWorkload() {
  static const bool on = absl::GetFlag(FLAGS_workload) == "voice_agent";
  return on;
}

// One call as the backend sees it, whichever reactor carries it: counts the
// call, echoes its audio (with a clear every `clear_every_ms` of it, 0 for
// none) or feeds it to a voice agent, and sends commands through the
// reactor's SendCommand. HandleEvent runs on the reactor's read callback,
// one at a time; DetachAgent from OnDone.
class EchoCall : public CommandSink {
 protected:
  explicit EchoCall(int clear_every_ms) : clear_every_ms_(clear_every_ms) {}

  void HandleEvent(const v1::CallEvent& event) {
    if (!event.has_audio()) g_stats.other_events.fetch_add(1, std::memory_order_relaxed);
    if (event.has_started()) {
      g_stats.calls.fetch_add(1, std::memory_order_relaxed);
      if (VoiceAgentWorkload()) {
        const int rate = static_cast<int>(event.started().backend_sample_rate_hz());
        agent_ = std::make_shared<VoiceAgent>(this, rate > 0 ? rate : 8000, NowNanos());
        g_scheduler.Add(agent_, agent_->first_wake());
      }
    } else if (event.has_audio() && agent_ != nullptr) {
      OnAudio(event.audio(), &next_offset_, nullptr);
    } else if (event.has_audio()) {
      v1::CallCommand echo;
      const uint64_t before = next_offset_;
      OnAudio(event.audio(), &next_offset_, &echo);
      SendCommand(std::move(echo));
      const uint64_t every = static_cast<uint64_t>(clear_every_ms_) * 8;  // samples at 8 kHz
      if (every > 0 && before / every != next_offset_ / every) {
        v1::CallCommand clear;
        clear.mutable_clear();
        SendCommand(std::move(clear));
      }
    } else if (event.has_ended()) {
      g_stats.calls_ended.fetch_add(1, std::memory_order_relaxed);
    }
    if (agent_ != nullptr && !event.has_audio()) agent_->OnEvent(event, NowNanos());
  }

  void DetachAgent() {
    if (agent_ != nullptr) agent_->Detach();
  }

 private:
  const int clear_every_ms_;
  std::shared_ptr<VoiceAgent> agent_;  // voice_agent workload only
  uint64_t next_offset_ = 0;           // only touched by HandleEvent, one at a time
};

// Push: one reactor per HandleCall stream.
class PushReactor final
    : public grpc::ServerBidiReactor<v1::HandleCallRequest, v1::HandleCallResponse>,
      public EchoCall {
 public:
  PushReactor() : EchoCall(absl::GetFlag(FLAGS_clear_every_ms)) { StartRead(&request_); }

  void SendCommand(v1::CallCommand command) override {
    v1::HandleCallResponse response;
    *response.mutable_command() = std::move(command);
    Enqueue(std::move(response));
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::lock_guard<std::mutex> lock(mu_);
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    const v1::CallEvent& event = request_.event();
    if (event.has_started()) {
      v1::HandleCallResponse response;
      response.mutable_accept();
      Enqueue(std::move(response));
    }
    HandleEvent(event);
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

  void OnDone() override {
    DetachAgent();
    delete this;
  }
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
    : public grpc::ClientBidiReactor<v1::ClaimCallRequest, v1::ClaimCallResponse>,
      public EchoCall {
 public:
  void SendCommand(v1::CallCommand command) override {
    v1::ClaimCallRequest request;
    *request.mutable_command() = std::move(command);
    Enqueue(std::move(request));
  }

  explicit SlotReactor(v1::BridgeService::Stub* stub) : EchoCall(/*clear_every_ms=*/0) {
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
    HandleEvent(response_.event());
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
    DetachAgent();
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
  std::mutex mu_;
  std::deque<v1::ClaimCallRequest> queue_;
  bool writing_ = false;
  bool write_failed_ = false;
};

// {"p50":..,"p99":..,"min":..,"max":..,"count":N} of `values` (sorted here)
// divided by `unit`.
std::string Summary(std::vector<int64_t> values, double unit) {
  if (values.empty()) return "null";
  std::sort(values.begin(), values.end());
  auto at = [&](double q) {
    return static_cast<double>(
               values[static_cast<size_t>(q * static_cast<double>(values.size() - 1))]) /
           unit;
  };
  return absl::StrFormat("{\"p50\":%.3f,\"p99\":%.3f,\"min\":%.3f,\"max\":%.3f,\"count\":%d}",
                         at(0.5), at(0.99), at(0), at(1), values.size());
}

std::string VoiceStatsJson() {
  std::lock_guard<std::mutex> lock(g_voice.mu);
  const VoiceStats& v = g_voice;
  return absl::StrCat(
      "{\"prompts\":", v.prompts, ",\"chunks\":", v.chunks, ",\"marks_sent\":", v.marks_sent,
      ",\"marks_played\":", v.marks_played, ",\"marks_cleared\":", v.marks_cleared,
      ",\"marks_call_ended\":", v.marks_call_ended, ",\"marks_unresolved\":", v.marks_unresolved,
      ",\"barged_marks_played\":", v.barged_marks_played,
      ",\"unbarged_marks_cleared\":", v.unbarged_marks_cleared, ",\"clears_sent\":", v.clears_sent,
      ",\"clear_results\":", v.clear_results, ",\"command_errors\":", v.command_errors,
      ",\"mark_error_ms\":", Summary(v.mark_error_ns, 1e6),
      ",\"clear_latency_ms\":", Summary(v.clear_latency_ns, 1e6),
      ",\"clear_played_ms\":", Summary(v.clear_played_ms, 1),
      ",\"clear_played_error_ms\":", Summary(v.clear_played_error_ms, 1), "}");
}

void PrintStats(const std::string& mode) {
  const LatencyHistogram& h = g_stats.latency;
  std::printf(
      "%s\n",
      absl::StrCat(
          "{\"event\":\"stopped\",\"mode\":\"", mode, "\",\"workload\":\"",
          absl::GetFlag(FLAGS_workload), "\",\"calls\":", g_stats.calls.load(),
          ",\"calls_ended\":", g_stats.calls_ended.load(), ",\"chunks\":", g_stats.chunks.load(),
          ",\"unstamped\":", g_stats.unstamped.load(), ",\"gap_samples\":",
          g_stats.gap_samples.load(), ",\"streams_failed\":", g_stats.streams_failed.load(),
          ",\"other_events\":", g_stats.other_events.load(),
          ",\"latency_ms\":{\"p50\":", absl::StrFormat("%.3f", h.PercentileMs(0.5)),
          ",\"p99\":", absl::StrFormat("%.3f", h.PercentileMs(0.99)),
          ",\"max\":", absl::StrFormat("%.3f", h.max_ms()), ",\"count\":", h.count(), "}",
          VoiceAgentWorkload() ? absl::StrCat(",\"voice_agent\":", VoiceStatsJson()) : "", "}")
          .c_str());
  std::fflush(stdout);
}

// Ends the process once threads run (the voice agent's scheduler, the
// filler): they are not joined, as at the normal end.
[[noreturn]] void ExitNow(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
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
  const std::string workload = absl::GetFlag(FLAGS_workload);
  if (workload != "echo" && workload != "voice_agent") {
    std::fprintf(stderr, "--workload must be echo or voice_agent\n");
    return 2;
  }
  const std::string transport = absl::GetFlag(FLAGS_transport);
  if (transport != "grpc" && transport != "loop") {
    std::fprintf(stderr, "--transport must be grpc or loop\n");
    return 2;
  }
  // Checked before any thread starts, so a refusal is a plain exit.
  if (transport == "loop" && VoiceAgentWorkload()) {
    std::fprintf(stderr, "--transport=loop serves the echo workload only\n");
    return 2;
  }
  std::atomic<bool> stop{false};
  std::thread scheduler;
  if (VoiceAgentWorkload()) scheduler = std::thread([&stop] { g_scheduler.Run(stop); });
  std::unique_ptr<grpc::Server> server;
  PushService push_service;
  std::thread filler;
  if (mode == "push" && absl::GetFlag(FLAGS_transport) != "grpc") {
    const std::string listen = absl::GetFlag(FLAGS_listen);
    absl::string_view unix_path = listen;
    absl::StatusOr<int> served;
    if (absl::ConsumePrefix(&unix_path, "unix:")) {
      // A Unix socket has no port: 0 is printed.
      const absl::Status started = audiosocket::echo_backend::StartLoopPushServerOnUnixSocket(
          std::string(unix_path), absl::Microseconds(500));
      served = started.ok() ? absl::StatusOr<int>(0) : absl::StatusOr<int>(started);
    } else {
      const size_t colon = listen.rfind(':');
      int port = -1;
      if (listen.substr(0, colon) != "127.0.0.1" ||
          !absl::SimpleAtoi(listen.substr(colon + 1), &port)) {
        std::fprintf(stderr,
                     "--transport=loop listens on --listen=127.0.0.1:PORT or unix:PATH only\n");
        ExitNow(2);
      }
      served = audiosocket::echo_backend::StartLoopPushServer(port, absl::Microseconds(500));
    }
    if (!served.ok()) {
      std::fprintf(stderr, "{\"event\":\"error\",\"error\":\"cannot listen\"}\n");
      ExitNow(1);
    }
    std::fprintf(stderr, "{\"event\":\"listening\",\"port\":%d}\n", *served);
  } else if (mode == "push") {
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort(absl::GetFlag(FLAGS_listen), grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&push_service);
    server = builder.BuildAndStart();
    if (server == nullptr || port == 0) {
      std::fprintf(stderr, "{\"event\":\"error\",\"error\":\"cannot listen\"}\n");
      ExitNow(1);
    }
    std::fprintf(stderr, "{\"event\":\"listening\",\"port\":%d}\n", port);
  } else if (mode == "pull") {
    const std::string bridge = absl::GetFlag(FLAGS_bridge);
    const int slots = absl::GetFlag(FLAGS_slots);
    if (bridge.empty() || slots < 1) {
      std::fprintf(stderr, "pull mode needs --bridge and --slots >= 1\n");
      ExitNow(2);
    }
    if (absl::GetFlag(FLAGS_transport) == "loop") {
      const absl::Status started =
          audiosocket::echo_backend::StartLoopSlots(bridge, slots, absl::Microseconds(500));
      if (!started.ok()) {
        std::fprintf(stderr, "{\"event\":\"error\",\"error\":\"%s\"}\n",
                     std::string(started.message()).c_str());
        ExitNow(1);
      }
    } else {
      filler = std::thread([bridge, slots, &stop] {
        auto channel = grpc::CreateChannel(bridge, grpc::InsecureChannelCredentials());
        auto stub = v1::BridgeService::NewStub(channel);
        // Re-open ended slots; at most `slots` new streams per 5 ms tick.
        while (!stop.load()) {
          for (int i = 0; i < slots && g_open_slots.load() < slots; ++i)
            new SlotReactor(stub.get());
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        // Give open streams a moment to end; the process exits after that.
        for (int i = 0; i < 100 && g_open_slots.load() > 0; ++i) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      });
    }
    std::fprintf(stderr, "{\"event\":\"started\",\"slots\":%d}\n", slots);
  } else {
    std::fprintf(stderr, "--mode must be push or pull\n");
    ExitNow(2);
  }
  int received = 0;
  sigwait(&signals, &received);
  stop.store(true);
  PrintStats(mode);
  if (server != nullptr) server->Shutdown(std::chrono::system_clock::now());
  if (filler.joinable()) filler.join();
  std::_Exit(0);  // streams still open in pull mode, the scheduler: do not wait for them
}
