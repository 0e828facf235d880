// Target parsing: the forms --backend takes, and clear errors for the rest.

#include "lib/grpc_client/address.h"

#include <netinet/in.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket::grpc_client {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(AddressTest, HostPortAndDnsTargetsAreNamesToResolve) {
  for (const char* text :
       {"agents.default.svc:50051", "dns:///agents.default.svc:50051",
        "dns:agents.default.svc:50051", "dns://8.8.8.8/agents.default.svc:50051"}) {
    absl::StatusOr<Target> target = ParseTarget(text);
    ASSERT_TRUE(target.ok()) << text << ": " << target.status();
    EXPECT_THAT(target->names, ElementsAre("agents.default.svc:50051")) << text;
    EXPECT_EQ(target->authority, "agents.default.svc:50051");
    EXPECT_TRUE(target->addresses.empty());
  }
}

TEST(AddressTest, LiteralListsAreAddressesInOrder) {
  absl::StatusOr<Target> v4 = ParseTarget("ipv4:10.0.0.1:50051,10.0.0.2:50052");
  ASSERT_TRUE(v4.ok()) << v4.status();
  ASSERT_EQ(v4->addresses.size(), 2u);
  EXPECT_EQ(v4->addresses[1].text, "10.0.0.2:50052");
  EXPECT_EQ(v4->addresses[1].storage.ss_family, AF_INET);
  EXPECT_EQ(ntohs(reinterpret_cast<const sockaddr_in*>(&v4->addresses[1].storage)->sin_port),
            50052);
  absl::StatusOr<Target> v6 = ParseTarget("ipv6:[::1]:50051");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->addresses[0].storage.ss_family, AF_INET6);
  absl::StatusOr<Target> unix_target = ParseTarget("unix:/run/backend.sock");
  ASSERT_TRUE(unix_target.ok());
  EXPECT_EQ(unix_target->addresses[0].storage.ss_family, AF_UNIX);
}

TEST(AddressTest, MalformedTargetsSayWhatIsWrong) {
  EXPECT_THAT(ParseTarget("agents").status().message(), HasSubstr("port is required"));
  EXPECT_THAT(ParseTarget("agents:0").status().message(), HasSubstr("from 1 to 65535"));
  EXPECT_THAT(ParseTarget("ipv4:300.0.0.1:5").status().message(), HasSubstr("not an IPv4"));
  EXPECT_THAT(ParseTarget("xds:///agents").status().message(), HasSubstr("unsupported"));
  EXPECT_FALSE(ParseTarget("").ok());
}

TEST(AddressTest, ResolvingGivesEveryAddressOfTheName) {
  absl::StatusOr<std::vector<Address>> found = ResolveName("127.0.0.1:7");
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_THAT((*found)[0].text, "127.0.0.1:7");
  EXPECT_EQ(ResolveName("no-such-host.invalid:80").status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace audiosocket::grpc_client
