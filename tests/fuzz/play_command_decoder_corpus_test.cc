// Replays every file of the committed seed corpus
// (corpus/play_command_decoder/) through the fuzz target's property, built
// with gcc as part of the tests: each file as it is, each of its prefixes,
// and each with one byte changed at every position.

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fuzz/corpus.h"
#include "tests/fuzz/play_command_decoder_fuzz.h"

namespace audiosocket::fuzz {
namespace {

constexpr char kTarget[] = "play_command_decoder";

TEST(PlayCommandDecoderCorpusTest, CorpusIsThere) { EXPECT_GE(CorpusFiles(kTarget).size(), 10u); }

class PlayCommandDecoderCorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PlayCommandDecoderCorpusTest, DecoderAgreesWithProtobuf) {
  const std::vector<uint8_t> input = ReadCorpusFile(kTarget, GetParam());
  ASSERT_FALSE(input.empty());
  EXPECT_EQ(CheckPlayCommandDecoder(input.data(), input.size()), "");
  EXPECT_EQ(LLVMFuzzerTestOneInput(input.data(), input.size()), 0);
  for (size_t size = 0; size < input.size(); ++size) {
    ASSERT_EQ(CheckPlayCommandDecoder(input.data(), size), "") << "prefix of " << size;
  }
  // Small files only: every position, a few values each.
  if (input.size() > 512) return;
  std::vector<uint8_t> variant = input;
  for (size_t at = 0; at < input.size(); ++at) {
    for (uint8_t value : {0x00, 0x01, 0x02, 0x0a, 0x10, 0x1a, 0x2a, 0x7f, 0x80, 0xff}) {
      variant[at] = value;
      ASSERT_EQ(CheckPlayCommandDecoder(variant.data(), variant.size()), "")
          << "byte " << at << " set to " << int{value};
    }
    variant[at] = input[at];
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, PlayCommandDecoderCorpusTest,
                         ::testing::ValuesIn(CorpusFiles(kTarget)), CorpusCaseName);

}  // namespace
}  // namespace audiosocket::fuzz
