// The call engine against an in-process fake AudioSocket server on
// 127.0.0.1:0, in simulated time: pacing, DTMF encodings in both dialects,
// faults' exact bytes, recording and what the summary reports.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/net/net.h"
#include "lib/wire/wire.h"
#include "tools/audiosocket-call/runner.h"
#include "tools/audiosocket-call/wav.h"

namespace audiosocket::call {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kUuid[] = "40325ec2-5efd-4bd3-805f-53576e581d13";

std::string UuidMessage() {
  std::vector<uint8_t> out;
  wire::EncodeRaw(0x01, wire::CallUuid::Parse(kUuid)->bytes, &out);
  return std::string(out.begin(), out.end());
}

// Accepts one connection, records every byte until EOF, then closes.
// Thread-safety: the accept/read thread and the test share bytes_ under mu_.
class FakeServer {
 public:
  FakeServer() {
    auto address = net::Resolve({"127.0.0.1", 0});
    listen_fd_ = *net::ListenTcp(*address);
    address_ = *net::LocalAddress(listen_fd_);
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    close(listen_fd_);
  }
  const net::SocketAddress& address() const { return address_; }
  // Bytes to send to the caller right after accepting.
  void SendOnAccept(std::string bytes) {
    absl::MutexLock lock(&mu_);
    greeting_ = std::move(bytes);
  }
  std::string Bytes() {
    absl::MutexLock lock(&mu_);
    return bytes_;
  }
  bool WaitClosed() {
    absl::MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&closed_), absl::Seconds(30));
  }
  // Writes `bytes` to the caller once connected (from the test's thread,
  // while the server's thread reads); false if it never connected.
  bool Send(const std::string& bytes) {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&accepted_), absl::Seconds(30))) return false;
    return write(fd_, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  }

 private:
  void Serve() {
    int fd = -1;
    for (int i = 0; i < 30000 && fd < 0; ++i) {  // the listener is non-blocking
      fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) break;
        absl::SleepFor(absl::Milliseconds(1));
      }
    }
    if (fd < 0) return;
    std::string greeting;
    {
      absl::MutexLock lock(&mu_);
      greeting = greeting_;
      fd_ = fd;
      accepted_ = true;
    }
    if (!greeting.empty()) (void)!write(fd, greeting.data(), greeting.size());
    char buf[65536];
    while (true) {
      const ssize_t n = read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      absl::MutexLock lock(&mu_);
      bytes_.append(buf, static_cast<size_t>(n));
    }
    absl::MutexLock lock(&mu_);
    close(fd);
    fd_ = -1;
    closed_ = true;
  }

  int listen_fd_ = -1;
  net::SocketAddress address_;
  std::thread thread_;
  absl::Mutex mu_;
  std::string bytes_ ABSL_GUARDED_BY(mu_);
  std::string greeting_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  bool accepted_ ABSL_GUARDED_BY(mu_) = false;
  int fd_ ABSL_GUARDED_BY(mu_) = -1;  // the connection, while open
};

// Drives one run in simulated time: the clock moves only when told; socket
// events are polled for real.
class Harness {
 public:
  explicit Harness(FakeServer& server) : server_(&server) {
    config.call.target = server.address();
    config.call.uuid = kUuid;
    config.call.log_messages = false;
    config.call.duration = 200 * kMillisecond;
  }
  void Start() {
    ASSERT_TRUE(Validate(config).ok()) << Validate(config);
    runner_ = std::make_unique<Runner>(config, &loop_);
    runner_->Start();
    // Connecting takes real time; simulated time stays put meanwhile.
    ASSERT_TRUE(PollUntil([&] { return call().connected() || call().done(); }));
  }
  // Polls (without moving the clock) until `done` holds; false after 30 s.
  bool PollUntil(const std::function<bool()>& done) {
    const absl::Time limit = absl::Now() + absl::Seconds(30);
    while (!done()) {
      if (absl::Now() > limit) return false;
      runner_->Poll(kMillisecond);
    }
    return true;
  }
  // Moves the clock to `start + t` in steps, polling after each.
  void AdvanceTo(Nanos t, Nanos step = kMillisecond) {
    const Nanos target = started_at_ + t;
    while (Now() < target) {
      clock.Advance(std::chrono::nanoseconds(std::min(step, target - Now())));
      runner_->Poll(0);
    }
  }
  // Runs to the end of the call.
  void Finish() {
    AdvanceTo(config.call.duration + config.call.linger + kMillisecond);
    ASSERT_TRUE(PollUntil([&] { return runner_->done(); }));
  }
  // Runs to the end of the call and waits for the server to see the
  // connection close; returns every byte the server received.
  std::string FinishAndCollect() {
    Finish();
    EXPECT_TRUE(server_->WaitClosed());
    return server_->Bytes();
  }
  // Starts the call and runs it to its end: every byte the server received.
  std::string Run() {
    Start();
    return FinishAndCollect();
  }
  const Call& call() { return runner_->call(0); }
  Runner& runner() { return *runner_; }

  Nanos Now() const { return ToNanos(clock.Now()); }

  event::SimulatedTimeSource clock{ToMonoTime(kSecond)};
  RunConfig config;

 private:
  FakeServer* server_;
  Nanos started_at_ = Now();
  event::EpollDispatcher loop_{&clock};
  std::unique_ptr<Runner> runner_;
};

// The stream as tokens: "uuid", "audio", "digit:1", "dtmf:start:1:0", ...
std::vector<std::string> Tokens(const std::string& bytes, wire::Dialect dialect) {
  wire::Decoder decoder(wire::DecoderOptions{.dialect = dialect});
  decoder.Feed(absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()));
  std::vector<std::string> out;
  while (true) {
    auto next = decoder.Next();
    if (!next.ok()) {
      out.push_back(std::string(next.status().message()));
      break;
    }
    if (!next->has_value()) break;
    const wire::Message& m = **next;
    if (std::holds_alternative<wire::CallUuid>(m)) out.push_back("uuid");
    if (std::holds_alternative<wire::Audio>(m)) out.push_back("audio");
    if (std::holds_alternative<wire::Hangup>(m)) out.push_back("hangup");
    if (auto* d = std::get_if<wire::DtmfDigit>(&m))
      out.push_back(absl::StrCat("digit:", std::string(1, d->digit)));
    if (auto* e = std::get_if<wire::DtmfEvent>(&m)) {
      out.push_back(absl::StrCat("dtmf:", e->start ? "start:" : "stop:", std::string(1, e->digit),
                                 ":", e->duration_ms));
    }
    if (auto* c = std::get_if<wire::Control>(&m)) out.push_back(absl::StrCat("control:", c->code));
    if (auto* e = std::get_if<wire::Error>(&m)) out.push_back(absl::StrCat("error:", e->flags()));
  }
  return out;
}

std::vector<std::string> Repeat(const std::string& token, int n) {
  return std::vector<std::string>(static_cast<size_t>(n), token);
}
std::vector<std::string> Concat(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// The WAV file a run recorded, as written (no resampling).
absl::StatusOr<WavAudio> ParseRecording(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream file;
  file << in.rdbuf();
  return ParseWav(file.str(), path);
}

TEST(PacingTest, SendsFiftyFramesPerSecondOfClockThenHangsUp) {
  FakeServer server;
  Harness h(server);
  h.config.call.duration = kSecond;
  h.Start();
  h.AdvanceTo(kSecond - 1);
  EXPECT_EQ(h.call().result().frames_sent, 50u);
  const std::string bytes = h.FinishAndCollect();
  EXPECT_EQ(bytes.size(), 19u + 50u * 323u + 3u);
  EXPECT_EQ(Tokens(bytes, wire::Dialect::kAsterisk),
            Concat({{"uuid"}, Repeat("audio", 50), {"hangup"}}));
  EXPECT_EQ(h.call().result().ended, "hangup_sent");
  EXPECT_TRUE(h.call().result().ok);
}

TEST(PacingTest, FrameCountFollowsAbsoluteDeadlinesDespiteLateTicks) {
  FakeServer server;
  Harness h(server);
  h.config.call.duration = 120 * kSecond;
  h.Start();
  // Wake-ups every 7 ms (never on a frame boundary): a drifting pacer would
  // lose or gain frames over a minute; absolute deadlines do not.
  h.AdvanceTo(60 * kSecond, 7 * kMillisecond);
  EXPECT_EQ(h.call().result().frames_sent, 3001u);  // frames at 0, 20 ms, ..., 60 s
  EXPECT_LT(h.runner().stats().send_jitter.max(), 7 * kMillisecond);
}

TEST(PacingTest, SixteenKilohertzFramesAre640Bytes) {
  FakeServer server;
  Harness h(server);
  h.config.call.rate_hz = 16000;
  h.config.call.source.rate_hz = 16000;
  h.config.call.duration = 40 * kMillisecond;
  const std::string b = h.Run();
  ASSERT_GE(b.size(), 19u + 643u);
  EXPECT_EQ(b.substr(19, 3), std::string("\x12\x02\x80", 3));
  EXPECT_EQ(b.size(), 19u + 2 * 643u + 3u);
}

TEST(DtmfTest, AsteriskDialectSendsOneDigitAtTheEndWithVoiceDropped) {
  FakeServer server;
  Harness h(server);
  h.config.call.dtmf = {{'1', 100 * kMillisecond}};
  h.config.call.dtmf_duration = 60 * kMillisecond;
  const std::string b = h.Run();
  // Frames at 0-80 ms, none at 100-140 ms (the digit), 0x03 '1' at 160 ms,
  // then frames at 160 and 180 ms.
  EXPECT_EQ(Tokens(b, wire::Dialect::kAsterisk),
            Concat({{"uuid"}, Repeat("audio", 5), {"digit:1"}, Repeat("audio", 2), {"hangup"}}));
  EXPECT_THAT(b, HasSubstr(std::string("\x03\x00\x01\x31", 4)));
}

TEST(DtmfTest, ExtendedDialectSendsStartAndStopWithDuration) {
  FakeServer server;
  Harness h(server);
  h.config.call.extended_dialect = true;
  h.config.call.dtmf = {{'#', 100 * kMillisecond}};
  h.config.call.dtmf_duration = 60 * kMillisecond;
  const std::string b = h.Run();
  EXPECT_EQ(Tokens(b, wire::Dialect::kExtended), Concat({{"uuid"},
                                                         Repeat("audio", 5),
                                                         {"dtmf:start:#:0"},
                                                         Repeat("audio", 3),
                                                         {"dtmf:stop:#:60"},
                                                         Repeat("audio", 2),
                                                         {"hangup"}}));
  EXPECT_THAT(b, HasSubstr(std::string("\x02\x00\x06\x01\x23\x00\x00\x00\x00", 9)));
  EXPECT_THAT(b, HasSubstr(std::string("\x02\x00\x06\x00\x23\x3c\x00\x00\x00", 9)));
}

TEST(DtmfTest, ExtendedDialectSendsControlAndErrorMessages) {
  FakeServer server;
  Harness h(server);
  h.config.call.extended_dialect = true;
  h.config.call.controls = {{4, 30 * kMillisecond}};
  h.config.call.errors = {{1, 50 * kMillisecond}};
  h.config.call.duration = 60 * kMillisecond;
  const std::string b = h.Run();
  EXPECT_EQ(
      Tokens(b, wire::Dialect::kExtended),
      Concat({{"uuid"}, Repeat("audio", 2), {"control:4"}, {"audio"}, {"error:1"}, {"hangup"}}));
  EXPECT_THAT(b, HasSubstr(std::string("\x03\x00\x01\x04", 4)));
  EXPECT_THAT(b, HasSubstr(std::string("\xff\x00\x01\x01", 4)));
}

TEST(EndTest, CloseModeClosesWithoutHangupMessage) {
  FakeServer server;
  Harness h(server);
  h.config.call.end = EndMode::kClose;
  h.config.call.duration = 40 * kMillisecond;
  EXPECT_EQ(Tokens(h.Run(), wire::Dialect::kAsterisk), Concat({{"uuid"}, Repeat("audio", 2)}));
  EXPECT_EQ(h.call().result().ended, "closed");
  EXPECT_TRUE(h.call().result().ok);
}

struct FaultCase {
  Fault fault;
  std::function<std::string()> expected;  // the whole stream the server saw
};

std::string Frames(int n, int length = 320) {
  std::string out;
  for (int i = 0; i < n; ++i) {
    std::vector<int16_t> silence(160, 0);
    std::vector<uint8_t> payload;
    EncodeFramePayload(silence, i, true, &payload);
    payload.resize(static_cast<size_t>(length));
    std::vector<uint8_t> msg;
    wire::EncodeRaw(0x10, payload, &msg);
    out.append(msg.begin(), msg.end());
  }
  return out;
}

class FaultTest : public ::testing::TestWithParam<FaultCase> {};

TEST_P(FaultTest, PutsExactlyTheseBytesOnTheWire) {
  FakeServer server;
  Harness h(server);
  h.config.call.fault = GetParam().fault;
  h.config.call.duration = 40 * kMillisecond;
  const std::string got = h.Run();
  const std::string want = GetParam().expected();
  EXPECT_EQ(got.size(), want.size());
  EXPECT_TRUE(got == want)
      << "first difference at byte "
      << std::mismatch(got.begin(), got.end(), want.begin(), want.end()).first - got.begin();
  EXPECT_TRUE(h.call().result().ok) << h.call().result().ended;
}

const std::string kHangup("\x00\x00\x00", 3);

INSTANTIATE_TEST_SUITE_P(
    Faults, FaultTest,
    ::testing::Values(
        FaultCase{Fault::kTruncatedHeader,
                  [] { return UuidMessage() + std::string("\x10\x01", 2); }},
        FaultCase{
            Fault::kShortPayload,
            [] { return UuidMessage() + std::string("\x10\x01\x40", 3) + std::string(160, '\0'); }},
        FaultCase{Fault::kOversizedLength,
                  [] {
                    return UuidMessage() + std::string("\x10\xff\xff", 3) +
                           std::string(65535, '\0') + Frames(2) + kHangup;
                  }},
        FaultCase{Fault::kGarbage,
                  [] {
                    std::vector<uint8_t> p =
                        FaultPrologue(Fault::kGarbage, *wire::CallUuid::Parse(kUuid), 8000);
                    return std::string(p.begin(), p.end()) + Frames(2) + kHangup;
                  }},
        FaultCase{Fault::kNoUuid, [] { return std::string(); }},
        FaultCase{Fault::kBadUuidLength,
                  [] {
                    return std::string("\x01\x00\x0f", 3) + UuidMessage().substr(3, 15) +
                           Frames(2) + kHangup;
                  }},
        FaultCase{Fault::kOddAudio, [] { return UuidMessage() + Frames(2, 319) + kHangup; }}),
    [](const auto& info) { return std::string(FaultName(info.param.fault)); });

TEST(FaultTest, GarbageStartsWithAnUndefinedKind) {
  std::vector<uint8_t> p = FaultPrologue(Fault::kGarbage, *wire::CallUuid::Parse(kUuid), 8000);
  ASSERT_EQ(p.size(), 19u + 64u);
  EXPECT_EQ(std::string(p.begin(), p.begin() + 19), UuidMessage());
  EXPECT_EQ(p[19], 0x7e);
}

TEST(FaultTest, FloodSendsFasterThanRealTime) {
  FakeServer server;
  Harness h(server);
  h.config.call.fault = Fault::kFlood;
  h.config.call.duration = 40 * kMillisecond;
  h.Start();
  // The clock has not moved: a paced call would have sent one frame.
  ASSERT_TRUE(h.PollUntil([&] { return h.call().result().frames_sent >= 1000; }));
  h.AdvanceTo(h.config.call.duration);
  // The hangup may wait behind a partly sent frame; let the socket take it.
  ASSERT_TRUE(h.PollUntil([&] { return h.call().write_pending() == 0; }));
  const std::vector<std::string> tokens = Tokens(h.FinishAndCollect(), wire::Dialect::kAsterisk);
  EXPECT_GE(tokens.size(), 1002u);
  EXPECT_EQ(tokens.front(), "uuid");
  EXPECT_EQ(tokens.back(), "hangup");
}

TEST(RecordTest, RecordsReceivedAudioAndListsNonAudioMessages) {
  FakeServer server;
  // Three frames of a ramp, then DTMF, a control and an error (extended).
  std::vector<int16_t> samples(480);
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = static_cast<int16_t>(i * 7 - 1000);
  std::vector<uint8_t> greeting;
  for (int f = 0; f < 3; ++f) {
    std::vector<uint8_t> payload;
    EncodeFramePayload(absl::MakeConstSpan(samples).subspan(static_cast<size_t>(f) * 160, 160), 0,
                       false, &payload);
    ASSERT_TRUE(wire::Encode(wire::Audio{8000, payload}, wire::Dialect::kExtended,
                             wire::Peer::kAsterisk, &greeting)
                    .ok());
  }
  ASSERT_TRUE(wire::Encode(wire::DtmfEvent{true, '7', 0}, wire::Dialect::kExtended,
                           wire::Peer::kAsterisk, &greeting)
                  .ok());
  ASSERT_TRUE(
      wire::Encode(wire::Control{4}, wire::Dialect::kExtended, wire::Peer::kAsterisk, &greeting)
          .ok());
  const uint8_t flags = 2;
  ASSERT_TRUE(wire::Encode(wire::Error{absl::MakeConstSpan(&flags, 1)}, wire::Dialect::kExtended,
                           wire::Peer::kAsterisk, &greeting)
                  .ok());
  server.SendOnAccept(std::string(greeting.begin(), greeting.end()));

  const std::string path = absl::StrCat(::testing::TempDir(), "/record_test.wav");
  {
    Harness h(server);
    h.config.call.extended_dialect = true;
    h.config.call.record_path = path;
    h.Start();
    ASSERT_TRUE(h.PollUntil([&] { return h.runner().stats().errors_received.size() == 1; }));
    h.Finish();
    const CallResult& r = h.call().result();
    EXPECT_EQ(r.frames_received, 3u);
    EXPECT_EQ(r.bytes_received, greeting.size());
    const std::string summary = h.runner().SummaryJson({});
    EXPECT_THAT(summary, HasSubstr("\"frames_received\":3,"));
    EXPECT_THAT(summary, HasSubstr("\"kind\":\"dtmf\",\"state\":\"start\",\"digit\":\"7\""));
    EXPECT_THAT(summary, HasSubstr("\"kind\":\"control\",\"code\":4,\"name\":\"answer\""));
    EXPECT_THAT(summary, HasSubstr("\"kind\":\"error\",\"flags\":2"));
    EXPECT_THAT(summary, HasSubstr("\"recv_jitter_ms\":{"));
    EXPECT_THAT(summary, HasSubstr("\"count\":2}"));  // 3 frames: 2 intervals
  }                                                   // the runner closes the recording
  absl::StatusOr<WavAudio> wav = ParseRecording(path);
  ASSERT_TRUE(wav.ok()) << wav.status();
  EXPECT_EQ(wav->sample_rate_hz, 8000);
  EXPECT_EQ(wav->samples, samples);
}

// Two frames sent 20 ms apart (real time) but read a second apart (simulated
// time, as an emulator too busy to read on time): recv_jitter_ms shows the
// late read, arrival_jitter_ms the kernel's arrival times, i.e. the far
// end's pacing.
TEST(RecordTest, ArrivalJitterUsesTheKernelsReceiveTimesNotTheRead) {
  FakeServer server;
  std::vector<uint8_t> frame;
  ASSERT_TRUE(wire::Encode(wire::Audio{8000, std::vector<uint8_t>(320, 0)},
                           wire::Dialect::kAsterisk, wire::Peer::kAsterisk, &frame)
                  .ok());
  const std::string frame_bytes(frame.begin(), frame.end());
  Harness h(server);
  h.config.call.duration = 5 * kSecond;
  h.Start();
  ASSERT_TRUE(server.Send(frame_bytes));
  ASSERT_TRUE(h.PollUntil([&] { return h.call().result().frames_received == 1; }));
  absl::SleepFor(absl::Milliseconds(20));
  ASSERT_TRUE(server.Send(frame_bytes));
  // Read only "a second" after the first: the second frame waits unread.
  absl::SleepFor(absl::Milliseconds(5));
  h.AdvanceTo(kSecond, kSecond);
  ASSERT_TRUE(h.PollUntil([&] { return h.call().result().frames_received == 2; }));
  const RunStats& stats = h.runner().stats();
  ASSERT_EQ(stats.recv_jitter.count(), 1u);
  EXPECT_GE(stats.recv_jitter.max(), 980 * kMillisecond);
  ASSERT_EQ(stats.arrival_jitter.count(), 1u);
  // 20 ms apart plus however late the sending thread woke: far from a
  // second even on a loaded machine.
  EXPECT_LT(stats.arrival_jitter.max(), 500 * kMillisecond);
  EXPECT_THAT(h.runner().SummaryJson({}), HasSubstr("\"arrival_jitter_ms\":{"));
  h.Finish();
}

// As Asterisk with c(ulaw): G.711 bytes labelled 0x10 out, but every audio
// kind received is read as signed linear at the kind's rate, so μ-law bytes
// from a far end are 80 samples of noise, not 160 samples of audio.
TEST(EncodingTest, UlawSendsG711LabelledAsSlinAndReadsEverythingAsSlin) {
  FakeServer server;
  std::vector<uint8_t> greeting;
  const std::vector<uint8_t> ulaw(160, 0x7e);
  wire::EncodeRaw(0x10, ulaw, &greeting);
  server.SendOnAccept(std::string(greeting.begin(), greeting.end()));
  const std::string path = absl::StrCat(::testing::TempDir(), "/ulaw_record_test.wav");
  {
    Harness h(server);
    h.config.call.encoding = dsp::AudioEncoding::kUlaw;
    h.config.call.record_path = path;
    h.config.call.duration = 40 * kMillisecond;
    h.Start();
    ASSERT_TRUE(h.PollUntil([&] { return h.call().result().frames_received == 1; }));
    h.Finish();
  }
  ASSERT_TRUE(server.WaitClosed());
  const std::string bytes = server.Bytes();
  std::vector<uint8_t> expected, echo;
  EncodeG711FramePayload(dsp::AudioEncoding::kUlaw, std::vector<int16_t>(160, 0), 0, true,
                         &expected, &echo);
  ASSERT_GE(bytes.size(), 19u + 3u + 160u);
  EXPECT_EQ(bytes.substr(19, 3), std::string("\x10\x00\xa0", 3)) << "kind 0x10, 160 bytes";
  EXPECT_EQ(bytes.substr(22, 160), std::string(expected.begin(), expected.end()));
  EXPECT_EQ(echo.size(), 320u) << "an echo comes back as slin";

  absl::StatusOr<WavAudio> wav = ParseRecording(path);
  ASSERT_TRUE(wav.ok()) << wav.status();
  EXPECT_EQ(wav->sample_rate_hz, 8000);
  EXPECT_EQ(wav->samples.size(), 80u) << "160 bytes labelled 0x10 are 80 slin samples";
}

TEST(EncodingTest, G711NeedsEightKilohertzAndNoStamps) {
  RunConfig config;
  config.call.encoding = dsp::AudioEncoding::kAlaw;
  EXPECT_TRUE(Validate(config).ok());
  config.call.rate_hz = 16000;
  EXPECT_THAT(std::string(Validate(config).message()), HasSubstr("--rate=8000"));
  config.call.rate_hz = 8000;
  config.call.stamp_frames = true;
  EXPECT_THAT(std::string(Validate(config).message()), HasSubstr("--stamp_frames"));
}

// A loopback port nobody listens on: bind, read the port, close.
net::SocketAddress RefusingAddress() {
  auto any_port = net::Resolve({"127.0.0.1", 0});
  const int fd = *net::ListenTcp(*any_port);
  const net::SocketAddress address = *net::LocalAddress(fd);
  close(fd);
  return address;
}

TEST(ConnectTest, RefusedConnectionIsAFailedCallNamingTheAddress) {
  const net::SocketAddress address = RefusingAddress();
  event::SimulatedTimeSource clock;
  event::EpollDispatcher loop(&clock);
  RunConfig config;
  config.call.target = address;
  config.call.log_messages = false;
  Runner runner(config, &loop);
  runner.Start();
  const absl::Time limit = absl::Now() + absl::Seconds(30);
  while (!runner.done() && absl::Now() < limit) runner.Poll(kMillisecond);
  ASSERT_TRUE(runner.done());
  const CallResult& r = runner.call(0).result();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.ended, "error");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0], HasSubstr(absl::StrCat("connect to ", address.ToString())));
  EXPECT_THAT(runner.SummaryJson({}), HasSubstr("\"per_call_failures\":[{\"call\":0"));
}

// The start times a runner gives `calls` calls at 500 calls/s, measured on
// its simulated clock. The target refuses them: only the schedule matters.
std::vector<Nanos> RunnerStartTimes(Arrivals arrivals, int calls) {
  const Nanos began = kSecond;
  event::SimulatedTimeSource clock{ToMonoTime(began)};
  event::EpollDispatcher loop(&clock);
  RunConfig config;
  config.call.target = RefusingAddress();
  config.call.log_messages = false;
  config.calls = calls;
  config.ramp = 500;
  config.arrivals = arrivals;
  Runner runner(config, &loop);
  runner.Start();
  const absl::Time limit = absl::Now() + absl::Seconds(30);
  while (!runner.done() && absl::Now() < limit) {
    clock.Advance(std::chrono::microseconds(50));
    runner.Poll(0);
  }
  std::vector<Nanos> starts;
  for (int i = 0; i < calls; ++i) starts.push_back(runner.call(i).started_at() - began);
  return starts;
}

TEST(RunnerTest, StartsCallsOnTheArrivalsSchedule) {
  const std::vector<Nanos> even = RunnerStartTimes(Arrivals::kEven, 40);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(even[static_cast<size_t>(i)], i * 2 * kMillisecond) << i;
  const std::vector<Nanos> poisson = RunnerStartTimes(Arrivals::kPoisson, 40);
  EXPECT_EQ(poisson[0], 0);
  int off_grid = 0;
  for (size_t i = 1; i < poisson.size(); ++i) {
    EXPECT_GE(poisson[i], poisson[i - 1]);
    off_grid += poisson[i] % (2 * kMillisecond) != 0;
  }
  // Random gaps on a 50 us clock: nearly every start is off the 2 ms grid.
  EXPECT_GE(off_grid, 30);
}

TEST(StampTest, SendTimeRoundTripsAndLeavesTheFrameNumberAlone) {
  std::vector<int16_t> tone(160, 1000);
  std::vector<uint8_t> payload;
  EncodeFramePayload(tone, 77, true, &payload);
  const std::vector<uint8_t> marked = payload;
  const Nanos at = 123456789012345;
  StampFramePayload(at, &payload);
  EXPECT_EQ(ReadFrameStamp(payload), at);
  // Samples 0..31 (the frame number) and 96.. are untouched; the others
  // differ from the tone by at most their lowest bit.
  EXPECT_TRUE(std::equal(payload.begin(), payload.begin() + 64, marked.begin()));
  EXPECT_TRUE(std::equal(payload.begin() + 192, payload.end(), marked.begin() + 192));
  for (size_t i = 64; i < 192; ++i) EXPECT_LE(payload[i] ^ marked[i], 1) << i;
  std::vector<uint8_t> short_payload(100, 0);
  StampFramePayload(at, &short_payload);
  EXPECT_EQ(short_payload, std::vector<uint8_t>(100, 0));
}

}  // namespace
}  // namespace audiosocket::call
