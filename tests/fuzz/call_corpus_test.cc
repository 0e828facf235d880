// Replays a call fuzz target's committed corpus (FUZZ_TARGET, set by the
// BUILD rule: call_session or backend_commands) through its property, built
// with gcc as part of the tests. One test case per file.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/fuzz/call_fuzz.h"
#include "tests/support/subprocess.h"

namespace audiosocket::fuzz {
namespace {

std::string CorpusDir() {
  return testing::RunfilePath(absl::StrCat("tests/fuzz/corpus/", FUZZ_TARGET));
}

std::vector<std::string> CorpusFiles() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(CorpusDir(), ec)) {
    if (entry.is_regular_file()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(CallCorpusTest, CorpusIsThere) { EXPECT_GE(CorpusFiles().size(), 10u); }

class CallCorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CallCorpusTest, PropertiesHold) {
  std::ifstream in(absl::StrCat(CorpusDir(), "/", GetParam()), std::ios::binary);
  const std::vector<uint8_t> input(std::istreambuf_iterator<char>(in), {});
  ASSERT_FALSE(input.empty());
  EXPECT_EQ(LLVMFuzzerTestOneInput(input.data(), input.size()), 0);
}

INSTANTIATE_TEST_SUITE_P(Corpus, CallCorpusTest, ::testing::ValuesIn(CorpusFiles()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace audiosocket::fuzz
