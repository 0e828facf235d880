// lib/net: address parsing, CIDR matching, a listening socket on port 0.

#include "lib/net/net.h"

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket::net {
namespace {

using ::testing::HasSubstr;

TEST(ParseHostPortTest, AcceptsHostsIpv6AndPortZero) {
  struct Case {
    const char* text;
    const char* host;
    int port;
  };
  for (const Case& c : {Case{"0.0.0.0:9092", "0.0.0.0", 9092}, Case{"[::1]:80", "::1", 80},
                        Case{"localhost:0", "localhost", 0}}) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(c.text);
    ASSERT_TRUE(parsed.ok()) << c.text << ": " << parsed.status();
    EXPECT_EQ(parsed->host, c.host);
    EXPECT_EQ(parsed->port, c.port);
  }
}

TEST(ParseHostPortTest, SaysWhatIsWrong) {
  struct Case {
    const char* text;
    const char* error;
  };
  for (const Case& c : {Case{"9092", "has no port"}, Case{":9092", "has no host"},
                        Case{"host:65536", "invalid port"}, Case{"[::1]9092", "[ipv6]:port"}}) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(parsed.status().message(), HasSubstr(c.error)) << c.text;
  }
}

SocketAddress Address(const char* host, int port) {
  absl::StatusOr<SocketAddress> address = Resolve({host, port});
  EXPECT_TRUE(address.ok()) << address.status();
  return *address;
}

TEST(CidrTest, MatchesByPrefixAndIpv4MappedPeers) {
  absl::StatusOr<Cidr> ten = ParseCidr("10.0.0.0/8");
  ASSERT_TRUE(ten.ok()) << ten.status();
  EXPECT_TRUE(CidrContains(*ten, Address("10.1.2.3", 1)));
  EXPECT_FALSE(CidrContains(*ten, Address("11.0.0.1", 1)));
  EXPECT_TRUE(CidrContains(*ten, Address("::ffff:10.9.9.9", 1)));

  absl::StatusOr<Cidr> host = ParseCidr("192.168.1.7");  // a bare address is /32
  ASSERT_TRUE(host.ok()) << host.status();
  EXPECT_TRUE(CidrContains(*host, Address("192.168.1.7", 1)));
  EXPECT_FALSE(CidrContains(*host, Address("192.168.1.8", 1)));

  absl::StatusOr<Cidr> ula = ParseCidr("fd00::/8");
  ASSERT_TRUE(ula.ok()) << ula.status();
  EXPECT_TRUE(CidrContains(*ula, Address("fd12::1", 1)));
  EXPECT_FALSE(CidrContains(*ula, Address("::1", 1)));
}

TEST(CidrTest, RejectsMalformedNetworks) {
  for (const char* text : {"10.0.0.0/33", "not-an-address", "fd00::/129", "10.0.0.0/"}) {
    EXPECT_FALSE(ParseCidr(text).ok()) << text;
  }
}

TEST(ListenTcpTest, PortZeroGetsAPortTheLocalAddressReports) {
  absl::StatusOr<int> fd = ListenTcp(Address("127.0.0.1", 0));
  ASSERT_TRUE(fd.ok()) << fd.status();
  absl::StatusOr<SocketAddress> local = LocalAddress(*fd);
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_GT(local->port(), 0);
  EXPECT_THAT(local->ToString(), HasSubstr("127.0.0.1:"));
  EXPECT_TRUE(SetNonBlocking(*fd).ok());
  close(*fd);
}

}  // namespace
}  // namespace audiosocket::net
