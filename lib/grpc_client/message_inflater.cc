#include "lib/grpc_client/message_inflater.h"

#include <zlib.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace audiosocket::grpc_client {

absl::StatusOr<MessageEncoding> ParseMessageEncoding(absl::string_view header) {
  const std::string name = absl::AsciiStrToLower(absl::StripAsciiWhitespace(header));
  if (name.empty() || name == "identity") return MessageEncoding::kIdentity;
  if (name == "gzip") return MessageEncoding::kGzip;
  if (name == "deflate") return MessageEncoding::kDeflate;
  return absl::UnimplementedError(absl::StrCat("messages compressed with \"", name,
                                               "\" cannot be read here; send them uncompressed, or "
                                               "compressed with gzip or deflate"));
}

struct MessageInflater::Zlib {
  z_stream stream{};
};

MessageInflater::MessageInflater(MessageEncoding encoding) : encoding_(encoding) {}

MessageInflater::~MessageInflater() {
  if (zlib_ != nullptr) inflateEnd(&zlib_->stream);
}

absl::Status MessageInflater::Inflate(absl::string_view compressed, size_t max_bytes,
                                      std::string* out) {
  out->clear();
  if (zlib_ == nullptr) {
    auto zlib = std::make_unique<Zlib>();
    // gRPC's "deflate" is the zlib format (RFC 1950); 16 more asks for gzip's.
    const int window_bits = encoding_ == MessageEncoding::kGzip ? 15 + 16 : 15;
    if (inflateInit2(&zlib->stream, window_bits) != Z_OK) {
      return absl::ResourceExhaustedError("zlib could not start inflating a message");
    }
    zlib_ = std::move(zlib);
  } else if (inflateReset(&zlib_->stream) != Z_OK) {
    return absl::InternalError("zlib could not be reset for the next message");
  }
  z_stream& stream = zlib_->stream;
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  // Grows as it fills, to one byte past the limit at most, so passing the
  // limit is seen without holding more.
  size_t size = std::min(max_bytes + 1, std::max<size_t>(256, compressed.size() * 4));
  for (;;) {
    out->resize(size);
    stream.next_out = reinterpret_cast<Bytef*>(out->data()) + stream.total_out;
    stream.avail_out = static_cast<uInt>(size - stream.total_out);
    const int result = inflate(&stream, Z_FINISH);
    if (stream.total_out > max_bytes) {
      out->clear();
      return absl::ResourceExhaustedError(absl::StrCat(
          "a compressed message inflates to more than the limit of ", max_bytes, " bytes"));
    }
    if (result == Z_STREAM_END) break;
    const bool wants_room = result == Z_BUF_ERROR && stream.avail_out == 0;
    if (result != Z_OK && !wants_room) {
      out->clear();
      std::string why;
      if (stream.msg != nullptr) {
        why = absl::StrCat(": ", stream.msg);
      } else if (stream.avail_in == 0) {
        why = ": it ends early";
      }
      return absl::InternalError(
          absl::StrCat("a message flagged compressed is not valid ",
                       encoding_ == MessageEncoding::kGzip ? "gzip" : "deflate", " data", why));
    }
    if (stream.avail_out == 0) size = std::min(max_bytes + 1, size * 2);
  }
  if (stream.avail_in != 0) {
    out->clear();
    return absl::InternalError("a compressed message has bytes after its end");
  }
  out->resize(stream.total_out);
  return absl::OkStatus();
}

}  // namespace audiosocket::grpc_client
