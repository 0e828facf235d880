// audiosocket-call: plays Asterisk's part of AudioSocket calls against any
// AudioSocket server, alone or by the thousand, and prints a JSON summary.
// See tools/README.md and README.md ("Tools") for the flags and the summary.

#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "lib/dsp/g711.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/stop_signals.h"
#include "lib/net/net.h"
#include "lib/wire/wire.h"
#include "tools/audiosocket-call/nanos.h"
#include "tools/audiosocket-call/options.h"
#include "tools/audiosocket-call/runner.h"
#include "tools/audiosocket-call/source.h"

ABSL_FLAG(std::string, target, "", "AudioSocket server to call, HOST:PORT (required)");
ABSL_FLAG(std::string, uuid, "", "call UUID (8-4-4-4-12 hex); default: a random v4 UUID per call");
ABSL_FLAG(std::string, dialect, "asterisk",
          "asterisk (stock Asterisk: DTMF as one 0x03 digit) or extended (0x02 DTMF start/stop, "
          "0x03 control)");
ABSL_FLAG(int, rate, 8000,
          "sample rate in Hz: 8000 12000 16000 24000 32000 44100 48000 96000 192000 "
          "(kinds 0x10-0x18)");
ABSL_FLAG(std::string, encoding, "slin",
          "how the audio sent is encoded: slin, or ulaw / alaw as Asterisk sends them with "
          "c(ulaw) / c(alaw) (one byte a sample, labelled 0x10; needs --rate=8000). Audio "
          "received is always read as signed linear at its kind's rate, as Asterisk reads it");
ABSL_FLAG(
    std::string, source, "silence",
    "audio sent: silence, tone:HZ[:DBFS], or wav:FILE (16-bit PCM mono; resampled to --rate)");
ABSL_FLAG(bool, loop, false, "loop the WAV file; without it the call ends when the file does");
ABSL_FLAG(bool, mark_frames, true,
          "put the frame number in the lowest bit of the first 32 samples of each frame, so "
          "echoed frames match for RTT; --nomark_frames sends the source bit-exact");
ABSL_FLAG(bool, stamp_frames, false,
          "put the send time (CLOCK_MONOTONIC ns) in the lowest bit of samples 32..95 of each "
          "frame, for one-way latency measured by a far end on the same host");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10),
          "how long each call sends audio before it ends as --end says (with --end=wait: the "
          "longest wait; 0 = no limit)");
ABSL_FLAG(std::string, end, "hangup",
          "hangup (send 0x00, then close), close (close without a hangup message), or wait (for "
          "the far end to hang up)");
ABSL_FLAG(std::string, dtmf, "", "DTMF digits at times since connect, e.g. 1@500ms,#@2s");
ABSL_FLAG(absl::Duration, dtmf_duration, absl::Milliseconds(100), "length of each DTMF digit");
ABSL_FLAG(std::string, control, "",
          "extended dialect: 0x03 control codes (AST_CONTROL_*) at times, e.g. 4@1s");
ABSL_FLAG(std::string, send_error, "", "0xff error messages with these flags at times, e.g. 1@3s");
ABSL_FLAG(std::string, record, "", "write the audio received to this WAV file (one call only)");
ABSL_FLAG(std::string, summary, "-", "where the JSON summary goes: - (stdout) or a file");
ABSL_FLAG(int, calls, 1, "number of calls");
ABSL_FLAG(double, ramp, 0, "calls started per second (0 = all at once)");
ABSL_FLAG(std::string, arrivals, "even",
          "how starts are spread at the --ramp rate: even (exactly 1/ramp apart) or poisson "
          "(random gaps, so calls' frames fall anywhere in the 20 ms, as independent callers')");
ABSL_FLAG(absl::Duration, tick, absl::ZeroDuration(),
          "round call starts up to this grid so many calls' frames share a wake-up, e.g. 250us");
ABSL_FLAG(std::string, fault, "none",
          "misbehave on purpose: truncated_header, short_payload, oversized_length, garbage, "
          "no_uuid, bad_uuid_length, odd_audio, flood");
ABSL_FLAG(bool, log_messages, true, "log every non-audio message received to stderr (JSON lines)");
ABSL_FLAG(absl::Duration, connect_timeout, absl::Seconds(2), "connect timeout (Asterisk: 2s)");
ABSL_FLAG(absl::Duration, linger, absl::Seconds(1),
          "after a hangup or a fault's close, how long to wait for the far end to close");

namespace {

using namespace audiosocket::call;  // NOLINT: the tool's own namespace

absl::StatusOr<RunConfig> ConfigFromFlags() {
  RunConfig run;
  CallConfig& c = run.call;
  const std::string target = absl::GetFlag(FLAGS_target);
  if (target.empty()) {
    return absl::InvalidArgumentError(
        "--target=HOST:PORT is required, e.g. --target=127.0.0.1:9092");
  }
  absl::StatusOr<audiosocket::net::HostPort> hp = audiosocket::net::ParseHostPort(target);
  if (!hp.ok()) return hp.status();
  absl::StatusOr<audiosocket::net::SocketAddress> address = audiosocket::net::Resolve(*hp);
  if (!address.ok()) return address.status();
  c.target = *address;
  c.uuid = absl::GetFlag(FLAGS_uuid);
  if (!c.uuid.empty()) {
    absl::StatusOr<audiosocket::wire::CallUuid> parsed = audiosocket::wire::CallUuid::Parse(c.uuid);
    if (!parsed.ok())
      return absl::InvalidArgumentError(absl::StrCat("--uuid: ", parsed.status().message()));
  }
  const std::string dialect = absl::GetFlag(FLAGS_dialect);
  if (dialect != "asterisk" && dialect != "extended") {
    return absl::InvalidArgumentError(
        absl::StrCat("--dialect=", dialect, ": use asterisk or extended"));
  }
  c.extended_dialect = dialect == "extended";
  c.rate_hz = absl::GetFlag(FLAGS_rate);
  if (absl::Status s =
          audiosocket::dsp::ParseAudioEncoding(absl::GetFlag(FLAGS_encoding), &c.encoding);
      !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--encoding: ", s.message()));
  }
  absl::StatusOr<SourceSpec> source = ParseSourceSpec(absl::GetFlag(FLAGS_source));
  if (!source.ok()) return source.status();
  c.source = *source;
  c.source.loop = absl::GetFlag(FLAGS_loop);
  c.source.rate_hz = c.rate_hz;
  c.mark_frames = absl::GetFlag(FLAGS_mark_frames);
  c.stamp_frames = absl::GetFlag(FLAGS_stamp_frames);
  c.duration = ToNanos(absl::GetFlag(FLAGS_duration));
  if (!ParseEndMode(absl::GetFlag(FLAGS_end), &c.end)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--end=", absl::GetFlag(FLAGS_end), ": use hangup, close or wait"));
  }
  absl::StatusOr<std::vector<TimedDigit>> dtmf = ParseDtmfSchedule(absl::GetFlag(FLAGS_dtmf));
  if (!dtmf.ok()) return dtmf.status();
  c.dtmf = *dtmf;
  c.dtmf_duration = ToNanos(absl::GetFlag(FLAGS_dtmf_duration));
  absl::StatusOr<std::vector<TimedByte>> controls =
      ParseByteSchedule(absl::GetFlag(FLAGS_control), "control");
  if (!controls.ok()) return controls.status();
  c.controls = *controls;
  absl::StatusOr<std::vector<TimedByte>> errors =
      ParseByteSchedule(absl::GetFlag(FLAGS_send_error), "send_error");
  if (!errors.ok()) return errors.status();
  c.errors = *errors;
  if (!ParseFault(absl::GetFlag(FLAGS_fault), &c.fault)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--fault=", absl::GetFlag(FLAGS_fault), " is not one of: ", FaultNames()));
  }
  c.record_path = absl::GetFlag(FLAGS_record);
  c.log_messages = absl::GetFlag(FLAGS_log_messages);
  c.connect_timeout = ToNanos(absl::GetFlag(FLAGS_connect_timeout));
  c.linger = ToNanos(absl::GetFlag(FLAGS_linger));
  c.tick = ToNanos(absl::GetFlag(FLAGS_tick));
  run.calls = absl::GetFlag(FLAGS_calls);
  run.ramp = absl::GetFlag(FLAGS_ramp);
  if (!ParseArrivals(absl::GetFlag(FLAGS_arrivals), &run.arrivals)) {
    return absl::InvalidArgumentError(absl::StrCat("--arrivals=", absl::GetFlag(FLAGS_arrivals),
                                                   " is not one of: even, poisson"));
  }
  if (absl::Status s = Validate(run); !s.ok()) return s;
  if (absl::Status s = c.source.Load(); !s.ok()) return s;
  return run;
}

// Ends the run's calls on SIGINT/SIGTERM (a second signal exits at once).
class SignalHandler final : public audiosocket::event::FdHandler {
 public:
  SignalHandler(int fd, Runner* runner) : fd_(fd), runner_(runner) {}
  void OnWritable() override {}
  void OnReadable() override {
    signalfd_siginfo info;
    while (read(fd_, &info, sizeof(info)) == sizeof(info)) {
      if (interrupted_) _exit(1);
      interrupted_ = true;
      runner_->Interrupt();
    }
  }

 private:
  int fd_;
  Runner* runner_;
  bool interrupted_ = false;
};

void RaiseOpenFileLimit() {
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "plays Asterisk's part of AudioSocket calls and prints a JSON summary.\n"
      "  audiosocket-call --target=127.0.0.1:9092 --source=tone:440 --duration=5s\n"
      "  audiosocket-call --target=127.0.0.1:9092 --calls=1000 --ramp=200 --duration=30s");
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<RunConfig> config = ConfigFromFlags();
  if (!config.ok()) {
    std::fprintf(stderr, "audiosocket-call: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  RaiseOpenFileLimit();
  // Timers fire within 1 us instead of the default 50 us slack.
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  const int signal_fd = audiosocket::event::BlockStopSignalsIntoFd();

  audiosocket::event::EpollDispatcher loop;  // real monotonic time
  Runner runner(*config, &loop);
  SignalHandler signals(signal_fd, &runner);
  if (signal_fd >= 0) (void)loop.Watch(signal_fd, &signals, /*writable=*/false);
  runner.Start();
  runner.Run();
  if (signal_fd >= 0) loop.Unwatch(signal_fd);

  const std::string summary = runner.SummaryJson({}) + "\n";
  const std::string where = absl::GetFlag(FLAGS_summary);
  if (where == "-" || where.empty()) {
    std::fwrite(summary.data(), 1, summary.size(), stdout);
    std::fflush(stdout);
  } else {
    std::ofstream out(where, std::ios::trunc);
    out << summary;
    if (!out) {
      std::fprintf(stderr, "audiosocket-call: cannot write the summary to %s\n", where.c_str());
      return 1;
    }
  }
  for (const CallResult& r : runner.Results()) {
    if (!r.ok) return 1;
  }
  return 0;
}
