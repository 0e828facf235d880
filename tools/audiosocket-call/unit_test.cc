// Unit tests of the parts without sockets: pacer, histogram, echo matching,
// WAV, sources, option parsing and the summary's JSON.

#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/audiosocket-call/arrivals.h"
#include "tools/audiosocket-call/nanos.h"
#include "tools/audiosocket-call/options.h"
#include "tools/audiosocket-call/source.h"
#include "tools/audiosocket-call/stats.h"
#include "tools/audiosocket-call/summary.h"
#include "tools/audiosocket-call/wav.h"

namespace audiosocket::call {
namespace {

using ::testing::HasSubstr;

TEST(HistogramTest, PercentilesAreExactToTheMicrosecondBelowFourMilliseconds) {
  Histogram h;
  for (int i = 1; i <= 100; ++i) h.Add(i * 10 * kMicrosecond);  // 10 us .. 1000 us
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.Percentile(0.5), 500 * kMicrosecond);
  EXPECT_EQ(h.Percentile(0.99), 990 * kMicrosecond);
  EXPECT_EQ(h.Percentile(1.0), 1000 * kMicrosecond);
  EXPECT_EQ(h.max(), 1000 * kMicrosecond);
}

TEST(HistogramTest, LargeValuesKeepThreeSignificantDigits) {
  Histogram h;
  h.Add(123456 * kMicrosecond);
  const Nanos p = h.Percentile(0.5);
  EXPECT_LE(p, 123456 * kMicrosecond);
  EXPECT_GT(p, 123456 * kMicrosecond * 995 / 1000);
}

TEST(HistogramTest, MergeAddsCountsAndKeepsMax) {
  Histogram a, b;
  a.Add(kMillisecond);
  b.Add(3 * kMillisecond);
  b.Add(-5);  // counts as 0
  a.Merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.max(), 3 * kMillisecond);
  EXPECT_EQ(a.Percentile(0.01), 0);
  EXPECT_EQ(Histogram().Percentile(0.5), 0);
}

// The 1 ms bins of the 20 ms frame period that the calls' first frames fall
// in: the phases their frames keep for the whole call.
std::set<Nanos> PhaseBins(const std::vector<Nanos>& offsets) {
  std::set<Nanos> bins;
  for (Nanos at : offsets) bins.insert((at % (20 * kMillisecond)) / kMillisecond);
  return bins;
}

TEST(ArrivalsTest, EvenStartsAreExactlyOneOverTheRampApart) {
  std::mt19937 gen(1);
  const std::vector<Nanos> at = StartOffsets(101, 500, Arrivals::kEven, gen);
  ASSERT_EQ(at.size(), 101u);
  for (size_t i = 0; i < at.size(); ++i) EXPECT_EQ(at[i], static_cast<Nanos>(i) * 2 * kMillisecond);
  // Every 2 ms: the calls' frames share ten phases of the 20 ms.
  EXPECT_EQ(PhaseBins(at).size(), 10u);
}

TEST(ArrivalsTest, PoissonStartsKeepTheRateAndSpreadFramesOverThePeriod) {
  std::mt19937 gen(7);
  const std::vector<Nanos> at = StartOffsets(20001, 500, Arrivals::kPoisson, gen);
  ASSERT_EQ(at.size(), 20001u);
  EXPECT_EQ(at[0], 0);
  for (size_t i = 1; i < at.size(); ++i) ASSERT_GE(at[i], at[i - 1]);
  // 20,000 gaps of mean 2 ms: the total is 40 s within 3 % (about four
  // standard deviations of the sum).
  EXPECT_NEAR(static_cast<double>(at.back()), 40.0 * kSecond, 0.03 * 40 * kSecond);
  // Gaps are exponential: a fraction e^-1 (37 %) are longer than the mean;
  // with even spacing none are.
  int longer = 0;
  for (size_t i = 1; i < at.size(); ++i) longer += at[i] - at[i - 1] > 2 * kMillisecond;
  EXPECT_NEAR(longer / 20000.0, std::exp(-1.0), 0.02);
  // A hundred calls' frames fall in most of the twenty 1 ms bins (the
  // chance a bin stays empty is (19/20)^100, under 1 %).
  const std::vector<Nanos> hundred(at.begin(), at.begin() + 100);
  EXPECT_GE(PhaseBins(hundred).size(), 18u);
}

TEST(ArrivalsTest, NoRampStartsAllAtOnceAndNamesParse) {
  std::mt19937 gen(1);
  EXPECT_THAT(StartOffsets(3, 0, Arrivals::kPoisson, gen), ::testing::ElementsAre(0, 0, 0));
  EXPECT_TRUE(StartOffsets(0, 500, Arrivals::kPoisson, gen).empty());
  Arrivals a = Arrivals::kEven;
  EXPECT_TRUE(ParseArrivals("poisson", &a));
  EXPECT_EQ(a, Arrivals::kPoisson);
  EXPECT_EQ(ArrivalsName(a), "poisson");
  EXPECT_FALSE(ParseArrivals("random", &a));
  EXPECT_EQ(a, Arrivals::kPoisson);
}

std::vector<uint8_t> Bytes(std::initializer_list<uint8_t> b) { return b; }

TEST(EchoMatcherTest, MatchesUniqueContentOnce) {
  EchoMatcher m;
  m.OnSent(Bytes({1, 2}), 100);
  m.OnSent(Bytes({3, 4}), 200);
  EXPECT_EQ(m.OnReceived(Bytes({3, 4}), 250), 50);
  EXPECT_EQ(m.OnReceived(Bytes({3, 4}), 260), std::nullopt);  // a second echo does not count
  EXPECT_EQ(m.OnReceived(Bytes({9, 9}), 260), std::nullopt);
  EXPECT_EQ(m.matched(), 1u);
}

TEST(EchoMatcherTest, RepeatedContentIsAmbiguousNotGuessed) {
  EchoMatcher m;
  m.OnSent(Bytes({0, 0}), 100);
  m.OnSent(Bytes({0, 0}), 120);
  EXPECT_EQ(m.OnReceived(Bytes({0, 0}), 150), std::nullopt);
  EXPECT_EQ(m.ambiguous(), 1u);
}

TEST(EchoMatcherTest, ForgetsFramesOutsideTheWindow) {
  EchoMatcher m(2);
  m.OnSent(Bytes({1}), 1);
  m.OnSent(Bytes({2}), 2);
  m.OnSent(Bytes({3}), 3);
  EXPECT_EQ(m.OnReceived(Bytes({1}), 10), std::nullopt);
  EXPECT_EQ(m.OnReceived(Bytes({2}), 10), 8);
}

TEST(WavTest, EncodeThenParseRoundTrips) {
  const std::vector<int16_t> samples = {0, 1, -1, 32767, -32768, 1234};
  absl::StatusOr<WavAudio> wav = ParseWav(EncodeWav(16000, samples), "x.wav");
  ASSERT_TRUE(wav.ok()) << wav.status();
  EXPECT_EQ(wav->sample_rate_hz, 16000);
  EXPECT_EQ(wav->samples, samples);
}

TEST(WavTest, RefusesStereoNamingTheFile) {
  std::string bytes = EncodeWav(8000, {1, 2});
  bytes[22] = 2;  // channels
  absl::StatusOr<WavAudio> wav = ParseWav(bytes, "stereo.wav");
  ASSERT_FALSE(wav.ok());
  EXPECT_THAT(std::string(wav.status().message()), HasSubstr("stereo.wav: 16-bit 2-channel"));
}

TEST(WavTest, RefusesNonWav) { EXPECT_FALSE(ParseWav("hello", "a.txt").ok()); }

TEST(WavTest, ResamplesToTheAskedRateKeepingDurationAndPitch) {
  // One second of 440 Hz at 16 kHz down to 8 kHz.
  std::vector<int16_t> in(16000);
  for (size_t i = 0; i < in.size(); ++i) {
    in[i] = static_cast<int16_t>(10000 * std::sin(2 * M_PI * 440 * static_cast<double>(i) / 16000));
  }
  absl::StatusOr<std::vector<int16_t>> out = Resample(in, 16000, 8000);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->size(), 8000u);
  // Zero crossings of 440 Hz over one second: about 880.
  int crossings = 0;
  for (size_t i = 1; i < out->size(); ++i) {
    if (((*out)[i - 1] < 0) != ((*out)[i] < 0)) ++crossings;
  }
  EXPECT_NEAR(crossings, 880, 10);
}

TEST(WavTest, WriterProducesAFileTheReaderAccepts) {
  const std::string path = ::testing::TempDir() + "/writer_test.wav";
  {
    WavWriter w;
    ASSERT_TRUE(w.Open(path, 8000).ok());
    ASSERT_TRUE(w.Append(Bytes({0x01, 0x00, 0xff, 0xff})).ok());
    ASSERT_TRUE(w.Close().ok());
  }
  absl::StatusOr<WavAudio> wav = ReadWavFile(path, 8000);
  ASSERT_TRUE(wav.ok()) << wav.status();
  EXPECT_EQ(wav->samples, (std::vector<int16_t>{1, -1}));
}

TEST(SourceTest, ToneHasTheAskedPeakAndSilenceIsZero) {
  absl::StatusOr<SourceSpec> spec = ParseSourceSpec("tone:1000:-6");
  ASSERT_TRUE(spec.ok());
  std::vector<int16_t> frame(160);
  spec->Make()->Fill(absl::MakeSpan(frame));
  const int16_t peak = *std::max_element(frame.begin(), frame.end());
  EXPECT_NEAR(peak, 16423, 200);  // -6 dBFS
  std::vector<int16_t> quiet(160, 5);
  ParseSourceSpec("silence")->Make()->Fill(absl::MakeSpan(quiet));
  EXPECT_EQ(quiet, std::vector<int16_t>(160, 0));
}

TEST(SourceTest, WavPlaysOnceOrLoops) {
  SourceSpec spec;
  spec.type = SourceSpec::Type::kWav;
  spec.wav_samples = std::make_shared<const std::vector<int16_t>>(std::vector<int16_t>{1, 2, 3});
  std::vector<int16_t> out(2);
  auto once = spec.Make();
  EXPECT_TRUE(once->Fill(absl::MakeSpan(out)));
  EXPECT_TRUE(once->Fill(absl::MakeSpan(out)));  // 3, then padding
  EXPECT_EQ(out, (std::vector<int16_t>{3, 0}));
  EXPECT_FALSE(once->Fill(absl::MakeSpan(out)));
  spec.loop = true;
  auto looped = spec.Make();
  std::vector<int16_t> five(5);
  EXPECT_TRUE(looped->Fill(absl::MakeSpan(five)));
  EXPECT_EQ(five, (std::vector<int16_t>{1, 2, 3, 1, 2}));
}

TEST(OptionsTest, ParsesSourceSpecs) {
  EXPECT_EQ(ParseSourceSpec("tone:440")->tone_hz, 440);
  EXPECT_EQ(ParseSourceSpec("wav:/tmp/a.wav")->wav_path, "/tmp/a.wav");
  EXPECT_FALSE(ParseSourceSpec("noise").ok());
  EXPECT_FALSE(ParseSourceSpec("tone:abc").ok());
}

TEST(OptionsTest, ParsesDtmfSchedulesSortedByTime) {
  absl::StatusOr<std::vector<TimedDigit>> s = ParseDtmfSchedule("#@2s,1@500ms");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->size(), 2u);
  EXPECT_EQ((*s)[0].digit, '1');
  EXPECT_EQ((*s)[0].at, 500 * kMillisecond);
  EXPECT_EQ((*s)[1].digit, '#');
  EXPECT_EQ((*s)[1].at, 2 * kSecond);
  EXPECT_FALSE(ParseDtmfSchedule("x@1s").ok());
  EXPECT_FALSE(ParseDtmfSchedule("1").ok());
  EXPECT_FALSE(ParseDtmfSchedule("1@soon").ok());
}

TEST(OptionsTest, ParsesByteSchedulesAndNamesTheFlag) {
  auto s = ParseByteSchedule("4@1s,16@3s", "control");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)[1].value, 16);
  absl::StatusOr<std::vector<TimedByte>> bad = ParseByteSchedule("300@1s", "send_error");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("--send_error"));
}

TEST(OptionsTest, ParsesEndModesAndFaults) {
  EndMode end;
  EXPECT_TRUE(ParseEndMode("wait", &end));
  EXPECT_EQ(end, EndMode::kWait);
  EXPECT_FALSE(ParseEndMode("later", &end));
  for (absl::string_view name : {"truncated_header", "short_payload", "oversized_length", "garbage",
                                 "no_uuid", "bad_uuid_length", "odd_audio", "flood"}) {
    Fault f;
    EXPECT_TRUE(ParseFault(name, &f)) << name;
    EXPECT_EQ(FaultName(f), name);
  }
}

TEST(OptionsTest, ValidateNamesTheFlagsToChange) {
  RunConfig c;
  EXPECT_TRUE(Validate(c).ok());
  c.call.rate_hz = 11025;
  EXPECT_THAT(std::string(Validate(c).message()), HasSubstr("--rate=11025"));
  c.call.rate_hz = 44100;
  EXPECT_TRUE(Validate(c).ok());
  c.call.controls = {{4, 0}};
  EXPECT_THAT(std::string(Validate(c).message()), HasSubstr("--dialect=extended"));
  c.call.extended_dialect = true;
  EXPECT_TRUE(Validate(c).ok());
  c.calls = 2;
  c.call.record_path = "x.wav";
  EXPECT_THAT(std::string(Validate(c).message()), HasSubstr("--record"));
}

TEST(SummaryTest, ReportsTotalsPercentilesAndFailures) {
  RunStats stats;
  for (int i = 1; i <= 100; ++i) stats.send_jitter.Add(i * kMicrosecond);
  stats.rtt.Add(2 * kMillisecond);
  stats.dtmf_received.push_back("{\"call\":0,\"digit\":\"1\"}");
  CallResult ok{.index = 0, .uuid = "u0", .ended = "hangup_sent", .ok = true};
  ok.frames_sent = 50;
  ok.bytes_sent = 50 * 323 + 22;
  CallResult bad{.index = 1, .uuid = "u1", .ended = "error", .ok = false};
  bad.errors = {"connect to 127.0.0.1:1: Connection refused"};
  const std::string json = SummaryJson(stats, {ok, bad}, 1500 * kMillisecond, {});
  EXPECT_THAT(json, HasSubstr("{\"calls\":2,\"ok\":1,\"failed\":1,\"wall_time_ms\":1500.000,"));
  EXPECT_THAT(json, HasSubstr("\"frames_sent\":50,\"frames_received\":0,\"bytes_sent\":16172,"));
  EXPECT_THAT(
      json,
      HasSubstr("\"send_jitter_ms\":{\"p50\":0.050,\"p99\":0.099,\"max\":0.100,\"count\":100}"));
  EXPECT_THAT(json, HasSubstr("\"recv_jitter_ms\":{\"p50\":0.000,\"p99\":0.000,\"max\":0.000,"
                              "\"count\":0}"));
  EXPECT_THAT(json,
              HasSubstr("\"rtt_ms\":{\"p50\":2.000,\"p99\":2.000,\"max\":2.000,\"count\":1}"));
  EXPECT_THAT(json, HasSubstr("\"dtmf_received\":[{\"call\":0,\"digit\":\"1\"}]"));
  EXPECT_THAT(json,
              HasSubstr("\"ended\":\"mixed\",\"ended_counts\":{\"error\":1,\"hangup_sent\":1}"));
  EXPECT_THAT(json,
              HasSubstr("\"errors\":[\"call 1: connect to 127.0.0.1:1: Connection refused\"]"));
  EXPECT_THAT(json,
              HasSubstr("\"per_call_failures\":[{\"call\":1,\"uuid\":\"u1\",\"ended\":"
                        "\"error\",\"error\":\"connect to 127.0.0.1:1: Connection refused\"}]"));
}

TEST(SummaryTest, RttIsNullWithoutMatchedEchoes) {
  const std::string json =
      SummaryJson(RunStats(), {CallResult{.ended = "closed", .ok = true}}, 0, {});
  EXPECT_THAT(json, HasSubstr("\"rtt_ms\":null,"));
  EXPECT_THAT(json, HasSubstr("\"recv_drift_ppm\":null,"));
  EXPECT_THAT(json, HasSubstr("\"ended\":\"closed\""));
}

TEST(SummaryTest, DriftIsTheSpanOverTheExpectedTimeInPpm) {
  RunStats stats;
  // Two calls: 1000 intervals 2 us long (+100 ppm), 1000 intervals exact.
  stats.drift_span = 2 * 20 * kSecond + 2 * kMicrosecond;
  stats.drift_expected = 2 * 20 * kSecond;
  stats.drift_worst_ppm = 0.1;
  stats.drift_calls = 2;
  const std::string json = SummaryJson(stats, {CallResult{.ended = "closed", .ok = true}}, 0, {});
  EXPECT_THAT(json, HasSubstr("\"recv_drift_ppm\":{\"mean\":0.1,\"worst_call\":0.1,\"calls\":2},"));
}

}  // namespace
}  // namespace audiosocket::call
