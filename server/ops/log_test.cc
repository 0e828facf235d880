#include "server/ops/log.h"

#include <string>

#include "gtest/gtest.h"

namespace audiosocket::log {
namespace {

TEST(LogTest, EscapesJsonStrings) {
  std::string out;
  AppendJsonString("a\"b\\c\n\x01", &out);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001\"");
}

TEST(LogTest, ParsesLevels) {
  Level level;
  ASSERT_TRUE(ParseLevel("WARN", &level));
  EXPECT_EQ(level, Level::kWarning);
  ASSERT_TRUE(ParseLevel("debug", &level));
  EXPECT_EQ(level, Level::kDebug);
  EXPECT_FALSE(ParseLevel("loud", &level));
}

TEST(LogTest, MinLevelFiltersLines) {
  SetMinLevel(Level::kError);
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kError));
  SetMinLevel(Level::kInfo);
  EXPECT_TRUE(Enabled(Level::kInfo));
}

}  // namespace
}  // namespace audiosocket::log
