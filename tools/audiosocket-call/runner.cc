#include "tools/audiosocket-call/runner.h"

namespace audiosocket::call {

wire::CallUuid RandomUuid(absl::BitGen& gen) {
  wire::CallUuid uuid;
  for (uint8_t& b : uuid.bytes) b = absl::Uniform<uint8_t>(gen);
  uuid.bytes[6] = static_cast<uint8_t>((uuid.bytes[6] & 0x0f) | 0x40);  // version 4
  uuid.bytes[8] = static_cast<uint8_t>((uuid.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return uuid;
}

Runner::Runner(const RunConfig& config, event::EpollDispatcher* dispatcher)
    : config_(config), loop_(dispatcher) {
  wire::CallUuid given;
  const bool fixed = !config.call.uuid.empty();
  if (fixed) {
    absl::StatusOr<wire::CallUuid> parsed = wire::CallUuid::Parse(config.call.uuid);
    if (parsed.ok()) given = *parsed;
  }
  calls_.reserve(static_cast<size_t>(config.calls));
  for (int i = 0; i < config.calls; ++i) {
    WavWriter* recorder = (i == 0 && !config.call.record_path.empty()) ? &recorder_ : nullptr;
    calls_.push_back(std::make_unique<Call>(i, fixed ? given : RandomUuid(bitgen_), &config.call,
                                            dispatcher, &stats_, recorder, [this] {
                                              ++finished_;
                                              if (done()) ended_ = Now();
                                            }));
  }
  start_offsets_ = StartOffsets(config.calls, config.ramp, config.arrivals, bitgen_);
}

Runner::~Runner() {
  if (timer_set_) loop_->CancelTimer(timer_);
}

void Runner::Start() {
  began_ = Now();
  StartDue();
}

void Runner::StartDue() {
  const Nanos now = Now();
  const int total = static_cast<int>(calls_.size());
  while (next_to_start_ < total) {
    const Nanos due = began_ + start_offsets_[static_cast<size_t>(next_to_start_)];
    if (due > now) {
      timer_ = loop_->RunAt(ToMonoTime(due), [this] { OnTimer(); });
      timer_set_ = true;
      return;
    }
    calls_[static_cast<size_t>(next_to_start_++)]->Start();
  }
  started_all_ = true;
  if (done()) ended_ = now;
}

void Runner::OnTimer() {
  timer_set_ = false;
  StartDue();
}

void Runner::Run() {
  while (!done()) loop_->RunOnce(std::chrono::nanoseconds(-1));
}

void Runner::Interrupt() {
  if (timer_set_) loop_->CancelTimer(timer_);
  timer_set_ = false;
  for (auto& call : calls_) {
    if (!call->done()) call->Interrupt();
  }
  // Calls never started end now as not run.
  while (next_to_start_ < static_cast<int>(calls_.size())) {
    calls_[static_cast<size_t>(next_to_start_++)]->Interrupt();
  }
  started_all_ = true;
}

std::vector<CallResult> Runner::Results() const {
  std::vector<CallResult> out;
  out.reserve(calls_.size());
  for (const auto& call : calls_) out.push_back(call->result());
  return out;
}

std::string Runner::SummaryJson(const std::vector<std::string>& run_errors) const {
  const Nanos end = done() ? ended_ : Now();
  return call::SummaryJson(stats_, Results(), end - began_, run_errors);
}

}  // namespace audiosocket::call
