// Talk-off: no digit over real speech and music (Debian's Asterisk sound
// packages and espeak-ng, installed by tools/install-deps.sh) at their level
// and +10 dB, at 8 and 16 kHz, linear and through G.711; and at most 3 false
// digits in 30 minutes of generated harmonic-rich music from a fixed seed.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "lib/dsp/dsp_testing.h"
#include "lib/dsp/dtmf_detector.h"
#include "lib/dsp/g711.h"
#include "lib/dsp/resampler.h"

namespace audiosocket::dsp {
namespace {

namespace fs = std::filesystem;
using testing::Channel;

constexpr const char* kSoundDirs[] = {
    "/usr/share/asterisk/sounds/en_US_f_Allison",
    "/usr/share/asterisk/sounds/es_MX_f_Allison",
    "/usr/share/asterisk/sounds/fr_CA_f_June",
    "/usr/share/asterisk/moh",
};

std::vector<std::string> WavFiles(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (it->is_regular_file() && it->path().extension() == ".wav") {
      files.push_back(it->path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::vector<int16_t> ToRate(const std::vector<int16_t>& in, int from, int to) {
  if (from == to) return in;
  auto r = Resampler::Create(from, to);
  std::vector<int16_t> out(r->MaxOutputSamples(in.size()));
  out.resize(r->Process(in, absl::MakeSpan(out)));
  return out;
}

// Gain (dB) then channel, with saturation.
std::vector<int16_t> Prepare(const std::vector<int16_t>& in, double gain_db, Channel c) {
  const double g = std::pow(10.0, gain_db / 20.0);
  std::vector<double> x(in.size());
  for (size_t i = 0; i < in.size(); ++i) x[i] = in[i] * g;
  return testing::ToPcm(x, c);
}

struct Corpus {
  std::vector<int16_t> audio8k;  // all files concatenated, 8 kHz
  int files = 0;
};

const Corpus& SoundCorpus() {
  static const Corpus* corpus = [] {
    auto* c = new Corpus;
    for (const char* dir : kSoundDirs) {
      for (const std::string& f : WavFiles(dir)) {
        int rate = 0;
        auto pcm = testing::ReadWav(f, &rate);
        if (!pcm.ok()) continue;  // a few files in other formats; counted below
        const auto at8k = ToRate(*pcm, rate, 8000);
        c->audio8k.insert(c->audio8k.end(), at8k.begin(), at8k.end());
        c->audio8k.insert(c->audio8k.end(), 800, 0);  // 100 ms between files
        ++c->files;
      }
    }
    // Speech synthesised by espeak-ng in three languages.
    const char* tmp = std::getenv("TEST_TMPDIR");
    const std::string dir = tmp != nullptr ? tmp : "/tmp";
    const char* texts[][2] = {
        {"en",
         "Please enter your account number followed by the pound key. Thank you for "
         "calling, your call is important to us, one two three four five six seven."},
        {"es", "Por favor marque su numero de cuenta seguido de la tecla numeral. Gracias."},
        {"fr", "Veuillez composer votre numero de compte suivi de la touche diese. Merci."},
    };
    for (const auto& t : texts) {
      const std::string wav = absl::StrCat(dir, "/espeak_", t[0], ".wav");
      const std::string cmd =
          absl::StrCat("espeak-ng -v ", t[0], " -w '", wav, "' \"", t[1], "\" 2>/dev/null");
      if (std::system(cmd.c_str()) != 0) continue;
      int rate = 0;
      auto pcm = testing::ReadWav(wav, &rate);
      if (!pcm.ok()) continue;
      const auto at8k = ToRate(*pcm, rate, 8000);
      c->audio8k.insert(c->audio8k.end(), at8k.begin(), at8k.end());
      ++c->files;
    }
    return c;
  }();
  return *corpus;
}

struct TalkOffCase {
  int rate;
  Channel channel;
  double gain_db;
};

class DebianSoundsTalkOff : public ::testing::TestWithParam<TalkOffCase> {};

TEST_P(DebianSoundsTalkOff, NoDigits) {
  for (const char* dir : kSoundDirs) {
    if (!fs::exists(dir)) {
      GTEST_FAIL()
          << dir
          << " is missing: install asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav "
             "asterisk-core-sounds-fr-wav asterisk-moh-opsound-wav espeak-ng "
             "(tools/install-deps.sh does)";
    }
  }
  const Corpus& corpus = SoundCorpus();
  ASSERT_GT(corpus.files, 1000) << "expected the Debian sound files";
  const TalkOffCase& p = GetParam();
  const auto audio = Prepare(ToRate(corpus.audio8k, 8000, p.rate), p.gain_db, p.channel);
  const auto events = testing::Detect(p.rate, audio, p.rate / 50);
  std::string digits;
  for (const DtmfEvent& e : events) {
    if (e.kind == DtmfEvent::Kind::kBegin) {
      digits += e.digit;
      std::printf("  false digit %c at %.2f s\n", e.digit, double(e.start_sample) / p.rate);
    }
  }
  std::printf("[sounds %d Hz %s %+.0f dB] %d files, %.1f min: %zu false digits\n", p.rate,
              testing::ChannelName(p.channel), p.gain_db, corpus.files,
              corpus.audio8k.size() / 8000.0 / 60, digits.size());
  EXPECT_EQ(digits, "");
}

INSTANTIATE_TEST_SUITE_P(Cases, DebianSoundsTalkOff,
                         ::testing::Values(TalkOffCase{8000, Channel::kLinear, 0},
                                           TalkOffCase{8000, Channel::kLinear, 10},
                                           TalkOffCase{8000, Channel::kUlaw, 0},
                                           TalkOffCase{8000, Channel::kUlaw, 10},
                                           TalkOffCase{8000, Channel::kAlaw, 0},
                                           TalkOffCase{8000, Channel::kAlaw, 10},
                                           TalkOffCase{16000, Channel::kLinear, 0},
                                           TalkOffCase{16000, Channel::kLinear, 10}));

TEST(SyntheticMusicTalkOff, AtMostThreeFalseDigitsInThirtyMinutes) {
  for (int rate : {8000, 16000}) {
    int false_digits = 0;
    // Six 5-minute pieces from fixed seeds (bounded memory).
    for (uint64_t seed = 1; seed <= 6; ++seed) {
      const auto pcm = testing::ToPcm(testing::SynthMusic(rate, 300, seed), Channel::kLinear);
      for (const DtmfEvent& e : testing::Detect(rate, pcm, rate / 50)) {
        if (e.kind == DtmfEvent::Kind::kBegin) {
          ++false_digits;
          std::printf("  false digit %c, seed %d at %.2f s\n", e.digit, int(seed),
                      double(e.start_sample) / rate);
        }
      }
    }
    std::printf("[music %d Hz, 30 min] %d false digits\n", rate, false_digits);
    EXPECT_LE(false_digits, 3) << rate << " Hz";
  }
}

}  // namespace
}  // namespace audiosocket::dsp
