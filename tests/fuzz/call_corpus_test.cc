// Replays a call fuzz target's committed corpus (FUZZ_TARGET, set by the
// BUILD rule: call_session or backend_commands) through its property, built
// with gcc as part of the tests. One test case per file.

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/fuzz/call_fuzz.h"
#include "tests/fuzz/corpus.h"

namespace audiosocket::fuzz {
namespace {

TEST(CallCorpusTest, CorpusIsThere) { EXPECT_GE(CorpusFiles(FUZZ_TARGET).size(), 10u); }

class CallCorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CallCorpusTest, PropertiesHold) {
  const std::vector<uint8_t> input = ReadCorpusFile(FUZZ_TARGET, GetParam());
  ASSERT_FALSE(input.empty());
  EXPECT_EQ(LLVMFuzzerTestOneInput(input.data(), input.size()), 0);
}

INSTANTIATE_TEST_SUITE_P(Corpus, CallCorpusTest, ::testing::ValuesIn(CorpusFiles(FUZZ_TARGET)),
                         CorpusCaseName);

}  // namespace
}  // namespace audiosocket::fuzz
