#include "server/backend/grpc_status_convert.h"

#include "gtest/gtest.h"

namespace audiosocket {
namespace {

// Each pair is written out by name rather than derived by a cast, so a
// mapping that shifted or swapped codes fails here.
struct CodePair {
  grpc::StatusCode grpc;
  absl::StatusCode absl;
};

constexpr CodePair kCodes[] = {
    {grpc::StatusCode::OK, absl::StatusCode::kOk},
    {grpc::StatusCode::CANCELLED, absl::StatusCode::kCancelled},
    {grpc::StatusCode::UNKNOWN, absl::StatusCode::kUnknown},
    {grpc::StatusCode::INVALID_ARGUMENT, absl::StatusCode::kInvalidArgument},
    {grpc::StatusCode::DEADLINE_EXCEEDED, absl::StatusCode::kDeadlineExceeded},
    {grpc::StatusCode::NOT_FOUND, absl::StatusCode::kNotFound},
    {grpc::StatusCode::ALREADY_EXISTS, absl::StatusCode::kAlreadyExists},
    {grpc::StatusCode::PERMISSION_DENIED, absl::StatusCode::kPermissionDenied},
    {grpc::StatusCode::RESOURCE_EXHAUSTED, absl::StatusCode::kResourceExhausted},
    {grpc::StatusCode::FAILED_PRECONDITION, absl::StatusCode::kFailedPrecondition},
    {grpc::StatusCode::ABORTED, absl::StatusCode::kAborted},
    {grpc::StatusCode::OUT_OF_RANGE, absl::StatusCode::kOutOfRange},
    {grpc::StatusCode::UNIMPLEMENTED, absl::StatusCode::kUnimplemented},
    {grpc::StatusCode::INTERNAL, absl::StatusCode::kInternal},
    {grpc::StatusCode::UNAVAILABLE, absl::StatusCode::kUnavailable},
    {grpc::StatusCode::DATA_LOSS, absl::StatusCode::kDataLoss},
    {grpc::StatusCode::UNAUTHENTICATED, absl::StatusCode::kUnauthenticated},
};

TEST(GrpcStatusConvert, EachGrpcCodeBecomesTheAbslCodeOfTheSameMeaning) {
  for (const CodePair& pair : kCodes) {
    EXPECT_EQ(ToAbsl(grpc::Status(pair.grpc, "")).code(), pair.absl)
        << "grpc code " << static_cast<int>(pair.grpc);
  }
}

TEST(GrpcStatusConvert, EachAbslCodeBecomesTheGrpcCodeOfTheSameMeaning) {
  for (const CodePair& pair : kCodes) {
    EXPECT_EQ(ToGrpc(absl::Status(pair.absl, "")).error_code(), pair.grpc)
        << "absl code " << absl::StatusCodeToString(pair.absl);
  }
}

TEST(GrpcStatusConvert, OkStaysOkBothWays) {
  EXPECT_TRUE(ToAbsl(grpc::Status::OK).ok());
  EXPECT_TRUE(ToGrpc(absl::OkStatus()).ok());
}

TEST(GrpcStatusConvert, TheMessageIsKeptBothWays) {
  const absl::Status from_grpc =
      ToAbsl(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many calls"));
  EXPECT_EQ(from_grpc.message(), "too many calls");

  const grpc::Status from_absl = ToGrpc(absl::UnavailableError("backend went away"));
  EXPECT_EQ(from_absl.error_message(), "backend went away");
}

}  // namespace
}  // namespace audiosocket
