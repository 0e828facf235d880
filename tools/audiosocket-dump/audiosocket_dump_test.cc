// Runs the real audiosocket-dump binary over every golden vector and checks
// its JSON lines against the vector's messages, its exit status, and that
// errors go to stderr after the messages that preceded them.

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/wire/golden.h"
#include "tests/support/subprocess.h"

namespace audiosocket::wire {
namespace {

using ::testing::HasSubstr;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/", name);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs the binary with `args`, stdin from `stdin_path`, capturing stdout and
// stderr separately.
Result RunDump(const std::vector<std::string>& args, const std::string& stdin_path = "/dev/null") {
  std::vector<std::string> argv = {testing::RunfilePath("tools/audiosocket-dump/audiosocket-dump")};
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string out_path = TempPath("dump.out");
  const std::string err_path = TempPath("dump.err");
  const pid_t pid = fork();
  if (pid == 0) {
    const int in = open(stdin_path.c_str(), O_RDONLY);
    const int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || err < 0) _exit(127);
    dup2(in, STDIN_FILENO);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    std::vector<char*> cargs;
    for (std::string& a : argv) cargs.push_back(a.data());
    cargs.push_back(nullptr);
    execv(cargs[0], cargs.data());
    _exit(127);
  }
  Result r;
  int status = 0;
  if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) {
    r.exit_code = WEXITSTATUS(status);
  }
  r.out = ReadAll(out_path);
  r.err = ReadAll(err_path);
  return r;
}

// A flat JSON object of strings and numbers as key=value pairs (numbers and
// strings alike as text). Returns false on anything else.
bool ParseFlatJson(absl::string_view json, std::vector<std::pair<std::string, std::string>>* out) {
  size_t i = 0;
  auto string = [&](std::string* s) {
    if (i >= json.size() || json[i] != '"') return false;
    for (++i; i < json.size() && json[i] != '"'; ++i) {
      if (json[i] == '\\') {
        if (++i >= json.size()) return false;
      }
      s->push_back(json[i]);
    }
    return i++ < json.size();
  };
  if (json.empty() || json[i++] != '{') return false;
  while (i < json.size() && json[i] != '}') {
    std::string key, value;
    if (!string(&key) || i >= json.size() || json[i++] != ':') return false;
    if (i < json.size() && json[i] == '"') {
      if (!string(&value)) return false;
    } else {
      while (i < json.size() && (std::isdigit(static_cast<unsigned char>(json[i])) != 0)) {
        value.push_back(json[i++]);
      }
      if (value.empty()) return false;
    }
    out->emplace_back(key, value);
    if (i < json.size() && json[i] == ',') ++i;
  }
  return i + 1 == json.size();
}

std::vector<std::string> Flags(const golden::Vector& v) {
  const char* policy[] = {"reject", "skip", "keep"};
  return {absl::StrCat("--dialect=", DialectName(v.dialect)),
          absl::StrCat("--unknown=", policy[static_cast<int>(v.options.unknown_kinds)]),
          absl::StrCat("--max_payload=", v.options.max_payload),
          absl::StrCat("--bytes_per_sample=", v.options.audio_bytes_per_sample)};
}

std::vector<golden::Vector> AllVectors() {
  absl::StatusOr<std::vector<golden::Vector>> v = golden::LoadVectorDir(golden::VectorDir());
  return v.ok() ? *v : std::vector<golden::Vector>();
}

class DumpGoldenTest : public ::testing::TestWithParam<golden::Vector> {};

TEST_P(DumpGoldenTest, PrintsTheVectorsMessagesAndExitStatus) {
  const golden::Vector& v = GetParam();
  SCOPED_TRACE(v.where);
  const std::string input = TempPath("input.bin");
  {
    std::ofstream f(input, std::ios::binary);
    f.write(reinterpret_cast<const char*>(v.bytes.data()), static_cast<long>(v.bytes.size()));
  }
  std::vector<std::string> args = Flags(v);
  args.push_back(input);
  const Result r = RunDump(args);

  std::vector<std::string> lines = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), v.messages.size()) << r.out << r.err;
  uint64_t offset = 0;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::vector<std::pair<std::string, std::string>> fields;
    ASSERT_TRUE(ParseFlatJson(lines[i], &fields)) << lines[i];
    ASSERT_FALSE(fields.empty());
    // The first field is the message's offset, then exactly the vector's fields.
    EXPECT_EQ(fields[0].first, "offset");
    if (v.options.unknown_kinds != UnknownKindPolicy::kSkip) {  // skipped bytes count too
      EXPECT_EQ(fields[0].second, absl::StrCat(offset));
    }
    fields.erase(fields.begin());
    EXPECT_EQ(fields, v.messages[i].fields) << lines[i];
    uint32_t length = 0;
    ASSERT_TRUE(absl::SimpleAtoi(v.messages[i].Get("length"), &length));
    offset += kHeaderSize + length;
  }
  if (v.error_code.empty()) {
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.err, "");
  } else {
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_THAT(r.err, ::testing::StartsWith("audiosocket-dump: "));
    EXPECT_THAT(r.err, HasSubstr(absl::StrCat(" at offset ", v.error_offset, ":")));
    if (v.error_code == "truncated") {
      EXPECT_THAT(r.err, HasSubstr("truncated message"));
    } else {
      EXPECT_THAT(r.err, HasSubstr(std::string(golden::ErrorPhrase(v.error_code))));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Vectors, DumpGoldenTest, ::testing::ValuesIn(AllVectors()),
                         [](const auto& info) { return info.param.name; });

TEST(DumpTest, ReadsStdin) {
  const std::string input = TempPath("stdin.bin");
  {
    std::ofstream f(input, std::ios::binary);
    f.write("\x03\x00\x01\x04\x00\x00\x00", 7);
  }
  const Result r = RunDump({"--dialect=extended", "-"}, input);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out,
            "{\"offset\":0,\"type\":\"0x03\",\"kind\":\"control\",\"length\":1,\"code\":4,"
            "\"control\":\"answer\"}\n"
            "{\"offset\":4,\"type\":\"0x00\",\"kind\":\"hangup\",\"length\":0}\n");
  const Result no_arg = RunDump({"--dialect=extended"}, input);
  EXPECT_EQ(no_arg.out, r.out);
}

TEST(DumpTest, EmptyInputIsNoMessages) {
  const Result r = RunDump({});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "");
}

TEST(DumpTest, UsageErrorsExit2) {
  for (const std::vector<std::string>& args : {std::vector<std::string>{"--dialect=pbx"},
                                               {"--unknown=maybe"},
                                               {"--bytes_per_sample=3"},
                                               {"a", "b"},
                                               {TempPath("does-not-exist")}}) {
    const Result r = RunDump(args);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_THAT(r.err, HasSubstr("audiosocket-dump: ")) << args[0];
    EXPECT_EQ(r.out, "");
  }
}

}  // namespace
}  // namespace audiosocket::wire
