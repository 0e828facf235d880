// Replays every file of the committed seed corpus (corpus/wire_decoder/)
// through the fuzz target's property, built with gcc as part of the tests.
// One test case per file.

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fuzz/corpus.h"
#include "tests/fuzz/wire_decoder_fuzz.h"

namespace audiosocket::fuzz {
namespace {

constexpr char kTarget[] = "wire_decoder";

TEST(WireDecoderCorpusTest, CorpusIsThere) { EXPECT_GE(CorpusFiles(kTarget).size(), 60u); }

class WireDecoderCorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(WireDecoderCorpusTest, RoundTripPropertyHolds) {
  const std::vector<uint8_t> input = ReadCorpusFile(kTarget, GetParam());
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

INSTANTIATE_TEST_SUITE_P(Corpus, WireDecoderCorpusTest, ::testing::ValuesIn(CorpusFiles(kTarget)),
                         CorpusCaseName);

}  // namespace
}  // namespace audiosocket::fuzz
