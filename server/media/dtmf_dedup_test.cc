#include "server/media/dtmf_dedup.h"

#include "gtest/gtest.h"

namespace audiosocket {
namespace {

namespace v1 = bridge::v1;
constexpr auto kInband = v1::DTMF_SOURCE_INBAND;
constexpr auto kSignalled = v1::DTMF_SOURCE_SIGNALLED;

TEST(DtmfDeduplicatorTest, AsteriskEndOnlyDuringAnInbandDigitIsSuppressed) {
  DtmfDeduplicator dedup;
  EXPECT_TRUE(dedup.Admit(kInband, '5', v1::DTMF_PHASE_BEGIN, 40));
  EXPECT_FALSE(dedup.Admit(kSignalled, '5', v1::DTMF_PHASE_END_ONLY, 100));
  EXPECT_TRUE(dedup.Admit(kInband, '5', v1::DTMF_PHASE_END, 110));
}

TEST(DtmfDeduplicatorTest, InbandDigitAfterSignalledOneIsSuppressedWhole) {
  DtmfDeduplicator dedup;
  EXPECT_TRUE(dedup.Admit(kSignalled, '#', v1::DTMF_PHASE_BEGIN, 0));
  EXPECT_FALSE(dedup.Admit(kInband, '#', v1::DTMF_PHASE_BEGIN, 40));
  EXPECT_TRUE(dedup.Admit(kSignalled, '#', v1::DTMF_PHASE_END, 100));
  EXPECT_FALSE(dedup.Admit(kInband, '#', v1::DTMF_PHASE_END, 110));
}

TEST(DtmfDeduplicatorTest, RepeatedPressesOfOneDigitPairOneToOne) {
  DtmfDeduplicator dedup;
  int reported = 0;
  for (int press = 0; press < 3; ++press) {
    const int64_t t = press * 200;
    reported += dedup.Admit(kInband, '1', v1::DTMF_PHASE_BEGIN, t + 40);
    reported += dedup.Admit(kSignalled, '1', v1::DTMF_PHASE_END_ONLY, t + 100);
    reported += dedup.Admit(kInband, '1', v1::DTMF_PHASE_END, t + 100);
  }
  EXPECT_EQ(reported, 6);  // BEGIN and END of each press, from one source
}

TEST(DtmfDeduplicatorTest, DifferentDigitsOrDistantTimesAreBothReported) {
  DtmfDeduplicator dedup;
  EXPECT_TRUE(dedup.Admit(kInband, '1', v1::DTMF_PHASE_BEGIN, 0));
  EXPECT_TRUE(dedup.Admit(kInband, '1', v1::DTMF_PHASE_END, 100));
  EXPECT_TRUE(dedup.Admit(kSignalled, '2', v1::DTMF_PHASE_END_ONLY, 100));
  EXPECT_TRUE(dedup.Admit(kSignalled, '1', v1::DTMF_PHASE_END_ONLY, 5000));
}

}  // namespace
}  // namespace audiosocket
