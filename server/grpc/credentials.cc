#include "server/grpc/credentials.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace audiosocket {
namespace {

// The contents of `path`; the error names `setting`.
absl::StatusOr<std::string> ReadSettingFile(absl::string_view setting, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(setting, ": cannot read \"", path, "\": ", std::strerror(errno)));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    const BridgeConfig& config) {
  if (config.tls_cert_file.empty() && config.tls_key_file.empty()) {
    if (!config.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "tls_client_ca_file: mutual TLS needs --tls_cert_file and --tls_key_file too");
    }
    return grpc::InsecureServerCredentials();
  }
  if (config.tls_cert_file.empty() || config.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "tls_cert_file: TLS needs both --tls_cert_file and --tls_key_file");
  }
  auto cert = ReadSettingFile("tls_cert_file", config.tls_cert_file);
  if (!cert.ok()) return cert.status();
  auto key = ReadSettingFile("tls_key_file", config.tls_key_file);
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!config.tls_client_ca_file.empty()) {
    auto ca = ReadSettingFile("tls_client_ca_file", config.tls_client_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> BackendCredentialsFor(
    const BridgeConfig& config) {
  if (config.backend_tls_ca_file.empty() && config.backend_tls_cert_file.empty()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  if (!config.backend_tls_ca_file.empty()) {
    auto ca = ReadSettingFile("backend_tls_ca_file", config.backend_tls_ca_file);
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
  }
  if (!config.backend_tls_cert_file.empty()) {
    if (config.backend_tls_key_file.empty()) {
      return absl::InvalidArgumentError("backend_tls_key_file: a client certificate needs its key");
    }
    auto cert = ReadSettingFile("backend_tls_cert_file", config.backend_tls_cert_file);
    if (!cert.ok()) return cert.status();
    auto key = ReadSettingFile("backend_tls_key_file", config.backend_tls_key_file);
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace audiosocket
