// Replays every file of the committed seed corpus (corpus/wire_decoder/)
// through the fuzz target's property, built with gcc as part of the tests.
// One test case per file.

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/fuzz/wire_decoder_fuzz.h"
#include "tests/support/subprocess.h"

namespace audiosocket::fuzz {
namespace {

std::vector<std::string> CorpusFiles() {
  std::vector<std::string> names;
  std::error_code ec;
  const std::string dir = testing::RunfilePath("tests/fuzz/corpus/wire_decoder");
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<uint8_t> ReadFile(const std::string& name) {
  std::ifstream in(testing::RunfilePath(absl::StrCat("tests/fuzz/corpus/wire_decoder/", name)),
                   std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

TEST(WireDecoderCorpusTest, CorpusIsThere) { EXPECT_GE(CorpusFiles().size(), 60u); }

class WireDecoderCorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(WireDecoderCorpusTest, RoundTripPropertyHolds) {
  const std::vector<uint8_t> input = ReadFile(GetParam());
  ASSERT_FALSE(input.empty());
  EXPECT_EQ(CheckWireRoundTrip(input.data(), input.size()), "");
  // Every config byte over the same stream, as the fuzzer may mutate it.
  std::vector<uint8_t> variant = input;
  for (int config = 0; config < 256; ++config) {
    variant[0] = static_cast<uint8_t>(config);
    ASSERT_EQ(CheckWireRoundTrip(variant.data(), variant.size()), "") << "config " << config;
  }
  EXPECT_EQ(LLVMFuzzerTestOneInput(input.data(), input.size()), 0);
}

INSTANTIATE_TEST_SUITE_P(Corpus, WireDecoderCorpusTest, ::testing::ValuesIn(CorpusFiles()),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           for (char& c : name) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace audiosocket::fuzz
