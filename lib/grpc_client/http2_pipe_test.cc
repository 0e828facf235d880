#include "lib/grpc_client/http2_pipe.h"

#include <nghttp2/nghttp2.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
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

int Queued(int fd) {
  int bytes = 0;
  EXPECT_EQ(::ioctl(fd, FIONREAD, &bytes), 0);
  return bytes;
}

// A peer's flood: more input queued than one read may take. Each Read
// takes kMaxReadBytes and leaves the rest for the loop's next round.
TEST(Http2PipeTest, AReadTakesAtMostItsBoundAndLeavesTheRest) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
  const int peer = fds[1];
  // As much room as an unprivileged process may ask for (the kernel
  // doubles it): several times the bound.
  const int room = 4 << 20;
  ASSERT_EQ(::setsockopt(peer, SOL_SOCKET, SO_SNDBUF, &room, sizeof(room)), 0);

  // The server's SETTINGS, then frames of a type nghttp2 does not know and
  // so ignores, as many as the socket takes.
  std::vector<uint8_t> input;
  AppendFrameHeader(0, NGHTTP2_SETTINGS, &input);
  ASSERT_EQ(::send(peer, input.data(), input.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(input.size()));
  constexpr uint32_t kPayload = 16384;  // the default largest frame
  std::vector<uint8_t> frame;
  AppendFrameHeader(kPayload, 0xfa, &frame);
  frame.resize(frame.size() + kPayload, 0);
  size_t sent = input.size();
  while (true) {
    const ssize_t n = ::send(peer, frame.data(), frame.size(), MSG_NOSIGNAL);
    if (n < 0) {
      ASSERT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK) << errno;
      break;
    }
    sent += static_cast<size_t>(n);
    if (static_cast<size_t>(n) < frame.size()) break;  // the rest would not fit
  }
  ASSERT_GT(sent, Http2Pipe::kMaxReadBytes + kPayload)
      << "this machine's socket buffer is smaller than the test needs";

  nghttp2_session_callbacks* callbacks;
  ASSERT_EQ(nghttp2_session_callbacks_new(&callbacks), 0);
  nghttp2_session* session;
  ASSERT_EQ(nghttp2_session_client_new(&session, callbacks, nullptr), 0);
  nghttp2_session_callbacks_del(callbacks);

  event::EpollDispatcher loop;
  NoHandler handler;
  Http2Pipe pipe(&loop, "the test's peer");
  ASSERT_TRUE(pipe.Open(fds[0], &handler, /*writable=*/false).ok());
  const int before = Queued(fds[0]);
  ASSERT_TRUE(pipe.Read(session, [] { return false; }).ok());
  // 256 KiB: a 1 MiB stream window of tiny commands taken in one round
  // held the loop long enough for its other calls to miss a tick.
  EXPECT_EQ(before - Queued(fds[0]), 256 << 10);
  // The next round takes the next part, until the rest is less.
  while (Queued(fds[0]) > 0) {
    const int queued = Queued(fds[0]);
    ASSERT_TRUE(pipe.Read(session, [] { return false; }).ok());
    EXPECT_EQ(queued - Queued(fds[0]),
              std::min(queued, static_cast<int>(Http2Pipe::kMaxReadBytes)));
  }
  nghttp2_session_del(session);
  ::close(peer);
}

}  // namespace
}  // namespace audiosocket::grpc_client
