#include "lib/grpc_client/message_reader.h"

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
      if (pending_.size() == kMessagePrefixBytes) {
        if (pending_[0] != 0) {
          return absl::InternalError(
              "the backend sent a compressed message, which was not asked for");
        }
        const uint32_t length = ReadBigEndian32(pending_.data() + 1);
        if (length > max_message_bytes_) {
          return absl::ResourceExhaustedError(absl::StrCat("the backend sent a message of ", length,
                                                           " bytes, more than the limit of ",
                                                           max_message_bytes_));
        }
        if (length == 0) {
          on_message(absl::string_view());
          pending_.clear();
        }
        continue;
      }
      if (pending_.size() > kMessagePrefixBytes &&
          pending_.size() == kMessagePrefixBytes + ReadBigEndian32(pending_.data() + 1)) {
        on_message(absl::string_view(pending_).substr(kMessagePrefixBytes));
        pending_.clear();
      }
      continue;
    }
    if (data[0] != 0) {
      return absl::InternalError("the backend sent a compressed message, which was not asked for");
    }
    const uint32_t length = ReadBigEndian32(data.data() + 1);
    if (length > max_message_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat("the backend sent a message of ", length,
                                                       " bytes, more than the limit of ",
                                                       max_message_bytes_));
    }
    if (data.size() < kMessagePrefixBytes + length) {
      pending_.assign(data.data(), data.size());
      return absl::OkStatus();
    }
    on_message(data.substr(kMessagePrefixBytes, length));
    data.remove_prefix(kMessagePrefixBytes + length);
  }
  return absl::OkStatus();
}

}  // namespace audiosocket::grpc_client
