// CallerConnection over a socketpair on an EpollDispatcher in simulated
// time: decoding and delivery, protocol errors, end of stream, the idle and
// partial-message watches, bounded writes and the write stall, and the
// lingering close after a hang-up.

#include "server/audiosocket/caller_connection.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/time_source.h"
#include "lib/wire/wire.h"
#include "server/ops/counters.h"

namespace audiosocket {
namespace {

using std::chrono::milliseconds;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr size_t kFramePayload = 320;  // 20 ms of 8 kHz slin
constexpr size_t kFrameBytes = wire::kHeaderSize + kFramePayload;

// Records every callback, in order. Like the call, it closes the
// connection on the callbacks that end a call (unless told not to).
class Recorder : public CallerConnection::Delegate {
 public:
  struct Received {
    uint8_t kind;
    std::vector<uint8_t> payload;  // audio payload; UUID as 16 bytes; digit as 1
  };

  void OnCallerMessage(const wire::Message& message) override {
    Received r{wire::KindOf(message), {}};
    if (const auto* audio = std::get_if<wire::Audio>(&message)) {
      r.payload.assign(audio->payload.begin(), audio->payload.end());
    } else if (const auto* uuid = std::get_if<wire::CallUuid>(&message)) {
      r.payload.assign(uuid->bytes.begin(), uuid->bytes.end());
    } else if (const auto* digit = std::get_if<wire::DtmfDigit>(&message)) {
      r.payload.push_back(static_cast<uint8_t>(digit->digit));
    }
    messages.push_back(std::move(r));
    calls.push_back("message");
    if (close_on_message) connection->Close(false);
  }
  void OnCallerProtocolError(const absl::Status& status) override {
    protocol_errors.push_back(status);
    calls.push_back("protocol_error");
    if (close_on_end) connection->Close(false);
  }
  void OnCallerClosed(std::string detail) override {
    closed.push_back(std::move(detail));
    calls.push_back("closed");
    if (close_on_end) connection->Close(false);
  }
  void OnCallerIdle(std::string detail) override {
    idle.push_back(std::move(detail));
    calls.push_back("idle");
    if (close_on_end) connection->Close(false);
  }
  void OnCallerWriteFailed(bool stalled, std::string detail) override {
    write_failed.emplace_back(stalled, std::move(detail));
    calls.push_back("write_failed");
    if (close_on_end) connection->Close(false);
  }
  void OnConnectionClosed() override {
    ++connection_closed;
    calls.push_back("connection_closed");
  }

  CallerConnection* connection = nullptr;
  bool close_on_end = true;
  bool close_on_message = false;

  std::vector<Received> messages;
  std::vector<absl::Status> protocol_errors;
  std::vector<std::string> closed;
  std::vector<std::string> idle;
  std::vector<std::pair<bool, std::string>> write_failed;
  int connection_closed = 0;
  std::vector<std::string> calls;
};

// What Asterisk would send.
std::vector<uint8_t> Encoded(const wire::Message& message,
                             wire::Dialect dialect = wire::Dialect::kAsterisk) {
  std::vector<uint8_t> out;
  const absl::Status status = wire::Encode(message, dialect, wire::Peer::kServer, &out);
  EXPECT_TRUE(status.ok()) << status;
  return out;
}

// 20 ms of 8 kHz audio whose every byte is `fill`.
std::vector<uint8_t> AudioFrame(uint8_t fill) {
  const std::vector<uint8_t> payload(kFramePayload, fill);
  return Encoded(wire::Audio{8000, payload});
}

// The extended dialect's DTMF start of '5' (0x02).
std::vector<uint8_t> ExtendedDtmfStart() {
  return Encoded(wire::DtmfEvent{true, '5', 0}, wire::Dialect::kExtended);
}

std::vector<uint8_t> UuidMessage() {
  absl::StatusOr<wire::CallUuid> uuid =
      wire::CallUuid::Parse("0123abcd-4567-89ef-0123-456789abcdef");
  EXPECT_TRUE(uuid.ok());
  return Encoded(*uuid);
}

class CallerConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    connection_fd_ = fds[0];
    peer_ = fds[1];
  }

  void TearDown() override {
    connection_.reset();
    if (peer_ >= 0) ::close(peer_);
  }

  void Start(CallerConnection::Options options = {}) {
    connection_ =
        std::make_unique<CallerConnection>(&loop_, connection_fd_, options, &counters_, &delegate_);
    delegate_.connection = connection_.get();
    ASSERT_TRUE(connection_->Start(owner_).ok());
  }

  // A few rounds of the loop, none waiting.
  void Pump(int rounds = 4) {
    for (int i = 0; i < rounds; ++i) loop_.RunOnce(event::Nanos(0));
  }
  void AdvanceAndPump(event::Nanos by) {
    time_.Advance(by);
    Pump();
  }

  void PeerWrite(const std::vector<uint8_t>& bytes) {
    ASSERT_EQ(::write(peer_, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  void PeerClose() {
    ::close(peer_);
    peer_ = -1;
  }

  // Everything the peer can read now; `eof` tells whether the stream ended.
  std::vector<uint8_t> PeerRead(bool* eof = nullptr) {
    std::vector<uint8_t> out;
    uint8_t buffer[8192];
    if (eof != nullptr) *eof = false;
    while (true) {
      const ssize_t n = ::read(peer_, buffer, sizeof(buffer));
      if (n > 0) {
        out.insert(out.end(), buffer, buffer + n);
        continue;
      }
      if (n == 0 && eof != nullptr) *eof = true;
      break;
    }
    return out;
  }

  // Shrinks the kernel buffers so that a few frames fill them.
  void ShrinkBuffers() {
    const int small = 4096;
    ASSERT_EQ(::setsockopt(connection_fd_, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    ASSERT_EQ(::setsockopt(peer_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
  }

  // Writes droppable frames (each filled with its number) until the kernel
  // takes no more and bytes wait in the connection. Returns the frames
  // written, the last of them (at least in part) pending.
  int FillUntilPending() {
    for (int i = 0; i < 10000; ++i) {
      const std::vector<uint8_t> frame = AudioFrame(static_cast<uint8_t>(i));
      connection_->Write(frame.data(), frame.size(), /*droppable=*/true);
      if (connection_->bytes_written() < static_cast<uint64_t>(i + 1) * kFrameBytes) return i + 1;
    }
    ADD_FAILURE() << "the socket never filled";
    return 0;
  }

  event::SimulatedTimeSource time_;
  event::EpollDispatcher loop_{&time_};
  BridgeCounters counters_;
  Recorder delegate_;
  std::shared_ptr<int> owner_ = std::make_shared<int>(0);
  int connection_fd_ = -1;
  int peer_ = -1;
  std::unique_ptr<CallerConnection> connection_;
};

// ------------------------------------------------------------------ input

TEST_F(CallerConnectionTest, MessagesAreDecodedAndDeliveredInOrder) {
  Start();
  std::vector<uint8_t> bytes = UuidMessage();
  const std::vector<uint8_t> first = AudioFrame(1);
  const std::vector<uint8_t> digit = Encoded(wire::DtmfDigit{'7'});
  const std::vector<uint8_t> second = AudioFrame(2);
  for (const auto* part : {&first, &digit, &second}) {
    bytes.insert(bytes.end(), part->begin(), part->end());
  }
  PeerWrite(bytes);
  Pump();

  ASSERT_EQ(delegate_.messages.size(), 4u);
  EXPECT_EQ(delegate_.messages[0].kind, static_cast<uint8_t>(wire::Kind::kUuid));
  EXPECT_EQ(delegate_.messages[0].payload,
            std::vector<uint8_t>(bytes.begin() + 3, bytes.begin() + 19));
  EXPECT_EQ(delegate_.messages[1].kind, static_cast<uint8_t>(wire::Kind::kAudio8k));
  EXPECT_EQ(delegate_.messages[1].payload, std::vector<uint8_t>(kFramePayload, 1));
  EXPECT_EQ(delegate_.messages[2].kind, static_cast<uint8_t>(wire::Kind::kDigitOrControl));
  EXPECT_EQ(delegate_.messages[2].payload, std::vector<uint8_t>{'7'});
  EXPECT_EQ(delegate_.messages[3].payload, std::vector<uint8_t>(kFramePayload, 2));
  EXPECT_EQ(connection_->bytes_read(), bytes.size());
  EXPECT_EQ(connection_->buffered(), 0u);
  EXPECT_THAT(delegate_.protocol_errors, IsEmpty());
  EXPECT_EQ(delegate_.connection_closed, 0);
}

TEST_F(CallerConnectionTest, AMessageSplitAcrossReadsIsDeliveredWhenComplete) {
  Start();
  const std::vector<uint8_t> frame = AudioFrame(9);
  PeerWrite(std::vector<uint8_t>(frame.begin(), frame.begin() + 2));  // part of the header
  Pump();
  EXPECT_THAT(delegate_.messages, IsEmpty());
  EXPECT_EQ(connection_->buffered(), 2u);
  PeerWrite(std::vector<uint8_t>(frame.begin() + 2, frame.begin() + 100));
  Pump();
  EXPECT_THAT(delegate_.messages, IsEmpty());
  EXPECT_EQ(connection_->buffered(), 100u);
  // The rest, with the first half of the next message.
  std::vector<uint8_t> rest(frame.begin() + 100, frame.end());
  const std::vector<uint8_t> next = AudioFrame(10);
  rest.insert(rest.end(), next.begin(), next.begin() + 50);
  PeerWrite(rest);
  Pump();
  ASSERT_EQ(delegate_.messages.size(), 1u);
  EXPECT_EQ(delegate_.messages[0].payload, std::vector<uint8_t>(kFramePayload, 9));
  EXPECT_EQ(connection_->buffered(), 50u);
  PeerWrite(std::vector<uint8_t>(next.begin() + 50, next.end()));
  Pump();
  ASSERT_EQ(delegate_.messages.size(), 2u);
  EXPECT_EQ(delegate_.messages[1].payload, std::vector<uint8_t>(kFramePayload, 10));
  EXPECT_EQ(connection_->buffered(), 0u);
}

TEST_F(CallerConnectionTest, WholeMessagesLeaveNoBufferInTheConnection) {
  // Reads go to a buffer the loop's thread shares; a connection keeps bytes
  // (and memory) only for a message split across reads.
  Start();
  for (uint8_t i = 0; i < 50; ++i) {
    PeerWrite(AudioFrame(i));
    Pump(1);
  }
  ASSERT_EQ(delegate_.messages.size(), 50u);
  EXPECT_EQ(connection_->decoder_capacity(), 0u);
  const std::vector<uint8_t> frame = AudioFrame(50);
  PeerWrite(std::vector<uint8_t>(frame.begin(), frame.begin() + 10));
  Pump();
  EXPECT_GE(connection_->decoder_capacity(), 10u);
  EXPECT_LE(connection_->decoder_capacity(), frame.size());
}

TEST_F(CallerConnectionTest, AKindTheDialectDoesNotDefineIsAProtocolError) {
  Start();  // asterisk dialect: 0x02 (the extended dialect's DTMF) is undefined
  std::vector<uint8_t> bytes = AudioFrame(1);
  const std::vector<uint8_t> bad = ExtendedDtmfStart();
  bytes.insert(bytes.end(), bad.begin(), bad.end());
  const std::vector<uint8_t> after = AudioFrame(2);
  bytes.insert(bytes.end(), after.begin(), after.end());
  PeerWrite(bytes);
  Pump();
  ASSERT_EQ(delegate_.messages.size(), 1u);  // the audio before it, not after
  ASSERT_EQ(delegate_.protocol_errors.size(), 1u);
  EXPECT_EQ(delegate_.protocol_errors[0].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(delegate_.protocol_errors[0].message()),
              HasSubstr("not defined in the asterisk dialect"));
  EXPECT_THAT(std::string(delegate_.protocol_errors[0].message()),
              HasSubstr(absl::StrCat("offset ", kFrameBytes)));
  EXPECT_THAT(delegate_.calls, ElementsAre("message", "protocol_error", "connection_closed"));
}

TEST_F(CallerConnectionTest, TheExtendedDialectAcceptsWhatTheAsteriskDialectRejects) {
  CallerConnection::Options options;
  options.decoder.dialect = wire::Dialect::kExtended;
  Start(options);
  PeerWrite(ExtendedDtmfStart());
  Pump();
  ASSERT_EQ(delegate_.messages.size(), 1u);
  EXPECT_EQ(delegate_.messages[0].kind, static_cast<uint8_t>(wire::Kind::kDtmfEvent));
  EXPECT_THAT(delegate_.protocol_errors, IsEmpty());
}

TEST_F(CallerConnectionTest, EndOfStreamInsideAMessageIsATruncationError) {
  Start();
  const std::vector<uint8_t> whole = AudioFrame(3);
  std::vector<uint8_t> bytes = whole;
  bytes.insert(bytes.end(), whole.begin(), whole.begin() + 103);  // header + 100 bytes
  PeerWrite(bytes);
  PeerClose();
  Pump();
  ASSERT_EQ(delegate_.messages.size(), 1u);
  ASSERT_EQ(delegate_.protocol_errors.size(), 1u);
  const std::string message(delegate_.protocol_errors[0].message());
  EXPECT_THAT(message, HasSubstr("truncated message"));
  EXPECT_THAT(message, HasSubstr("103 byte(s) into a message"));
  EXPECT_THAT(message, HasSubstr(absl::StrCat("at offset ", kFrameBytes)));
  EXPECT_THAT(delegate_.closed, IsEmpty());  // not a hang-up
  EXPECT_EQ(delegate_.connection_closed, 1);
}

TEST_F(CallerConnectionTest, EndOfStreamAfterWholeMessagesIsTheCallerClosing) {
  Start();
  PeerWrite(AudioFrame(4));
  PeerClose();
  Pump();
  EXPECT_EQ(delegate_.messages.size(), 1u);
  EXPECT_THAT(delegate_.protocol_errors, IsEmpty());
  EXPECT_THAT(delegate_.closed, ElementsAre("Asterisk closed the connection"));
  EXPECT_THAT(delegate_.calls, ElementsAre("message", "closed", "connection_closed"));
  EXPECT_TRUE(connection_->closed());
}

// ------------------------------------------------------------- idleness

TEST_F(CallerConnectionTest, NoCompleteMessageForTheIdleTimeoutIsIdle) {
  CallerConnection::Options options;
  options.idle_timeout = absl::Seconds(1);
  Start(options);
  connection_->StartIdleWatch();
  AdvanceAndPump(milliseconds(900));
  PeerWrite(AudioFrame(1));  // at 0.9 s: activity
  Pump();
  AdvanceAndPump(milliseconds(600));  // 1.5 s: the first timer found activity
  EXPECT_THAT(delegate_.idle, IsEmpty());
  AdvanceAndPump(milliseconds(399));  // 1.899 s
  EXPECT_THAT(delegate_.idle, IsEmpty());
  AdvanceAndPump(milliseconds(1));  // 1.9 s: a second since the message
  ASSERT_EQ(delegate_.idle.size(), 1u);
  EXPECT_THAT(delegate_.idle[0], HasSubstr("no complete AudioSocket message from Asterisk for 1s"));
  EXPECT_EQ(delegate_.connection_closed, 1);
}

TEST_F(CallerConnectionTest, WithoutStartIdleWatchSilenceIsNotIdle) {
  CallerConnection::Options options;
  options.idle_timeout = absl::Seconds(1);
  Start(options);
  AdvanceAndPump(std::chrono::seconds(10));
  EXPECT_THAT(delegate_.calls, IsEmpty());
}

TEST_F(CallerConnectionTest, ATrickleOfBytesIsNotActivity) {
  CallerConnection::Options options;
  options.idle_timeout = absl::Seconds(1);
  Start(options);
  connection_->StartIdleWatch();
  const std::vector<uint8_t> frame = AudioFrame(5);
  // A byte every 100 ms, from 0 to 0.9 s: never a whole message.
  for (int i = 0; i < 10; ++i) {
    if (i > 0) AdvanceAndPump(milliseconds(100));
    EXPECT_THAT(delegate_.idle, IsEmpty()) << "at " << i * 100 << " ms";
    PeerWrite({frame[static_cast<size_t>(i)]});
    Pump();
  }
  EXPECT_EQ(connection_->buffered(), 10u);
  AdvanceAndPump(milliseconds(100));  // 1.0 s
  EXPECT_THAT(delegate_.messages, IsEmpty());
  ASSERT_EQ(delegate_.idle.size(), 1u);
  EXPECT_THAT(delegate_.idle[0], HasSubstr("(10 byte(s) of an incomplete one)"));
}

TEST_F(CallerConnectionTest, AMessageIncompleteForThePartialTimeoutIsIdle) {
  CallerConnection::Options options;  // no idle timeout: only the partial watch
  Start(options);
  connection_->StartIdleWatch();
  const std::vector<uint8_t> frame = AudioFrame(6);
  PeerWrite(std::vector<uint8_t>(frame.begin(), frame.begin() + 40));
  Pump();
  const auto timeout = absl::ToChronoMilliseconds(kPartialMessageTimeout);
  AdvanceAndPump(timeout - milliseconds(1));
  EXPECT_THAT(delegate_.idle, IsEmpty());
  AdvanceAndPump(milliseconds(1));
  ASSERT_EQ(delegate_.idle.size(), 1u);
  EXPECT_THAT(delegate_.idle[0], HasSubstr("at offset 0 is still incomplete after 2s"));
  EXPECT_THAT(delegate_.idle[0], HasSubstr("(40 byte(s) arrived)"));
}

TEST_F(CallerConnectionTest, EachIncompleteMessageGetsItsOwnPartialTimeout) {
  Start();
  connection_->StartIdleWatch();
  const std::vector<uint8_t> first = AudioFrame(1);
  const std::vector<uint8_t> second = AudioFrame(2);
  PeerWrite(std::vector<uint8_t>(first.begin(), first.begin() + 10));
  Pump();
  AdvanceAndPump(milliseconds(1500));
  // The first completes; the second starts, incomplete, at 1.5 s.
  std::vector<uint8_t> bytes(first.begin() + 10, first.end());
  bytes.insert(bytes.end(), second.begin(), second.begin() + 10);
  PeerWrite(bytes);
  Pump();
  ASSERT_EQ(delegate_.messages.size(), 1u);
  AdvanceAndPump(milliseconds(1999));  // 3.499 s: the first timer passed already
  EXPECT_THAT(delegate_.idle, IsEmpty());
  AdvanceAndPump(milliseconds(1));  // 3.5 s: 2 s since the second began
  ASSERT_EQ(delegate_.idle.size(), 1u);
  EXPECT_THAT(delegate_.idle[0], HasSubstr(absl::StrCat("at offset ", kFrameBytes)));
}

TEST_F(CallerConnectionTest, TimersDoNotRunOnceTheOwnerIsGone) {
  CallerConnection::Options options;
  options.idle_timeout = absl::Seconds(1);
  Start(options);
  connection_->StartIdleWatch();
  PeerWrite({0x10, 0x01});  // an incomplete message too
  Pump();
  owner_.reset();
  AdvanceAndPump(std::chrono::seconds(5));
  EXPECT_THAT(delegate_.calls, IsEmpty());
}

// ----------------------------------------------------------------- output

TEST_F(CallerConnectionTest, WriteMessageSendsTheWholeEncodedMessage) {
  Start();
  const std::vector<uint8_t> payload(kFramePayload, 0x5a);
  ASSERT_TRUE(connection_->WriteMessage(wire::Audio{8000, payload}));
  const std::vector<uint8_t> frame = AudioFrame(0x21);
  connection_->Write(frame.data(), frame.size(), /*droppable=*/true);

  std::vector<uint8_t> expected = Encoded(wire::Audio{8000, payload});
  expected.insert(expected.end(), frame.begin(), frame.end());
  EXPECT_EQ(PeerRead(), expected);
  EXPECT_EQ(connection_->bytes_written(), expected.size());
  EXPECT_EQ(counters_.bytes_out.load(), expected.size());
  EXPECT_EQ(counters_.frames_out.load(), 1u);  // the droppable one: an audio frame
}

TEST_F(CallerConnectionTest, WriteMessageRefusesWhatTheDialectCannotSendToAsterisk) {
  Start();  // asterisk dialect: only audio and hang-up go to Asterisk
  EXPECT_FALSE(connection_->WriteMessage(wire::DtmfDigit{'1'}));
  EXPECT_THAT(PeerRead(), IsEmpty());
  EXPECT_FALSE(connection_->closed());
}

TEST_F(CallerConnectionTest, BytesTheKernelDoesNotTakeWaitAndFollowWhole) {
  Start();
  ShrinkBuffers();
  const int sent = FillUntilPending();
  ASSERT_GT(sent, 0);
  EXPECT_LT(connection_->bytes_written(), static_cast<uint64_t>(sent) * kFrameBytes);
  // Non-droppable messages are never dropped, however much waits.
  std::vector<uint8_t> hangup = Encoded(wire::Hangup{});
  for (int i = 0; i < 3; ++i) connection_->Write(hangup.data(), hangup.size(), false);
  EXPECT_EQ(counters_.outbound_dropped_frames.load(), 0u);

  // The peer reads everything; the connection flushes as it becomes writable.
  wire::Decoder decoder;
  for (int round = 0; round < 1000; ++round) {
    const std::vector<uint8_t> bytes = PeerRead();
    decoder.Feed(bytes);
    Pump(1);
    if (bytes.empty() &&
        connection_->bytes_written() == static_cast<uint64_t>(sent) * kFrameBytes + 9) {
      break;
    }
  }
  int audio = 0;
  int hangups = 0;
  while (true) {
    absl::StatusOr<std::optional<wire::Message>> next = decoder.Next();
    ASSERT_TRUE(next.ok()) << next.status();
    if (!next->has_value()) break;
    if (const auto* a = std::get_if<wire::Audio>(&**next)) {
      ASSERT_EQ(hangups, 0) << "a hang-up overtook audio";
      ASSERT_EQ(a->payload.size(), kFramePayload);
      EXPECT_EQ(a->payload[0], static_cast<uint8_t>(audio)) << "frame " << audio;
      EXPECT_EQ(a->payload[kFramePayload - 1], static_cast<uint8_t>(audio));
      ++audio;
    } else {
      ASSERT_TRUE(std::holds_alternative<wire::Hangup>(**next));
      ++hangups;
    }
  }
  EXPECT_EQ(audio, sent);
  EXPECT_EQ(hangups, 3);
  EXPECT_EQ(decoder.buffered(), 0u);
  EXPECT_EQ(connection_->bytes_written(), static_cast<uint64_t>(sent) * kFrameBytes + 9);
  EXPECT_EQ(counters_.bytes_out.load(), connection_->bytes_written());
  EXPECT_THAT(delegate_.write_failed, IsEmpty());
}

TEST_F(CallerConnectionTest, DroppableFramesPastTheBoundAreDroppedWholeAndCounted) {
  Start();
  ShrinkBuffers();
  connection_->set_max_unsent_bytes(3 * kFrameBytes);
  const int sent = FillUntilPending();
  ASSERT_GT(sent, 0);
  // The unsent bytes are at most one frame now; frames are taken while
  // fewer than 3 frames' bytes wait, the rest dropped.
  const uint64_t unsent = static_cast<uint64_t>(sent) * kFrameBytes - connection_->bytes_written();
  int taken = 0;
  for (int i = 0; i < 10; ++i) {
    const std::vector<uint8_t> frame = AudioFrame(static_cast<uint8_t>(sent + i));
    const uint64_t before = counters_.outbound_dropped_frames.load();
    connection_->Write(frame.data(), frame.size(), /*droppable=*/true);
    if (counters_.outbound_dropped_frames.load() == before) {
      ASSERT_EQ(taken, i) << "a frame was taken after one was dropped";
      ++taken;
    }
  }
  const uint64_t expected_taken = (3 * kFrameBytes - unsent + kFrameBytes - 1) / kFrameBytes;
  EXPECT_EQ(static_cast<uint64_t>(taken), expected_taken);
  EXPECT_EQ(counters_.outbound_dropped_frames.load(), static_cast<uint64_t>(10 - taken));

  // What the peer gets: every frame taken, whole, in order.
  wire::Decoder decoder;
  const uint64_t total = static_cast<uint64_t>(sent + taken) * kFrameBytes;
  for (int round = 0; round < 1000 && connection_->bytes_written() < total; ++round) {
    decoder.Feed(PeerRead());
    Pump(1);
  }
  decoder.Feed(PeerRead());
  int frames = 0;
  while (true) {
    absl::StatusOr<std::optional<wire::Message>> next = decoder.Next();
    ASSERT_TRUE(next.ok()) << next.status();
    if (!next->has_value()) break;
    const auto& a = std::get<wire::Audio>(**next);
    EXPECT_EQ(a.payload[0], static_cast<uint8_t>(frames));
    ++frames;
  }
  EXPECT_EQ(frames, sent + taken);
  EXPECT_EQ(decoder.buffered(), 0u);
  EXPECT_THAT(delegate_.write_failed, IsEmpty());
}

// Every audio frame counts once in frames_out, whether it went out at once
// or waited in the pending buffer while Asterisk was behind.
TEST_F(CallerConnectionTest, EveryAudioFrameSentIsCountedOnce) {
  Start();
  ShrinkBuffers();
  connection_->set_max_unsent_bytes(1 << 20);  // nothing dropped
  const int direct = FillUntilPending();
  ASSERT_GT(direct, 0);
  for (int i = 0; i < 5; ++i) {
    const std::vector<uint8_t> frame = AudioFrame(static_cast<uint8_t>(direct + i));
    connection_->Write(frame.data(), frame.size(), /*droppable=*/true);
  }
  const uint64_t total = static_cast<uint64_t>(direct + 5) * kFrameBytes;
  for (int round = 0; round < 1000 && connection_->bytes_written() < total; ++round) {
    (void)PeerRead();
    Pump(1);
  }
  ASSERT_EQ(connection_->bytes_written(), total);
  EXPECT_EQ(counters_.outbound_dropped_frames.load(), 0u);
  EXPECT_EQ(counters_.frames_out.load(), static_cast<uint64_t>(direct + 5));
}

TEST_F(CallerConnectionTest, AsteriskNotReadingPastTheStallTimeoutFailsTheWrite) {
  CallerConnection::Options options;
  options.write_stall_timeout = absl::Seconds(2);
  Start(options);
  ShrinkBuffers();
  ASSERT_GT(FillUntilPending(), 0);
  const std::vector<uint8_t> frame = AudioFrame(0);
  AdvanceAndPump(milliseconds(2000));
  connection_->Write(frame.data(), frame.size(), /*droppable=*/true);  // 2 s: not past it
  EXPECT_THAT(delegate_.write_failed, IsEmpty());
  AdvanceAndPump(milliseconds(1));
  connection_->Write(frame.data(), frame.size(), /*droppable=*/true);
  ASSERT_EQ(delegate_.write_failed.size(), 1u);
  EXPECT_TRUE(delegate_.write_failed[0].first);
  EXPECT_THAT(delegate_.write_failed[0].second, HasSubstr("Asterisk has not read for 2s"));
  EXPECT_GE(counters_.outbound_dropped_frames.load(), 2u);
  EXPECT_TRUE(connection_->closed());
}

TEST_F(CallerConnectionTest, ProgressRestartsTheStallClock) {
  CallerConnection::Options options;
  options.write_stall_timeout = absl::Seconds(2);
  Start(options);
  ShrinkBuffers();
  ASSERT_GT(FillUntilPending(), 0);
  // Far more waiting than one read by the peer drains.
  const std::vector<uint8_t> big(60000, 0);
  const std::vector<uint8_t> message = Encoded(wire::Audio{8000, big});
  connection_->Write(message.data(), message.size(), /*droppable=*/false);
  const uint64_t written = connection_->bytes_written();
  AdvanceAndPump(milliseconds(1500));
  (void)PeerRead();  // Asterisk reads a little at 1.5 s
  Pump();
  ASSERT_GT(connection_->bytes_written(), written);
  AdvanceAndPump(milliseconds(1500));  // 3 s since the stall began, 1.5 s since progress
  const std::vector<uint8_t> frame = AudioFrame(0);
  connection_->Write(frame.data(), frame.size(), /*droppable=*/true);
  EXPECT_THAT(delegate_.write_failed, IsEmpty());
  AdvanceAndPump(milliseconds(501));
  connection_->Write(frame.data(), frame.size(), /*droppable=*/true);
  ASSERT_EQ(delegate_.write_failed.size(), 1u);
  EXPECT_TRUE(delegate_.write_failed[0].first);
}

TEST_F(CallerConnectionTest, AWriteToAClosedPeerFails) {
  Start();
  PeerClose();
  const std::vector<uint8_t> frame = AudioFrame(0);
  connection_->Write(frame.data(), frame.size(), /*droppable=*/true);
  ASSERT_EQ(delegate_.write_failed.size(), 1u);
  EXPECT_FALSE(delegate_.write_failed[0].first);
  EXPECT_THAT(delegate_.write_failed[0].second, HasSubstr("write: "));
}

// ---------------------------------------------------------------- closing

TEST_F(CallerConnectionTest, CloseWithHangupSendsItHalfClosesAndLingersUntilThePeerCloses) {
  Start();
  connection_->Close(/*send_hangup=*/true);
  bool eof = false;
  EXPECT_EQ(PeerRead(&eof), (std::vector<uint8_t>{0x00, 0x00, 0x00}));
  EXPECT_TRUE(eof);  // half-closed: nothing follows the hang-up
  EXPECT_FALSE(connection_->closed());
  EXPECT_EQ(delegate_.connection_closed, 0);

  // Asterisk's audio while it handles the hang-up is read and dropped.
  PeerWrite(AudioFrame(1));
  Pump();
  AdvanceAndPump(milliseconds(500));
  EXPECT_THAT(delegate_.messages, IsEmpty());
  EXPECT_FALSE(connection_->closed());

  PeerClose();
  Pump();
  EXPECT_TRUE(connection_->closed());
  EXPECT_THAT(delegate_.calls, ElementsAre("connection_closed"));
  // The linger timer was cancelled: nothing more.
  AdvanceAndPump(kLingerAfterHangup);
  EXPECT_EQ(delegate_.connection_closed, 1);
}

TEST_F(CallerConnectionTest, LingeringEndsAfterkLingerAfterHangup) {
  Start();
  connection_->Close(/*send_hangup=*/true);
  AdvanceAndPump(kLingerAfterHangup - milliseconds(1));
  EXPECT_FALSE(connection_->closed());
  EXPECT_EQ(delegate_.connection_closed, 0);
  AdvanceAndPump(milliseconds(1));
  EXPECT_TRUE(connection_->closed());
  EXPECT_THAT(delegate_.calls, ElementsAre("connection_closed"));
  bool eof = false;
  EXPECT_EQ(PeerRead(&eof), (std::vector<uint8_t>{0x00, 0x00, 0x00}));
  EXPECT_TRUE(eof);
  // The socket is gone: the peer's writes fail.
  const uint8_t byte = 0;
  EXPECT_EQ(::send(peer_, &byte, 1, MSG_NOSIGNAL), -1);
}

TEST_F(CallerConnectionTest, CloseWithoutHangupClosesAtOnce) {
  Start();
  connection_->Close(/*send_hangup=*/false);
  EXPECT_TRUE(connection_->closed());
  EXPECT_THAT(delegate_.calls, ElementsAre("connection_closed"));
  bool eof = false;
  EXPECT_THAT(PeerRead(&eof), IsEmpty());
  EXPECT_TRUE(eof);
  EXPECT_FALSE(connection_->WriteMessage(wire::Hangup{}));
}

TEST_F(CallerConnectionTest, CloseWithHangupWhileBytesWaitClosesAtOnceWithoutIt) {
  Start();
  ShrinkBuffers();
  const int sent = FillUntilPending();
  ASSERT_GT(sent, 0);
  connection_->Close(/*send_hangup=*/true);
  EXPECT_TRUE(connection_->closed());
  EXPECT_EQ(delegate_.connection_closed, 1);
  // The peer gets the audio the kernel took, and no hang-up after it.
  wire::Decoder decoder;
  bool eof = false;
  decoder.Feed(PeerRead(&eof));
  EXPECT_TRUE(eof);
  int frames = 0;
  while (true) {
    absl::StatusOr<std::optional<wire::Message>> next = decoder.Next();
    ASSERT_TRUE(next.ok()) << next.status();
    if (!next->has_value()) break;
    EXPECT_TRUE(std::holds_alternative<wire::Audio>(**next));
    ++frames;
  }
  EXPECT_LT(frames, sent);
}

TEST_F(CallerConnectionTest, NoCallbackAfterClose) {
  CallerConnection::Options options;
  options.idle_timeout = absl::Seconds(1);
  Start(options);
  connection_->StartIdleWatch();
  PeerWrite({0x10, 0x01});  // an incomplete message: the partial watch runs
  Pump();
  connection_->Close(/*send_hangup=*/false);
  ASSERT_THAT(delegate_.calls, ElementsAre("connection_closed"));
  AdvanceAndPump(std::chrono::seconds(10));
  const std::vector<uint8_t> frame = AudioFrame(0);
  connection_->Write(frame.data(), frame.size(), /*droppable=*/true);
  connection_->Close(/*send_hangup=*/true);
  Pump();
  EXPECT_THAT(delegate_.calls, ElementsAre("connection_closed"));
}

TEST_F(CallerConnectionTest, ADelegateClosingInACallbackStopsDeliveryAtOnce) {
  Start();
  delegate_.close_on_message = true;
  std::vector<uint8_t> bytes = AudioFrame(1);
  for (uint8_t i = 2; i < 5; ++i) {
    const std::vector<uint8_t> frame = AudioFrame(i);
    bytes.insert(bytes.end(), frame.begin(), frame.end());
  }
  PeerWrite(bytes);
  Pump();
  PeerClose();
  AdvanceAndPump(std::chrono::seconds(10));
  EXPECT_THAT(delegate_.calls, ElementsAre("message", "connection_closed"));
}

TEST_F(CallerConnectionTest, AProtocolErrorWhileLingeringIsNotReported) {
  Start();
  connection_->Close(/*send_hangup=*/true);
  PeerWrite({0xee, 0x00, 0x00});  // garbage: dropped, not decoded
  Pump();
  EXPECT_THAT(delegate_.calls, IsEmpty());
  PeerClose();
  Pump();
  EXPECT_THAT(delegate_.calls, ElementsAre("connection_closed"));
}

}  // namespace
}  // namespace audiosocket
