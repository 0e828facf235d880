// The text parts of gRPC over HTTP/2: grpc-timeout, trailers, HTTP status.

#include "lib/grpc_client/grpc_status.h"

#include "gtest/gtest.h"

namespace audiosocket::grpc_client {
namespace {

TEST(GrpcStatusTest, TimeoutUsesTheFinestUnitThatFitsEightDigits) {
  EXPECT_EQ(GrpcTimeoutHeader(absl::Milliseconds(1500)), "1500m");
  EXPECT_EQ(GrpcTimeoutHeader(absl::Microseconds(1)), "1m");  // rounded up
  EXPECT_EQ(GrpcTimeoutHeader(absl::ZeroDuration()), "0m");
  EXPECT_EQ(GrpcTimeoutHeader(absl::Hours(24)), "86400000m");
  EXPECT_EQ(GrpcTimeoutHeader(absl::Hours(24 * 365)), "31536000S");
}

TEST(GrpcStatusTest, TrailersGiveTheStatusWithItsMessageDecoded) {
  EXPECT_TRUE(StatusFromTrailers("0", "").ok());
  absl::Status status = StatusFromTrailers("8", "too%20many calls%");
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(status.message(), "too many calls%");
}

TEST(GrpcStatusTest, AMissingOrBadStatusIsUnknown) {
  EXPECT_EQ(StatusFromTrailers(std::nullopt, "").code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(StatusFromTrailers("x", "").code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(StatusFromTrailers("17", "").code(), absl::StatusCode::kUnknown);
}

TEST(GrpcStatusTest, HttpStatusesMapAsGrpcSpecifies) {
  EXPECT_EQ(StatusCodeForHttpStatus(404), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(StatusCodeForHttpStatus(503), absl::StatusCode::kUnavailable);
  EXPECT_EQ(StatusCodeForHttpStatus(401), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(StatusCodeForHttpStatus(418), absl::StatusCode::kUnknown);
}

TEST(GrpcStatusTest, PercentDecodingLeavesBadEscapesAsSent) {
  EXPECT_EQ(PercentDecode("a%2Cb%zz%4"), "a,b%zz%4");
}

TEST(GrpcStatusTest, TimeoutHeadersParseInEveryUnit) {
  EXPECT_EQ(ParseGrpcTimeout("1500m"), absl::Milliseconds(1500));
  EXPECT_EQ(ParseGrpcTimeout("2H"), absl::Hours(2));
  EXPECT_EQ(ParseGrpcTimeout("3M"), absl::Minutes(3));
  EXPECT_EQ(ParseGrpcTimeout("4S"), absl::Seconds(4));
  EXPECT_EQ(ParseGrpcTimeout("5u"), absl::Microseconds(5));
  EXPECT_EQ(ParseGrpcTimeout("6n"), absl::Nanoseconds(6));
  EXPECT_EQ(ParseGrpcTimeout(GrpcTimeoutHeader(absl::Seconds(30))), absl::Seconds(30));
}

TEST(GrpcStatusTest, MalformedTimeoutHeadersAreRefused) {
  EXPECT_EQ(ParseGrpcTimeout(""), std::nullopt);
  EXPECT_EQ(ParseGrpcTimeout("m"), std::nullopt);
  EXPECT_EQ(ParseGrpcTimeout("10x"), std::nullopt);
  EXPECT_EQ(ParseGrpcTimeout("1-0S"), std::nullopt);
  EXPECT_EQ(ParseGrpcTimeout("123456789S"), std::nullopt);  // 9 digits
}

TEST(GrpcStatusTest, PercentEncodingRoundTripsAndKeepsPrintableText) {
  EXPECT_EQ(PercentEncode("no worker: 50% busy\n"), "no worker: 50%25 busy%0A");
  EXPECT_EQ(PercentEncode("caf\xc3\xa9"), "caf%C3%A9");
  EXPECT_EQ(PercentDecode(PercentEncode("caf\xc3\xa9 100%\t")), "caf\xc3\xa9 100%\t");
}

}  // namespace
}  // namespace audiosocket::grpc_client
