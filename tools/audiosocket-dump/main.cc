// audiosocket-dump: reads a raw AudioSocket byte stream (a file, or stdin)
// and prints one JSON line per message. On malformed input it prints the
// messages before the fault, then the error on stderr, and exits 1.
//
//   audiosocket-dump [--dialect=asterisk|extended] [--unknown=reject|skip|keep]
//                    [--max_payload=N] [--bytes_per_sample=2|1] [FILE|-]
//
// Exit status: 0 the stream decoded completely; 1 malformed or truncated
// input; 2 usage or I/O error.

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "lib/wire/describe.h"
#include "lib/wire/wire.h"

ABSL_FLAG(std::string, dialect, "asterisk",
          "asterisk (stock Asterisk: 0x03 is a DTMF digit) or extended (0x02 DTMF start/stop, "
          "0x03 control)");
ABSL_FLAG(std::string, unknown, "reject",
          "kinds the dialect does not define: reject (an error), skip (drop them), keep (print "
          "them with their payload)");
ABSL_FLAG(uint32_t, max_payload, 65535, "largest payload accepted, in bytes");
ABSL_FLAG(int, bytes_per_sample, 2,
          "audio sample size: 2 for signed linear (odd lengths are errors), 1 for G.711");

namespace {

using audiosocket::wire::Decoder;
using audiosocket::wire::DecoderOptions;

int Usage(const std::string& message) {
  std::fprintf(stderr, "audiosocket-dump: %s\n(see audiosocket-dump --help)\n", message.c_str());
  return 2;
}

int Fail(const std::string& message) {
  std::fflush(stdout);
  std::fprintf(stderr, "audiosocket-dump: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Prints one JSON line per AudioSocket message of a raw byte stream.\n"
      "usage: audiosocket-dump [--dialect=asterisk|extended] [--unknown=reject|skip|keep] "
      "[--max_payload=N] [--bytes_per_sample=2|1] [FILE|-]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);

  DecoderOptions options;
  if (!audiosocket::wire::ParseDialect(absl::GetFlag(FLAGS_dialect), &options.dialect)) {
    return Usage(absl::StrCat("--dialect must be asterisk or extended, not \"",
                              absl::GetFlag(FLAGS_dialect), "\""));
  }
  const std::string unknown = absl::GetFlag(FLAGS_unknown);
  if (unknown == "reject") {
    options.unknown_kinds = audiosocket::wire::UnknownKindPolicy::kReject;
  } else if (unknown == "skip") {
    options.unknown_kinds = audiosocket::wire::UnknownKindPolicy::kSkip;
  } else if (unknown == "keep") {
    options.unknown_kinds = audiosocket::wire::UnknownKindPolicy::kKeep;
  } else {
    return Usage(absl::StrCat("--unknown must be reject, skip or keep, not \"", unknown, "\""));
  }
  options.max_payload = absl::GetFlag(FLAGS_max_payload);
  options.audio_bytes_per_sample = absl::GetFlag(FLAGS_bytes_per_sample);
  if (options.audio_bytes_per_sample != 1 && options.audio_bytes_per_sample != 2) {
    return Usage("--bytes_per_sample must be 2 (signed linear) or 1 (G.711)");
  }
  if (args.size() > 2) return Usage("at most one input file");

  const std::string path = args.size() == 2 ? args[1] : "-";
  const std::string name = path == "-" ? "stdin" : path;
  int fd = STDIN_FILENO;
  if (path != "-") {
    fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      std::fprintf(stderr, "audiosocket-dump: cannot open %s: %s\n", path.c_str(),
                   std::strerror(errno));
      return 2;
    }
  }

  Decoder decoder(options);
  while (true) {
    absl::Span<uint8_t> room = decoder.PrepareWrite(64 * 1024);
    const ssize_t n = read(fd, room.data(), room.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fflush(stdout);
      std::fprintf(stderr, "audiosocket-dump: reading %s: %s\n", name.c_str(),
                   std::strerror(errno));
      return 2;
    }
    if (n == 0) break;
    decoder.Commit(static_cast<size_t>(n));
    while (true) {
      absl::StatusOr<std::optional<audiosocket::wire::Message>> next = decoder.Next();
      if (!next.ok()) return Fail(std::string(next.status().message()));
      if (!next->has_value()) break;
      const audiosocket::wire::Message& message = **next;
      std::vector<audiosocket::wire::Field> fields = {
          {"offset", absl::StrCat(decoder.consumed() - audiosocket::wire::EncodedSize(message)),
           true}};
      for (auto& field : audiosocket::wire::DescribeMessage(message, options.dialect,
                                                            options.audio_bytes_per_sample)) {
        fields.push_back(std::move(field));
      }
      std::string line = audiosocket::wire::FieldsToJson(fields);
      line.push_back('\n');
      std::fwrite(line.data(), 1, line.size(), stdout);
    }
  }
  if (decoder.buffered() > 0) {
    return Fail(absl::StrCat("truncated message at offset ", decoder.consumed(), ": ", name,
                             " ends after ", decoder.buffered(),
                             " bytes of it (a header is 3 bytes, then the payload length it "
                             "gives)"));
  }
  if (std::fflush(stdout) != 0) return 2;
  return 0;
}
