#include "server/ops/quote.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace audiosocket {
namespace {

TEST(QuoteForErrorTest, ShortTextIsQuotedWhole) {
  EXPECT_EQ(QuoteForError("1x"), "\"1x\"");
  EXPECT_EQ(QuoteForError(""), "\"\"");
}

TEST(QuoteForErrorTest, LongTextIsCutAndItsLengthGiven) {
  const std::string id(1 << 20, 'a');
  const std::string quoted = QuoteForError(id);
  EXPECT_EQ(quoted, "\"" + std::string(kMaxQuotedBytes, 'a') + "...\" (1048576 bytes)");
  EXPECT_EQ(QuoteForError("abcdef", 3), "\"abc...\" (6 bytes)");
  EXPECT_EQ(QuoteForError("abc", 3), "\"abc\"");
}

TEST(QuoteForErrorTest, ControlAndQuoteCharactersAreEscaped) {
  EXPECT_EQ(QuoteForError(std::string("a\"\n\x01", 4)), "\"a\\\"\\n\\x01\"");
}

}  // namespace
}  // namespace audiosocket
