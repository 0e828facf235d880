// BackendFeed with a fake BackendLink: the hold before a backend takes the
// call and its bound, DTMF filtering and de-duplication, and conversion to
// the backend's rate with offsets (and gaps) at that rate.

#include "server/media/backend_feed.h"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "lib/dsp/resampler.h"
#include "server/backend/backend_link.h"
#include "server/media/caller_audio.h"

namespace audiosocket {
namespace {

namespace v1 = bridge::v1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::SizeIs;

// Records what the feed hands it, and in what order.
class FakeLink : public BackendLink {
 public:
  void SendEvent(v1::CallEvent&& event) override {
    log.push_back(event.has_audio()  ? absl::StrCat("audio@", event.audio().offset_samples())
                  : event.has_dtmf() ? absl::StrCat("dtmf:", event.dtmf().digit(), "@",
                                                    event.dtmf().offset_samples())
                                     : std::string("other"));
    events.push_back(std::move(event));
  }
  void ExtendAudioQueue(uint64_t audio_events) override {
    log.push_back(absl::StrCat("extend:", audio_events));
  }
  void CloseAfterQueued() override {}
  void Abort() override {}
  uint64_t dropped_audio_samples() const override { return 0; }
  uint64_t dropped_audio_events() const override { return 0; }

  std::vector<v1::CallEvent> events;
  std::vector<std::string> log;
};

std::vector<int16_t> Tone(size_t samples, uint64_t first, int rate) {
  std::vector<int16_t> pcm(samples);
  for (size_t i = 0; i < samples; ++i) {
    pcm[i] = static_cast<int16_t>(
        8000 * std::sin(2 * M_PI * 440.0 * static_cast<double>(first + i) / rate));
  }
  return pcm;
}

v1::CallEvent Audio(uint64_t offset, size_t samples, int rate = 8000) {
  const std::vector<int16_t> pcm = Tone(samples, offset, rate);
  v1::CallEvent event;
  auto* chunk = event.mutable_audio();
  chunk->set_pcm(reinterpret_cast<const char*>(pcm.data()), pcm.size() * sizeof(int16_t));
  chunk->set_sample_rate_hz(static_cast<uint32_t>(rate));
  chunk->set_offset_samples(offset);
  return event;
}

std::vector<int16_t> Pcm(const v1::CallEvent& event) {
  const std::string& bytes = event.audio().pcm();
  std::vector<int16_t> pcm(bytes.size() / 2);
  std::memcpy(pcm.data(), bytes.data(), pcm.size() * sizeof(int16_t));
  return pcm;
}

v1::CallEvent Dtmf(char digit, v1::DtmfPhase phase, v1::DtmfSource source, uint64_t offset) {
  return DtmfCallEvent(digit, phase, 0, source, offset);
}

v1::CallEvent Control() {
  v1::CallEvent event;
  event.mutable_control()->set_raw_code(16);
  return event;
}

TEST(BackendFeedTest, EventsAreHeldUntilConnectThenDeliveredWholeInOrder) {
  BackendFeed feed(1000);
  FakeLink link;
  feed.Emit(Audio(0, 160));
  feed.Emit(Dtmf('1', v1::DTMF_PHASE_END_ONLY, v1::DTMF_SOURCE_SIGNALLED, 100));
  feed.Emit(Audio(160, 160));
  feed.Emit(Control());
  feed.Emit(Audio(320, 160));
  EXPECT_THAT(link.log, IsEmpty());

  feed.Connect(&link);
  // The link makes room for the held audio before any of it arrives.
  EXPECT_THAT(link.log,
              ElementsAre("extend:3", "audio@0", "dtmf:1@100", "audio@160", "other", "audio@320"));
  EXPECT_EQ(Pcm(link.events[0]), Tone(160, 0, 8000));  // unchanged at the same rate
  EXPECT_EQ(feed.held_dropped_samples(), 0u);

  // Live events go straight through.
  feed.Emit(Audio(480, 160));
  EXPECT_EQ(link.log.back(), "audio@480");
  EXPECT_THAT(link.log, SizeIs(7));
}

TEST(BackendFeedTest, TheHoldBoundDropsTheOldestAudioFirstAndCountsIt) {
  BackendFeed feed(100);  // 800 samples at 8 kHz
  FakeLink link;
  feed.Emit(Dtmf('#', v1::DTMF_PHASE_END_ONLY, v1::DTMF_SOURCE_SIGNALLED, 0));
  for (uint64_t i = 0; i < 5; ++i) feed.Emit(Audio(i * 160, 160));
  EXPECT_EQ(feed.held_dropped_samples(), 0u);  // exactly at the bound
  feed.Emit(Audio(800, 160));
  EXPECT_EQ(feed.held_dropped_samples(), 160u);
  EXPECT_EQ(feed.held_dropped_events(), 1u);
  feed.Emit(Audio(960, 160));
  feed.Emit(Audio(1120, 160));
  EXPECT_EQ(feed.held_dropped_samples(), 480u);
  EXPECT_EQ(feed.held_dropped_events(), 3u);

  feed.Connect(&link);
  // The DTMF, older than all of it, is kept; the audio left is the newest.
  EXPECT_THAT(link.log, ElementsAre("extend:5", "dtmf:#@0", "audio@480", "audio@640", "audio@800",
                                    "audio@960", "audio@1120"));
}

TEST(BackendFeedTest, TheHoldBoundCountsAtTheCallsRate) {
  BackendFeed feed(100);
  ASSERT_TRUE(feed.SetRates(16000, 0).ok());  // 1600 samples
  FakeLink link;
  for (uint64_t i = 0; i < 5; ++i) feed.Emit(Audio(i * 320, 320, 16000));
  EXPECT_EQ(feed.held_dropped_samples(), 0u);
  feed.Emit(Audio(1600, 320, 16000));
  EXPECT_EQ(feed.held_dropped_samples(), 320u);
  feed.Connect(&link);
  EXPECT_EQ(link.log.front(), "extend:5");
}

TEST(BackendFeedTest, InbandDtmfIsDroppedWhenTheBackendDidNotAskForIt) {
  BackendFeed feed(1000);
  FakeLink link;
  EXPECT_FALSE(feed.detect_inband());
  feed.Connect(&link);
  feed.Emit(Dtmf('5', v1::DTMF_PHASE_BEGIN, v1::DTMF_SOURCE_INBAND, 400));
  feed.Emit(Dtmf('5', v1::DTMF_PHASE_END, v1::DTMF_SOURCE_INBAND, 1200));
  feed.Emit(Dtmf('6', v1::DTMF_PHASE_END_ONLY, v1::DTMF_SOURCE_SIGNALLED, 4000));
  EXPECT_THAT(link.log, ElementsAre("extend:0", "dtmf:6@4000"));
}

TEST(BackendFeedTest, HeldInbandDtmfIsJudgedByWhatTheBackendAskedForAtConnect) {
  BackendFeed feed(1000);
  FakeLink link;
  feed.Emit(Dtmf('5', v1::DTMF_PHASE_BEGIN, v1::DTMF_SOURCE_INBAND, 400));
  feed.Emit(Dtmf('5', v1::DTMF_PHASE_END, v1::DTMF_SOURCE_INBAND, 1200));
  feed.set_detect_inband(true);  // the accept asked for it
  feed.Connect(&link);
  EXPECT_THAT(link.log, ElementsAre("extend:0", "dtmf:5@400", "dtmf:5@1200"));
}

TEST(BackendFeedTest, ADigitBothSignalledAndHeardReachesTheBackendOnce) {
  BackendFeed feed(1000);
  FakeLink link;
  feed.set_detect_inband(true);
  feed.Connect(&link);
  feed.Emit(Dtmf('5', v1::DTMF_PHASE_BEGIN, v1::DTMF_SOURCE_INBAND, 400));
  feed.Emit(Dtmf('5', v1::DTMF_PHASE_END_ONLY, v1::DTMF_SOURCE_SIGNALLED, 800));
  feed.Emit(Dtmf('5', v1::DTMF_PHASE_END, v1::DTMF_SOURCE_INBAND, 880));
  // Another digit later is its own.
  feed.Emit(Dtmf('7', v1::DTMF_PHASE_END_ONLY, v1::DTMF_SOURCE_SIGNALLED, 16000));
  EXPECT_THAT(link.log, ElementsAre("extend:0", "dtmf:5@400", "dtmf:5@880", "dtmf:7@16000"));
  ASSERT_THAT(link.events, SizeIs(3));
  EXPECT_EQ(link.events[0].dtmf().source(), v1::DTMF_SOURCE_INBAND);
  EXPECT_EQ(link.events[1].dtmf().source(), v1::DTMF_SOURCE_INBAND);
}

TEST(BackendFeedTest, HeldDuplicatesAreDedupedOnDelivery) {
  BackendFeed feed(1000);
  FakeLink link;
  feed.set_detect_inband(true);
  feed.Emit(Dtmf('2', v1::DTMF_PHASE_END_ONLY, v1::DTMF_SOURCE_SIGNALLED, 800));
  feed.Emit(Dtmf('2', v1::DTMF_PHASE_BEGIN, v1::DTMF_SOURCE_INBAND, 720));
  feed.Emit(Dtmf('2', v1::DTMF_PHASE_END, v1::DTMF_SOURCE_INBAND, 1440));
  feed.Connect(&link);
  EXPECT_THAT(link.log, ElementsAre("extend:0", "dtmf:2@800"));
}

TEST(BackendFeedTest, AudioIsResampledToTheBackendsRateWithContiguousOffsets) {
  BackendFeed feed(1000);
  ASSERT_TRUE(feed.SetRates(8000, 16000).ok());
  FakeLink link;
  feed.Emit(Audio(0, 160));
  feed.Emit(Audio(160, 160));
  feed.Connect(&link);
  for (uint64_t i = 2; i < 10; ++i) feed.Emit(Audio(i * 160, 160));

  // The same conversion done by hand, chunk by chunk.
  absl::StatusOr<dsp::Resampler> reference = dsp::Resampler::Create(8000, 16000);
  ASSERT_TRUE(reference.ok());
  std::vector<v1::CallEvent> audio;
  for (const v1::CallEvent& e : link.events) {
    if (e.has_audio()) audio.push_back(e);
  }
  ASSERT_THAT(audio, SizeIs(10));
  uint64_t offset = 0;
  for (size_t i = 0; i < audio.size(); ++i) {
    const std::vector<int16_t> in = Tone(160, i * 160, 8000);
    std::vector<int16_t> out(reference->MaxOutputSamples(in.size()));
    out.resize(reference->Process(in, absl::MakeSpan(out)));
    EXPECT_EQ(audio[i].audio().sample_rate_hz(), 16000u);
    EXPECT_EQ(audio[i].audio().offset_samples(), offset) << "chunk " << i;
    EXPECT_EQ(Pcm(audio[i]), out) << "chunk " << i;
    offset += out.size();
  }
  // About twice the input, less the filter's delay.
  EXPECT_LE(offset, 2u * 1600u);
  EXPECT_GE(offset, 2u * 1600u - static_cast<uint64_t>(reference->LatencyOutputSamples()) - 2);
}

TEST(BackendFeedTest, DtmfOffsetsAreConvertedToTheBackendsRate) {
  BackendFeed feed(1000);
  ASSERT_TRUE(feed.SetRates(8000, 48000).ok());
  FakeLink link;
  feed.Connect(&link);
  feed.Emit(Dtmf('4', v1::DTMF_PHASE_END_ONLY, v1::DTMF_SOURCE_SIGNALLED, 1000));
  EXPECT_THAT(link.log, ElementsAre("extend:0", "dtmf:4@6000"));
}

TEST(BackendFeedTest, AudioDroppedWhileHeldStaysAGapAtTheBackendsRate) {
  BackendFeed feed(100);  // 800 samples at 8 kHz
  ASSERT_TRUE(feed.SetRates(8000, 16000).ok());
  FakeLink link;
  for (uint64_t i = 0; i < 7; ++i) feed.Emit(Audio(i * 160, 160));  // the first two dropped
  ASSERT_EQ(feed.held_dropped_samples(), 320u);
  feed.Connect(&link);
  ASSERT_THAT(link.events, SizeIs(5));
  // The first chunk delivered starts where 320 samples at 8 kHz put it.
  EXPECT_EQ(link.events[0].audio().offset_samples(), 640u);
  uint64_t next = 640;
  for (const v1::CallEvent& e : link.events) {
    EXPECT_EQ(e.audio().offset_samples(), next);
    next += e.audio().pcm().size() / 2;
  }
  // A later jump in the call's offsets (160 samples missing) shows as 320.
  feed.Emit(Audio(7 * 160 + 160, 160));
  EXPECT_EQ(link.events.back().audio().offset_samples(), next + 320);
}

TEST(BackendFeedTest, ToBackendOffsetScalesByTheRates) {
  BackendFeed feed(1000);
  EXPECT_EQ(feed.ToBackendOffset(1234), 1234u);  // no backend rate yet
  ASSERT_TRUE(feed.SetRates(16000, 16000).ok());
  EXPECT_EQ(feed.ToBackendOffset(1234), 1234u);
  ASSERT_TRUE(feed.SetRates(16000, 8000).ok());
  EXPECT_EQ(feed.ToBackendOffset(1234), 617u);
  ASSERT_TRUE(feed.SetRates(8000, 44100).ok());
  EXPECT_EQ(feed.ToBackendOffset(8000), 44100u);
}

TEST(BackendFeedTest, SetRatesNamesAConversionLibDspCannotDo) {
  BackendFeed feed(1000);
  const absl::Status status = feed.SetRates(8000, 500);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), ::testing::HasSubstr("500"));
}

TEST(BackendFeedTest, AfterDisconnectNothingMoreIsDelivered) {
  BackendFeed feed(1000);
  FakeLink link;
  feed.Connect(&link);
  feed.Emit(Audio(0, 160));
  feed.Disconnect();
  feed.Emit(Audio(160, 160));
  feed.Emit(Dtmf('1', v1::DTMF_PHASE_END_ONLY, v1::DTMF_SOURCE_SIGNALLED, 160));
  EXPECT_THAT(link.log, ElementsAre("extend:0", "audio@0"));
}

}  // namespace
}  // namespace audiosocket
