#include "server/grpc/bearer_auth.h"

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "audiosocket/bridge/v1/bridge.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/backend/claim_dispatcher.h"
#include "server/call/call_registry.h"
#include "server/grpc/bridge_service.h"
#include "server/ops/counters.h"

namespace audiosocket {
namespace {

using ::testing::HasSubstr;

// The BridgeService in process, with `token` required (empty: none).
class ServiceWithToken {
 public:
  explicit ServiceWithToken(std::string token) {
    BridgeService::Options options;
    options.auth_token = std::move(token);
    options.counters = &counters_;
    service_ = std::make_unique<BridgeService>(&dispatcher_, &registry_, options);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    stub_ = bridge::v1::BridgeService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
  ~ServiceWithToken() { server_->Shutdown(); }

  // ListCalls with `authorization` metadata (none when empty).
  grpc::Status ListCalls(const std::string& authorization) {
    grpc::ClientContext context;
    if (!authorization.empty()) context.AddMetadata("authorization", authorization);
    bridge::v1::ListCallsRequest request;
    bridge::v1::ListCallsResponse response;
    return stub_->ListCalls(&context, request, &response);
  }

 private:
  BridgeCounters counters_;
  ClaimDispatcher dispatcher_;
  CallRegistry registry_;
  std::unique_ptr<BridgeService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<bridge::v1::BridgeService::Stub> stub_;
};

TEST(BearerAuthTest, WithoutATokenEveryCallIsAllowed) {
  ServiceWithToken service("");
  EXPECT_TRUE(service.ListCalls("").ok());
  EXPECT_TRUE(service.ListCalls("Bearer anything").ok());
}

TEST(BearerAuthTest, MissingMetadataIsNamed) {
  ServiceWithToken service("s3cret");
  grpc::Status status = service.ListCalls("");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(status.error_message(), HasSubstr("missing"));
}

TEST(BearerAuthTest, WrongTokensAreRefusedWithoutEchoingThem) {
  ServiceWithToken service("s3cret");
  for (const std::string bad : {"Bearer s3cre", "Bearer s3cretX", "s3cret", "Bearer S3cret"}) {
    grpc::Status status = service.ListCalls(bad);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << bad;
    EXPECT_EQ(status.error_message(), "wrong bearer token") << bad;
  }
}

TEST(BearerAuthTest, TheRightTokenIsAccepted) {
  ServiceWithToken service("s3cret");
  EXPECT_TRUE(service.ListCalls("Bearer s3cret").ok());
}

}  // namespace
}  // namespace audiosocket
