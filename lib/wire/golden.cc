#include "lib/wire/golden.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace audiosocket::wire::golden {
namespace {

absl::StatusOr<std::vector<uint8_t>> ParseHexBytes(absl::string_view text) {
  std::vector<uint8_t> out;
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (word.size() != 2 || !absl::ascii_isxdigit(word[0]) || !absl::ascii_isxdigit(word[1])) {
      return absl::InvalidArgumentError(absl::StrCat("not a hex byte: \"", word, "\""));
    }
    out.push_back(static_cast<uint8_t>(std::strtoul(std::string(word).c_str(), nullptr, 16)));
  }
  return out;
}

absl::StatusOr<std::vector<uint8_t>> ParseHexRun(absl::string_view text) {
  if (text.size() % 2 != 0) return absl::InvalidArgumentError("odd number of hex digits");
  std::string spaced;
  for (size_t i = 0; i < text.size(); i += 2) absl::StrAppend(&spaced, text.substr(i, 2), " ");
  return ParseHexBytes(spaced);
}

}  // namespace

std::string ExpectedMessage::Get(absl::string_view key) const {
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return "";
}

std::string ExpectedMessage::ToText() const {
  std::string out;
  for (const auto& [k, v] : fields) absl::StrAppend(&out, out.empty() ? "" : " ", k, "=", v);
  return out;
}

absl::StatusOr<std::vector<Vector>> ParseVectors(absl::string_view text, absl::string_view file) {
  std::vector<Vector> vectors;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    auto fail = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(file, ":", line_number, ": ", why));
    };
    // A '#' at the start of a line or after a space or tab starts a comment
    // ("digit=#" is a value).
    for (size_t i = 0; i < line.size(); ++i) {
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = line.substr(0, i);
        break;
      }
    }
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    const size_t colon = line.find(':');
    if (colon == absl::string_view::npos) return fail("expected \"key: value\"");
    const absl::string_view key = line.substr(0, colon);
    const absl::string_view value = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (key == "vector") {
      Vector v;
      v.name = std::string(value);
      v.where = absl::StrCat(file, ":", line_number);
      vectors.push_back(std::move(v));
      continue;
    }
    if (vectors.empty()) return fail("a key before the first \"vector:\"");
    Vector& v = vectors.back();
    if (key == "dialect") {
      if (!ParseDialect(value, &v.dialect)) return fail("dialect is asterisk or extended");
      v.options.dialect = v.dialect;
    } else if (key == "peer") {
      if (value == "server") {
        v.peer = Peer::kServer;
      } else if (value == "asterisk") {
        v.peer = Peer::kAsterisk;
      } else {
        return fail("peer is server or asterisk");
      }
    } else if (key == "policy") {
      if (value == "reject") {
        v.options.unknown_kinds = UnknownKindPolicy::kReject;
      } else if (value == "skip") {
        v.options.unknown_kinds = UnknownKindPolicy::kSkip;
      } else if (value == "keep") {
        v.options.unknown_kinds = UnknownKindPolicy::kKeep;
      } else {
        return fail("policy is reject, skip or keep");
      }
    } else if (key == "max_payload") {
      if (!absl::SimpleAtoi(value, &v.options.max_payload)) return fail("bad max_payload");
    } else if (key == "bytes_per_sample") {
      if (!absl::SimpleAtoi(value, &v.options.audio_bytes_per_sample) ||
          (v.options.audio_bytes_per_sample != 1 && v.options.audio_bytes_per_sample != 2)) {
        return fail("bytes_per_sample is 1 or 2");
      }
    } else if (key == "hex") {
      absl::StatusOr<std::vector<uint8_t>> bytes = ParseHexBytes(value);
      if (!bytes.ok()) return fail(bytes.status().message());
      v.bytes.insert(v.bytes.end(), bytes->begin(), bytes->end());
    } else if (key == "message") {
      ExpectedMessage m;
      for (absl::string_view pair : absl::StrSplit(value, ' ', absl::SkipEmpty())) {
        const size_t eq = pair.find('=');
        if (eq == absl::string_view::npos)
          return fail(absl::StrCat("expected field=value: ", pair));
        m.fields.emplace_back(std::string(pair.substr(0, eq)), std::string(pair.substr(eq + 1)));
      }
      v.messages.push_back(std::move(m));
    } else if (key == "error") {
      std::vector<absl::string_view> words = absl::StrSplit(value, ' ', absl::SkipEmpty());
      if (words.size() != 2 || !absl::ConsumePrefix(&words[1], "offset=") ||
          !absl::SimpleAtoi(words[1], &v.error_offset)) {
        return fail("expected \"error: CODE offset=N\"");
      }
      v.error_code = std::string(words[0]);
      if (v.error_code != "truncated" && ErrorPhrase(v.error_code).empty()) {
        return fail(absl::StrCat("unknown error code ", v.error_code));
      }
    } else if (key == "encode") {
      if (value == "same") {
        v.encode = EncodeCheck::kSame;
      } else if (value == "refused") {
        v.encode = EncodeCheck::kRefused;
      } else {
        return fail("encode is same or refused");
      }
    } else {
      return fail(absl::StrCat("unknown key \"", key, "\""));
    }
  }
  return vectors;
}

absl::StatusOr<std::vector<Vector>> LoadVectorDir(const std::string& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".txt") files.push_back(entry.path());
  }
  if (ec) return absl::NotFoundError(absl::StrCat("cannot list ", dir, ": ", ec.message()));
  std::sort(files.begin(), files.end());
  std::vector<Vector> all;
  for (const auto& path : files) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    absl::StatusOr<std::vector<Vector>> vectors =
        ParseVectors(text.str(), path.filename().string());
    if (!vectors.ok()) return vectors.status();
    for (Vector& v : *vectors) all.push_back(std::move(v));
  }
  return all;
}

std::string VectorDir() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* workspace = std::getenv("TEST_WORKSPACE");
  if (srcdir == nullptr || workspace == nullptr) return "tests/testdata/wire";
  return absl::StrCat(srcdir, "/", workspace, "/tests/testdata/wire");
}

absl::StatusOr<Message> BuildMessage(const ExpectedMessage& expected, Dialect dialect,
                                     absl::Span<const uint8_t> frame) {
  const std::string kind = expected.Get("kind");
  auto number = [&](absl::string_view key) -> absl::StatusOr<uint32_t> {
    uint32_t n = 0;
    if (!absl::SimpleAtoi(expected.Get(key), &n)) {
      return absl::InvalidArgumentError(absl::StrCat("field ", key, " is not a number"));
    }
    return n;
  };
  auto digit = [&]() -> absl::StatusOr<char> {
    const std::string d = expected.Get("digit");
    if (d.size() != 1) return absl::InvalidArgumentError("digit is one character");
    return d[0];
  };
  auto payload = [&]() -> absl::StatusOr<std::vector<uint8_t>> {
    return ParseHexRun(expected.Get("payload"));
  };
  if (kind == "hangup") return Message(Hangup{});
  if (kind == "uuid") {
    absl::StatusOr<CallUuid> uuid = CallUuid::Parse(expected.Get("uuid"));
    if (!uuid.ok()) return uuid.status();
    return Message(*uuid);
  }
  if (kind == "dtmf") {
    absl::StatusOr<char> d = digit();
    absl::StatusOr<uint32_t> duration = number("duration_ms");
    if (!d.ok()) return d.status();
    if (!duration.ok()) return duration.status();
    return Message(DtmfEvent{expected.Get("state") == "start", *d, *duration});
  }
  if (kind == "dtmf_digit") {
    absl::StatusOr<char> d = digit();
    if (!d.ok()) return d.status();
    return Message(DtmfDigit{*d});
  }
  if (kind == "control") {
    absl::StatusOr<uint32_t> code = number("code");
    if (!code.ok()) return code.status();
    return Message(Control{static_cast<uint8_t>(*code)});
  }
  if (kind == "audio") {
    absl::StatusOr<uint32_t> rate = number("rate");
    if (!rate.ok()) return rate.status();
    if (frame.size() < kHeaderSize) return absl::InvalidArgumentError("frame too short");
    return Message(Audio{static_cast<int>(*rate), frame.subspan(kHeaderSize)});
  }
  // Error and Unknown views must outlive this call: take them from the frame,
  // after checking the `payload` field names the same bytes.
  absl::StatusOr<std::vector<uint8_t>> bytes = payload();
  if (!bytes.ok()) return bytes.status();
  if (frame.size() < kHeaderSize ||
      !std::equal(bytes->begin(), bytes->end(), frame.begin() + kHeaderSize, frame.end())) {
    return absl::InvalidArgumentError("payload field differs from the frame's payload bytes");
  }
  if (kind == "error") return Message(Error{frame.subspan(kHeaderSize)});
  uint32_t type = 0;
  if (absl::StartsWith(kind, "unknown(") && absl::SimpleHexAtoi(expected.Get("type"), &type) &&
      type <= 0xff) {
    return Message(Unknown{static_cast<uint8_t>(type), frame.subspan(kHeaderSize)});
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown message kind \"", kind, "\""));
}

void PrintTo(const Vector& vector, std::ostream* os) {
  *os << vector.name << " (" << vector.where << ")";
}

absl::string_view ErrorPhrase(absl::string_view code) {
  if (code == "too_large") return "exceeds the maximum";
  if (code == "unknown_kind") return "kind is not defined in the";
  if (code == "bad_length") return "bytes, expected";
  if (code == "empty_audio") return "audio payload is empty";
  if (code == "odd_audio") return "odd length";
  if (code == "bad_dtmf_state") return "DTMF state";
  if (code == "bad_dtmf_digit") return "DTMF digit";
  return "";
}

}  // namespace audiosocket::wire::golden
