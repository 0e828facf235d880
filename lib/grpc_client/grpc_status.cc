#include "lib/grpc_client/grpc_status.h"

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace audiosocket::grpc_client {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string GrpcTimeoutHeader(absl::Duration timeout) {
  constexpr int64_t kMaxValue = 99999999;  // 8 digits
  if (timeout < absl::ZeroDuration()) timeout = absl::ZeroDuration();
  struct Unit {
    absl::Duration length;
    char name;
  };
  for (const Unit& unit : {Unit{absl::Milliseconds(1), 'm'}, Unit{absl::Seconds(1), 'S'},
                           Unit{absl::Minutes(1), 'M'}, Unit{absl::Hours(1), 'H'}}) {
    const int64_t value = absl::ToInt64Milliseconds(absl::Ceil(timeout, unit.length)) /
                          absl::ToInt64Milliseconds(unit.length);
    if (value <= kMaxValue) return absl::StrCat(value, std::string(1, unit.name));
  }
  return absl::StrCat(kMaxValue, "H");
}

std::optional<absl::Duration> ParseGrpcTimeout(absl::string_view text) {
  if (text.size() < 2 || text.size() > 9) return std::nullopt;
  int64_t value = 0;
  for (char c : text.substr(0, text.size() - 1)) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  switch (text.back()) {
    case 'H':
      return absl::Hours(value);
    case 'M':
      return absl::Minutes(value);
    case 'S':
      return absl::Seconds(value);
    case 'm':
      return absl::Milliseconds(value);
    case 'u':
      return absl::Microseconds(value);
    case 'n':
      return absl::Nanoseconds(value);
    default:
      return std::nullopt;
  }
}

std::string PercentEncode(absl::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte > 0x7e || c == '%') {
      out.push_back('%');
      out.push_back(kHex[byte >> 4]);
      out.push_back(kHex[byte & 0xf]);
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string PercentDecode(absl::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int high = HexValue(text[i + 1]);
      const int low = HexValue(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

absl::Status StatusFromTrailers(std::optional<absl::string_view> grpc_status,
                                absl::string_view grpc_message) {
  int code = 0;
  if (!grpc_status.has_value() || !absl::SimpleAtoi(*grpc_status, &code) || code < 0 || code > 16) {
    return absl::UnknownError(
        absl::StrCat("the backend's response had no valid grpc-status",
                     grpc_status.has_value() ? absl::StrCat(" (\"", *grpc_status, "\")") : ""));
  }
  if (code == 0) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(code), PercentDecode(grpc_message));
}

absl::StatusCode StatusCodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 400:
      return absl::StatusCode::kInternal;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kUnimplemented;
    case 429:
    case 502:
    case 503:
    case 504:
      return absl::StatusCode::kUnavailable;
    default:
      return absl::StatusCode::kUnknown;
  }
}

}  // namespace audiosocket::grpc_client
