// Listener on 127.0.0.1:0 with an EpollDispatcher driven by hand: binding,
// accepting (counted, set up), the allow-list, closing.

#include "server/audiosocket/listener.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/event/epoll_dispatcher.h"
#include "lib/event/time_source.h"
#include "lib/net/net.h"
#include "server/config/config.h"

namespace audiosocket {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::SizeIs;
using ::testing::StartsWith;

struct Accepted {
  int fd;
  const ListenerConfig* listener;
  std::string peer;
};

class ListenerTest : public ::testing::Test {
 protected:
  void TearDown() override {
    listener_.reset();
    for (const Accepted& a : accepted_) ::close(a.fd);
    for (int fd : clients_) ::close(fd);
  }

  void Create(ListenerConfig config) {
    listener_ = std::make_unique<Listener>(
        &loop_, std::move(config),
        [this](int fd, const ListenerConfig* listener, std::string peer) {
          accepted_.push_back({fd, listener, std::move(peer)});
        },
        &accepted_count_, &rejected_count_);
  }

  static ListenerConfig Config() {
    ListenerConfig config;
    config.name = "test";
    config.address = "127.0.0.1:0";
    return config;
  }

  // A connected client (the kernel completes the handshake on loopback
  // before accept). Reads time out after a few seconds rather than hang.
  int Connect() {
    net::HostPort host_port;
    host_port.host = "127.0.0.1";
    host_port.port = Port();
    absl::StatusOr<net::SocketAddress> address = net::Resolve(host_port);
    EXPECT_TRUE(address.ok()) << address.status();
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    EXPECT_GE(fd, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    EXPECT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&address->storage), address->length),
              0)
        << std::strerror(errno);
    clients_.push_back(fd);
    return fd;
  }

  int Port() const {
    const std::string& bound = listener_->bound();
    return std::stoi(bound.substr(bound.rfind(':') + 1));
  }

  void Pump(int rounds = 3) {
    for (int i = 0; i < rounds; ++i) loop_.RunOnce(event::Nanos(0));
  }

  event::SimulatedTimeSource time_;
  event::EpollDispatcher loop_{&time_};
  std::atomic<uint64_t> accepted_count_{0};
  std::atomic<uint64_t> rejected_count_{0};
  std::unique_ptr<Listener> listener_;
  std::vector<Accepted> accepted_;
  std::vector<int> clients_;
};

TEST_F(ListenerTest, BindsAnEphemeralPortOnLoopback) {
  Create(Config());
  ASSERT_TRUE(listener_->Bind().ok());
  EXPECT_THAT(listener_->bound(), StartsWith("127.0.0.1:"));
  EXPECT_GT(Port(), 0);
  EXPECT_EQ(listener_->config().name, "test");
}

TEST_F(ListenerTest, ABindErrorNamesTheAddress) {
  Create(Config());
  ASSERT_TRUE(listener_->Bind().ok());
  ListenerConfig taken = Config();
  taken.address = listener_->bound();
  Listener second(
      &loop_, taken, [](int, const ListenerConfig*, std::string) {}, &accepted_count_,
      &rejected_count_);
  const absl::Status status = second.Bind();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr(listener_->bound()));
}

TEST_F(ListenerTest, AcceptsCountsAndHandsOverANonBlockingSocket) {
  Create(Config());
  ASSERT_TRUE(listener_->Bind().ok());
  ASSERT_TRUE(listener_->StartAccepting().ok());
  const int client = Connect();
  Pump();
  ASSERT_THAT(accepted_, SizeIs(1));
  EXPECT_EQ(accepted_count_.load(), 1u);
  EXPECT_EQ(rejected_count_.load(), 0u);
  const Accepted& a = accepted_[0];
  EXPECT_EQ(a.listener, &listener_->config());

  // The peer is the client's address.
  absl::StatusOr<net::SocketAddress> local = net::LocalAddress(client);
  ASSERT_TRUE(local.ok());
  EXPECT_EQ(a.peer, local->ToString());

  // Set up: non-blocking, no Nagle, a bounded send buffer.
  const int flags = ::fcntl(a.fd, F_GETFL);
  ASSERT_GE(flags, 0);
  EXPECT_NE(flags & O_NONBLOCK, 0);
  int value = 0;
  socklen_t length = sizeof(value);
  ASSERT_EQ(::getsockopt(a.fd, IPPROTO_TCP, TCP_NODELAY, &value, &length), 0);
  EXPECT_EQ(value, 1);
  length = sizeof(value);
  ASSERT_EQ(::getsockopt(a.fd, SOL_SOCKET, SO_SNDBUF, &value, &length), 0);
  EXPECT_LE(value, 2 * 64 * 1024);  // Linux reports twice what was set

  // A working connection.
  const char byte = 'x';
  ASSERT_EQ(::write(client, &byte, 1), 1);
  char got = 0;
  for (int i = 0; i < 1000 && ::read(a.fd, &got, 1) != 1; ++i) {
    ASSERT_EQ(errno, EAGAIN);  // non-blocking: no data yet is EAGAIN, not a wait
    usleep(1000);
  }
  EXPECT_EQ(got, 'x');
}

TEST_F(ListenerTest, AcceptsEveryConnectionWaiting) {
  Create(Config());
  ASSERT_TRUE(listener_->Bind().ok());
  ASSERT_TRUE(listener_->StartAccepting().ok());
  for (int i = 0; i < 5; ++i) Connect();
  Pump();
  EXPECT_THAT(accepted_, SizeIs(5));
  EXPECT_EQ(accepted_count_.load(), 5u);
}

// Out of descriptors, accept4 fails and the connection stays in the backlog,
// so the socket stays readable: the listener pauses rather than spin the
// loop (and the log) until descriptors are free again.
TEST_F(ListenerTest, OutOfDescriptorsPausesAcceptingInsteadOfSpinning) {
  Create(Config());
  ASSERT_TRUE(listener_->Bind().ok());
  ASSERT_TRUE(listener_->StartAccepting().ok());
  Connect();
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &old), 0);
  // The lowest free descriptor number: every new descriptor would be at
  // least this, so a limit of it leaves none.
  const int lowest_free = ::dup(0);
  ASSERT_GE(lowest_free, 0);
  ::close(lowest_free);
  rlimit none = old;
  none.rlim_cur = static_cast<rlim_t>(lowest_free);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &none), 0);
  Pump(20);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &old), 0);
  EXPECT_EQ(listener_->accept_pauses(), 1u);  // one pause, not a failure per round
  EXPECT_THAT(accepted_, IsEmpty());
  // Descriptors are free again, but the pause runs its course first.
  Pump(3);
  EXPECT_THAT(accepted_, IsEmpty());
  time_.Advance(kAcceptPause);
  Pump(3);
  EXPECT_THAT(accepted_, SizeIs(1));
  EXPECT_EQ(listener_->accept_pauses(), 1u);
}

TEST_F(ListenerTest, APeerOutsideTheAllowListIsCountedAndClosed) {
  ListenerConfig config = Config();
  absl::StatusOr<net::Cidr> cidr = net::ParseCidr("10.0.0.0/8");
  ASSERT_TRUE(cidr.ok());
  config.allow.push_back(*cidr);
  Create(config);
  ASSERT_TRUE(listener_->Bind().ok());
  ASSERT_TRUE(listener_->StartAccepting().ok());
  const int client = Connect();
  Pump();
  EXPECT_THAT(accepted_, SizeIs(0));
  EXPECT_EQ(accepted_count_.load(), 1u);  // accepted, then refused
  EXPECT_EQ(rejected_count_.load(), 1u);
  char byte;
  EXPECT_EQ(::read(client, &byte, 1), 0);  // closed by the listener
}

TEST_F(ListenerTest, APeerInsideTheAllowListIsAccepted) {
  ListenerConfig config = Config();
  for (const char* text : {"10.0.0.0/8", "127.0.0.0/8"}) {
    absl::StatusOr<net::Cidr> cidr = net::ParseCidr(text);
    ASSERT_TRUE(cidr.ok());
    config.allow.push_back(*cidr);
  }
  Create(config);
  ASSERT_TRUE(listener_->Bind().ok());
  ASSERT_TRUE(listener_->StartAccepting().ok());
  Connect();
  Pump();
  EXPECT_THAT(accepted_, SizeIs(1));
  EXPECT_EQ(rejected_count_.load(), 0u);
}

TEST_F(ListenerTest, CloseStopsAccepting) {
  Create(Config());
  ASSERT_TRUE(listener_->Bind().ok());
  ASSERT_TRUE(listener_->StartAccepting().ok());
  net::HostPort host_port{"127.0.0.1", Port()};
  listener_->Close();
  listener_->Close();  // harmless twice
  absl::StatusOr<net::SocketAddress> address = net::Resolve(host_port);
  ASSERT_TRUE(address.ok());
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  clients_.push_back(fd);
  EXPECT_NE(::connect(fd, reinterpret_cast<const sockaddr*>(&address->storage), address->length),
            0);
  EXPECT_EQ(errno, ECONNREFUSED);
  Pump();
  EXPECT_THAT(accepted_, SizeIs(0));
}

}  // namespace
}  // namespace audiosocket
