#include "lib/grpc_client/http2_pipe.h"

#include <nghttp2/nghttp2.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"

namespace audiosocket::grpc_client {
namespace {

class NoHandler final : public event::FdHandler {
 public:
  void OnReadable() override {}
  void OnWritable() override {}
};

// A frame header: 24-bit length, type, flags, 31-bit stream id.
void AppendFrameHeader(uint32_t length, uint8_t type, std::vector<uint8_t>* out) {
  out->insert(out->end(), {static_cast<uint8_t>(length >> 16), static_cast<uint8_t>(length >> 8),
                           static_cast<uint8_t>(length), type, 0, 0, 0, 0, 0});
}

// A client session with no callbacks: it sends what is submitted and
// ignores what it reads. The caller deletes it.
nghttp2_session* NewClientSession() {
  nghttp2_session_callbacks* callbacks;
  EXPECT_EQ(nghttp2_session_callbacks_new(&callbacks), 0);
  nghttp2_session* session = nullptr;
  EXPECT_EQ(nghttp2_session_client_new(&session, callbacks, nullptr), 0);
  nghttp2_session_callbacks_del(callbacks);
  return session;
}

int Queued(int fd) {
  int bytes = 0;
  EXPECT_EQ(::ioctl(fd, FIONREAD, &bytes), 0);
  return bytes;
}

// A peer's flood: more input queued than one read may take, on a pipe
// whose session ignores it.
class Http2PipeFloodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    peer_ = fds[1];
    // As much room as an unprivileged process may ask for (the kernel
    // doubles it): several times the bound.
    const int room = 4 << 20;
    ASSERT_EQ(::setsockopt(peer_, SOL_SOCKET, SO_SNDBUF, &room, sizeof(room)), 0);

    // The server's SETTINGS, then frames of a type nghttp2 does not know
    // and so ignores, as many as the socket takes.
    std::vector<uint8_t> input;
    AppendFrameHeader(0, NGHTTP2_SETTINGS, &input);
    ASSERT_EQ(::send(peer_, input.data(), input.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(input.size()));
    constexpr uint32_t kPayload = 16384;  // the default largest frame
    std::vector<uint8_t> frame;
    AppendFrameHeader(kPayload, 0xfa, &frame);
    frame.resize(frame.size() + kPayload, 0);
    size_t sent = input.size();
    while (true) {
      const ssize_t n = ::send(peer_, frame.data(), frame.size(), MSG_NOSIGNAL);
      if (n < 0) {
        ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << errno;
        break;
      }
      sent += static_cast<size_t>(n);
      if (static_cast<size_t>(n) < frame.size()) break;  // the rest would not fit
    }
    ASSERT_GT(sent, Http2Pipe::kMaxReadBytes + kPayload)
        << "this machine's socket buffer is smaller than the test needs";

    session_ = NewClientSession();
    ASSERT_NE(session_, nullptr);
    fd_ = fds[0];
    ASSERT_TRUE(pipe_.Open(fd_, &handler_, /*writable=*/false).ok());
  }

  void TearDown() override {
    if (session_ != nullptr) nghttp2_session_del(session_);
    if (peer_ >= 0) ::close(peer_);
  }

  // Bytes one Read took from the socket.
  int ReadOnce() {
    const int before = Queued(fd_);
    EXPECT_TRUE(pipe_.Read(session_, [] { return false; }).ok());
    return before - Queued(fd_);
  }

  event::EpollDispatcher loop_;
  NoHandler handler_;
  Http2Pipe pipe_{&loop_, "the test's peer"};
  nghttp2_session* session_ = nullptr;
  int fd_ = -1;
  int peer_ = -1;
};

// Each Read takes kMaxReadBytes and leaves the rest for the loop's next
// round.
TEST_F(Http2PipeFloodTest, AReadTakesAtMostItsBoundAndLeavesTheRest) {
  // 256 KiB: a 1 MiB stream window of tiny commands taken in one round
  // held the loop long enough for its other calls to miss a tick.
  EXPECT_EQ(ReadOnce(), 256 << 10);
  // The next round takes the next part, until the rest is less.
  while (Queued(fd_) > 0) {
    const int queued = Queued(fd_);
    EXPECT_EQ(ReadOnce(), std::min(queued, static_cast<int>(Http2Pipe::kMaxReadBytes)));
  }
}

// A playout tick that came due goes before the rest of a flood: the read
// stops after one chunk, and takes its full bound again once the timers
// have run.
TEST_F(Http2PipeFloodTest, AReadStopsAfterOneChunkWhileATimerIsDue) {
  bool fired = false;
  loop_.RunAt(loop_.Now() - std::chrono::milliseconds(1), [&] { fired = true; });
  ASSERT_TRUE(loop_.TimerDue());
  EXPECT_EQ(ReadOnce(), static_cast<int>(Http2Pipe::kReadChunkBytes));
  EXPECT_EQ(ReadOnce(), static_cast<int>(Http2Pipe::kReadChunkBytes));

  loop_.RunOnce(std::chrono::milliseconds(0));
  ASSERT_TRUE(fired);
  EXPECT_FALSE(loop_.TimerDue());
  EXPECT_EQ(ReadOnce(), static_cast<int>(Http2Pipe::kMaxReadBytes));
}

// A flush of much more than one batch (every call's audio queued while a
// backend did not read): with no timer due it writes everything at once;
// once a tick is due it stops after one batch, waits for the socket to be
// reported writable, and the next flush (OnWritable's) writes the rest.
TEST(Http2PipeTest, AFlushStopsAfterOneBatchWhileATimerIsDue) {
  constexpr int kPings = 6000;  // 17 bytes each: half as much again as one batch
  size_t everything = 0;
  for (const bool timer_due : {false, true}) {
    SCOPED_TRACE(timer_due ? "a timer due" : "no timer due");
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    const int room = 4 << 20;
    ASSERT_EQ(::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &room, sizeof(room)), 0);
    const int peer = fds[1];
    nghttp2_session* session = NewClientSession();
    ASSERT_NE(session, nullptr);
    for (int i = 0; i < kPings; ++i) {
      ASSERT_EQ(nghttp2_submit_ping(session, NGHTTP2_FLAG_NONE, nullptr), 0);
    }

    event::EpollDispatcher loop;
    NoHandler handler;
    Http2Pipe pipe(&loop, "the test's peer");
    ASSERT_TRUE(pipe.Open(fds[0], &handler, /*writable=*/false).ok());
    if (timer_due) loop.RunAt(loop.Now() - std::chrono::milliseconds(1), [] {});
    ASSERT_TRUE(pipe.Flush(session, [] { return false; }).ok());
    if (!timer_due) {
      everything = static_cast<size_t>(Queued(peer));
      EXPECT_GT(everything, static_cast<size_t>(kPings) * 17);
      EXPECT_FALSE(pipe.write_blocked());
    } else {
      // One batch: kFlushBatchBytes and the rest of the frame that
      // crossed it.
      EXPECT_GE(Queued(peer), static_cast<int>(Http2Pipe::kFlushBatchBytes));
      EXPECT_LT(Queued(peer), static_cast<int>(Http2Pipe::kFlushBatchBytes) + 17);
      EXPECT_TRUE(pipe.write_blocked());
      EXPECT_EQ(pipe.writes(), 1u);
      loop.RunOnce(std::chrono::milliseconds(0));  // the timer runs
      ASSERT_FALSE(loop.TimerDue());
      ASSERT_TRUE(pipe.Flush(session, [] { return false; }).ok());  // as OnWritable does
      EXPECT_EQ(static_cast<size_t>(Queued(peer)), everything);
      EXPECT_FALSE(pipe.write_blocked());
    }
    nghttp2_session_del(session);
    ::close(peer);
  }
}

// The SETTINGS either side of a loop link sends first: no server push for
// a client, the stream window, and no RFC 7540 priorities, so nghttp2
// schedules every call's stream from its flat queue.
TEST(Http2PipeTest, LocalSettingsTurnOffPriorityTreeAndSetTheWindow) {
  for (const bool client : {true, false}) {
    SCOPED_TRACE(client ? "client" : "server");
    nghttp2_session_callbacks* callbacks;
    ASSERT_EQ(nghttp2_session_callbacks_new(&callbacks), 0);
    nghttp2_session* session = nullptr;
    if (client) {
      ASSERT_EQ(nghttp2_session_client_new(&session, callbacks, nullptr), 0);
    } else {
      ASSERT_EQ(nghttp2_session_server_new(&session, callbacks, nullptr), 0);
    }
    nghttp2_session_callbacks_del(callbacks);
    SubmitLocalSettings(session, client, /*stream_window_bytes=*/123456,
                        /*connection_window_bytes=*/1 << 20);

    std::vector<uint8_t> sent;
    const uint8_t* data = nullptr;
    for (ssize_t n; (n = nghttp2_session_mem_send(session, &data)) > 0;) {
      sent.insert(sent.end(), data, data + n);
    }
    nghttp2_session_del(session);
    const size_t preface = client ? NGHTTP2_CLIENT_MAGIC_LEN : 0;
    ASSERT_GE(sent.size(), preface + 9);
    const uint8_t* frame = sent.data() + preface;
    ASSERT_EQ(frame[3], NGHTTP2_SETTINGS);
    const size_t length = (size_t{frame[0]} << 16) | (size_t{frame[1]} << 8) | frame[2];
    ASSERT_EQ(length % 6, 0u);
    ASSERT_GE(sent.size(), preface + 9 + length);
    std::vector<std::pair<int, uint32_t>> entries;
    for (size_t at = 9; at < 9 + length; at += 6) {
      const uint8_t* e = frame + at;
      entries.emplace_back((e[0] << 8) | e[1], (uint32_t{e[2]} << 24) | (uint32_t{e[3]} << 16) |
                                                   (uint32_t{e[4]} << 8) | e[5]);
    }
    std::vector<std::pair<int, uint32_t>> expected;
    if (client) expected.emplace_back(NGHTTP2_SETTINGS_ENABLE_PUSH, 0);
    expected.emplace_back(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 123456);
    expected.emplace_back(NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1);
    EXPECT_EQ(entries, expected);
  }
}

}  // namespace
}  // namespace audiosocket::grpc_client
