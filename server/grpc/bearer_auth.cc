#include "server/grpc/bearer_auth.h"

namespace audiosocket {

grpc::Status BearerAuth::Check(const grpc::ServerContextBase& context) const {
  if (expected_.empty()) return grpc::Status::OK;
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return CheckHeader(std::nullopt);
  return CheckHeader(std::string_view(it->second.data(), it->second.size()));
}

grpc::Status BearerAuth::CheckHeader(std::optional<std::string_view> authorization) const {
  if (expected_.empty()) return grpc::Status::OK;
  if (!authorization.has_value()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "missing \"authorization: Bearer <token>\" metadata");
  }
  const std::string_view got = *authorization;
  // Compare in constant time: the token is a secret.
  unsigned char diff = got.size() == expected_.size() ? 0 : 1;
  for (size_t i = 0; i < expected_.size(); ++i) {
    diff |= static_cast<unsigned char>(expected_[i] ^ (i < got.size() ? got.data()[i] : 0));
  }
  if (diff != 0) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "wrong bearer token");
  return grpc::Status::OK;
}

}  // namespace audiosocket
