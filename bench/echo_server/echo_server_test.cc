// audiosocket-echo's paced mode, driven over a real socket: a burst of
// messages comes back one per 20 ms, in order, and a call that sends more
// than the paced queue holds loses its oldest. Real time, so the checks are
// bounds that a slow machine can only make easier to meet.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/subprocess.h"

namespace {

using ::audiosocket::testing::RunfilePath;
using ::audiosocket::testing::Subprocess;
using ::testing::HasSubstr;

constexpr uint8_t kUuid = 0x01;
constexpr uint8_t kSlin8k = 0x10;
constexpr size_t kPayload = 320;  // 20 ms at 8 kHz
constexpr size_t kMessage = 3 + kPayload;

void Append(uint8_t kind, const std::vector<uint8_t>& payload, std::vector<uint8_t>* out) {
  out->push_back(kind);
  out->push_back(static_cast<uint8_t>(payload.size() >> 8));
  out->push_back(static_cast<uint8_t>(payload.size() & 0xff));
  out->insert(out->end(), payload.begin(), payload.end());
}

// The UUID, then `count` audio messages whose samples are all the byte
// 0, 1, 2, ..., (then a hangup) in one write.
std::vector<uint8_t> Burst(int count, bool hang_up = false) {
  std::vector<uint8_t> bytes;
  Append(kUuid, std::vector<uint8_t>(16, 0xab), &bytes);
  for (int i = 0; i < count; ++i) {
    Append(kSlin8k, std::vector<uint8_t>(kPayload, static_cast<uint8_t>(i)), &bytes);
  }
  if (hang_up) Append(0x00, {}, &bytes);
  return bytes;
}

class PacedEcho {
 public:
  PacedEcho()
      : process_({RunfilePath("bench/echo_server/audiosocket-echo"), "--listen=127.0.0.1:0",
                  "--mode=paced"}) {
    auto line = process_.WaitForLine("\"event\":\"listening\"", absl::Seconds(20));
    if (!line.has_value()) {
      ADD_FAILURE() << process_.Output();
      return;
    }
    const size_t at = line->rfind(':', line->find("\",\"mode\"")) + 1;
    (void)absl::SimpleAtoi(line->substr(at, line->find('"', at) - at), &port_);
  }

  // A connected socket, or -1.
  int Connect() const {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port_));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      close(fd);
      return -1;
    }
    return fd;
  }

  // Its counters, printed when it stops.
  std::string Stop() {
    process_.Signal(SIGTERM);
    auto line = process_.WaitForLine("\"event\":\"stopped\"", absl::Seconds(20));
    return line.value_or(process_.Output());
  }

 private:
  Subprocess process_;
  int port_ = 0;
};

// Reads `count` whole messages (or until 10 s pass) and returns the first
// byte of each one's payload.
std::vector<int> ReadMessages(int fd, size_t count) {
  std::vector<uint8_t> bytes;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (bytes.size() < count * kMessage && std::chrono::steady_clock::now() < give_up) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 100) <= 0) continue;
    uint8_t chunk[4096];
    const ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0) break;
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  std::vector<int> firsts;
  for (size_t at = 0; at + kMessage <= bytes.size(); at += kMessage) {
    EXPECT_EQ(bytes[at], kSlin8k);
    firsts.push_back(bytes[at + 3]);
  }
  return firsts;
}

TEST(PacedEchoTest, ABurstComesBackOneMessageEvery20Ms) {
  PacedEcho echo;
  const int fd = echo.Connect();
  ASSERT_GE(fd, 0);
  const std::vector<uint8_t> burst = Burst(8);
  const auto sent = std::chrono::steady_clock::now();
  ASSERT_EQ(write(fd, burst.data(), burst.size()), static_cast<ssize_t>(burst.size()));
  EXPECT_THAT(ReadMessages(fd, 8), ::testing::ElementsAre(0, 1, 2, 3, 4, 5, 6, 7));
  // The eighth goes out seven periods after the first, which cannot leave
  // before the burst arrived.
  EXPECT_GE(std::chrono::steady_clock::now() - sent, std::chrono::milliseconds(140));
  close(fd);
  EXPECT_THAT(echo.Stop(), HasSubstr("\"frames_echoed\":8,"));
}

TEST(PacedEchoTest, ACallSendingFasterThanItsPaceLosesItsOldestMessages) {
  PacedEcho echo;
  const int fd = echo.Connect();
  ASSERT_GE(fd, 0);
  const std::vector<uint8_t> burst = Burst(12);
  ASSERT_EQ(write(fd, burst.data(), burst.size()), static_cast<ssize_t>(burst.size()));
  EXPECT_THAT(ReadMessages(fd, 8), ::testing::ElementsAre(4, 5, 6, 7, 8, 9, 10, 11));
  close(fd);
  EXPECT_THAT(echo.Stop(), HasSubstr("\"paced_dropped\":4,"));
}

TEST(PacedEchoTest, WhatACallerSentBeforeHangingUpGoesBackBeforeTheClose) {
  PacedEcho echo;
  const int fd = echo.Connect();
  ASSERT_GE(fd, 0);
  const std::vector<uint8_t> burst = Burst(3, /*hang_up=*/true);
  ASSERT_EQ(write(fd, burst.data(), burst.size()), static_cast<ssize_t>(burst.size()));
  EXPECT_THAT(ReadMessages(fd, 3), ::testing::ElementsAre(0, 1, 2));
  uint8_t byte;
  EXPECT_EQ(read(fd, &byte, 1), 0);  // then the close
  close(fd);
  EXPECT_THAT(echo.Stop(), HasSubstr("\"frames_echoed\":3,"));
}

}  // namespace
