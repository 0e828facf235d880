#include "lib/grpc_client/message_reader.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"

namespace audiosocket::grpc_client {
namespace {

uint32_t ReadBigEndian32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}

}  // namespace

void AppendMessagePrefix(size_t message_bytes, std::string* out) {
  const auto n = static_cast<uint32_t>(message_bytes);
  const char prefix[kMessagePrefixBytes] = {0, static_cast<char>(n >> 24),
                                            static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                                            static_cast<char>(n)};
  out->append(prefix, kMessagePrefixBytes);
}

void MessageReader::set_encoding(MessageEncoding encoding) {
  inflater_.reset();
  if (encoding != MessageEncoding::kIdentity) {
    inflater_ = std::make_unique<MessageInflater>(encoding);
  }
}

absl::Status MessageReader::CheckPrefix(const char* prefix) const {
  const auto flag = static_cast<unsigned char>(prefix[0]);
  if (flag > 1) {
    return absl::InternalError(
        absl::StrCat("a message's compressed flag is ", flag, "; gRPC allows only 0 and 1"));
  }
  if (flag == 1 && inflater_ == nullptr) {
    return absl::InternalError(
        "the backend sent a compressed message, which was not asked for, without naming gzip or "
        "deflate as its grpc-encoding");
  }
  const uint32_t length = ReadBigEndian32(prefix + 1);
  if (length > max_message_bytes_) {
    return absl::ResourceExhaustedError(absl::StrCat("the backend sent a message of ", length,
                                                     " bytes, more than the limit of ",
                                                     max_message_bytes_));
  }
  return absl::OkStatus();
}

absl::Status MessageReader::Deliver(bool compressed, absl::string_view message,
                                    absl::FunctionRef<void(absl::string_view)> on_message) {
  if (!compressed) {
    on_message(message);
    return absl::OkStatus();
  }
  absl::Status inflated = inflater_->Inflate(message, max_message_bytes_, &inflated_);
  if (!inflated.ok()) return inflated;
  on_message(inflated_);
  return absl::OkStatus();
}

absl::Status MessageReader::Feed(absl::string_view data,
                                 absl::FunctionRef<void(absl::string_view)> on_message) {
  // Whole messages are handed out straight from `data`; only a message cut
  // by the end of `data` is copied.
  while (!data.empty()) {
    if (!pending_.empty() || data.size() < kMessagePrefixBytes) {
      const size_t have = pending_.size();
      size_t need = kMessagePrefixBytes;
      if (have >= kMessagePrefixBytes) need += ReadBigEndian32(pending_.data() + 1);
      const size_t take = std::min(need - have, data.size());
      pending_.append(data.data(), take);
      data.remove_prefix(take);
      if (pending_.size() < kMessagePrefixBytes) continue;
      if (have < kMessagePrefixBytes) {
        if (absl::Status prefix = CheckPrefix(pending_.data()); !prefix.ok()) return prefix;
      }
      if (pending_.size() == kMessagePrefixBytes + ReadBigEndian32(pending_.data() + 1)) {
        absl::Status delivered = Deliver(
            pending_[0] != 0, absl::string_view(pending_).substr(kMessagePrefixBytes), on_message);
        pending_.clear();
        if (!delivered.ok()) return delivered;
      }
      continue;
    }
    if (absl::Status prefix = CheckPrefix(data.data()); !prefix.ok()) return prefix;
    const uint32_t length = ReadBigEndian32(data.data() + 1);
    if (data.size() < kMessagePrefixBytes + length) {
      pending_.assign(data.data(), data.size());
      return absl::OkStatus();
    }
    absl::Status delivered =
        Deliver(data[0] != 0, data.substr(kMessagePrefixBytes, length), on_message);
    if (!delivered.ok()) return delivered;
    data.remove_prefix(kMessagePrefixBytes + length);
  }
  return absl::OkStatus();
}

}  // namespace audiosocket::grpc_client
