#include "lib/audio/wav.h"

#include <speex/speex_resampler.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace audiosocket::audio {
namespace {

uint16_t Le16(absl::string_view b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) |
                               (static_cast<uint8_t>(b[at + 1]) << 8));
}
uint32_t Le32(absl::string_view b, size_t at) {
  return static_cast<uint32_t>(Le16(b, at)) | (static_cast<uint32_t>(Le16(b, at + 2)) << 16);
}
void PutLe16(uint16_t v, std::string* out) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>(v >> 8));
}
void PutLe32(uint32_t v, std::string* out) {
  PutLe16(static_cast<uint16_t>(v & 0xffff), out);
  PutLe16(static_cast<uint16_t>(v >> 16), out);
}

std::string Header(int rate, uint32_t data_bytes) {
  std::string h;
  h.append("RIFF");
  PutLe32(36 + data_bytes, &h);
  h.append("WAVEfmt ");
  PutLe32(16, &h);
  PutLe16(1, &h);  // PCM
  PutLe16(1, &h);  // mono
  PutLe32(static_cast<uint32_t>(rate), &h);
  PutLe32(static_cast<uint32_t>(rate) * 2, &h);  // byte rate
  PutLe16(2, &h);                                // block align
  PutLe16(16, &h);                               // bits per sample
  h.append("data");
  PutLe32(data_bytes, &h);
  return h;
}

}  // namespace

absl::StatusOr<WavAudio> ParseWav(absl::string_view b, absl::string_view name) {
  if (b.size() < 12 || b.substr(0, 4) != "RIFF" || b.substr(8, 4) != "WAVE") {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": not a RIFF/WAVE file; give a 16-bit PCM mono .wav"));
  }
  bool have_fmt = false;
  WavAudio out;
  size_t pos = 12;
  while (pos + 8 <= b.size()) {
    const absl::string_view id = b.substr(pos, 4);
    const uint32_t size = Le32(b, pos + 4);
    const size_t body = pos + 8;
    if (id == "fmt ") {
      if (size < 16 || body + size > b.size()) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": truncated fmt chunk"));
      }
      uint16_t format = Le16(b, body);
      const uint16_t channels = Le16(b, body + 2);
      out.sample_rate_hz = static_cast<int>(Le32(b, body + 4));
      const uint16_t bits = Le16(b, body + 14);
      if (format == 0xfffe && size >= 26) format = Le16(b, body + 24);  // extensible subformat
      if (format != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, ": audio format ", format,
            " is not PCM; convert it first, e.g. sox IN -e signed -b 16 -c 1 OUT.wav"));
      }
      if (bits != 16 || channels != 1) {
        return absl::InvalidArgumentError(absl::StrCat(
            name, ": ", bits, "-bit ", channels,
            "-channel audio; only 16-bit mono is supported (sox IN -b 16 -c 1 OUT.wav)"));
      }
      if (out.sample_rate_hz <= 0) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": sample rate 0"));
      }
      have_fmt = true;
    } else if (id == "data") {
      if (!have_fmt) {
        return absl::InvalidArgumentError(absl::StrCat(name, ": data chunk before fmt chunk"));
      }
      // Tolerate a data size past the end (streamed files): take what is there.
      const size_t available = std::min<size_t>(size, b.size() - body);
      out.samples.resize(available / 2);
      for (size_t i = 0; i < out.samples.size(); ++i) {
        out.samples[i] = static_cast<int16_t>(Le16(b, body + 2 * i));
      }
      return out;
    }
    pos = body + size + (size & 1);
  }
  return absl::InvalidArgumentError(absl::StrCat(name, ": no data chunk"));
}

absl::StatusOr<std::vector<int16_t>> Resample(absl::Span<const int16_t> in, int from_hz,
                                              int to_hz) {
  if (from_hz == to_hz) return std::vector<int16_t>(in.begin(), in.end());
  int err = 0;
  SpeexResamplerState* st = speex_resampler_init(1, static_cast<spx_uint32_t>(from_hz),
                                                 static_cast<spx_uint32_t>(to_hz), 5, &err);
  if (st == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resample ", from_hz, " Hz to ", to_hz,
                                                   " Hz: ", speex_resampler_strerror(err)));
  }
  speex_resampler_skip_zeros(st);
  const size_t expected =
      static_cast<size_t>(static_cast<uint64_t>(in.size()) * static_cast<uint64_t>(to_hz) /
                          static_cast<uint64_t>(from_hz));
  std::vector<int16_t> out(expected + 1024);
  size_t in_done = 0, out_done = 0;
  while (in_done < in.size() && out_done < out.size()) {
    spx_uint32_t in_len = static_cast<spx_uint32_t>(in.size() - in_done);
    spx_uint32_t out_len = static_cast<spx_uint32_t>(out.size() - out_done);
    speex_resampler_process_int(st, 0, in.data() + in_done, &in_len, out.data() + out_done,
                                &out_len);
    in_done += in_len;
    out_done += out_len;
    if (in_len == 0 && out_len == 0) break;
  }
  // Flush the filter's delay with zeros so the tail is not lost.
  const std::vector<int16_t> zeros(static_cast<size_t>(speex_resampler_get_input_latency(st)), 0);
  spx_uint32_t in_len = static_cast<spx_uint32_t>(zeros.size());
  spx_uint32_t out_len = static_cast<spx_uint32_t>(out.size() - out_done);
  speex_resampler_process_int(st, 0, zeros.data(), &in_len, out.data() + out_done, &out_len);
  out_done += out_len;
  speex_resampler_destroy(st);
  out.resize(std::min(out_done, expected));
  return out;
}

absl::StatusOr<WavAudio> ReadWavFile(const std::string& path, int rate_hz) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot open WAV file ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream buf;
  buf << in.rdbuf();
  absl::StatusOr<WavAudio> wav = ParseWav(buf.str(), path);
  if (!wav.ok()) return wav.status();
  if (wav->sample_rate_hz != rate_hz) {
    absl::StatusOr<std::vector<int16_t>> resampled =
        Resample(wav->samples, wav->sample_rate_hz, rate_hz);
    if (!resampled.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(path, " is at ", wav->sample_rate_hz,
                                                     " Hz and --rate is ", rate_hz,
                                                     " Hz: ", resampled.status().message()));
    }
    wav->samples = *std::move(resampled);
    wav->sample_rate_hz = rate_hz;
  }
  return wav;
}

std::string EncodeWav(int sample_rate_hz, absl::Span<const int16_t> samples) {
  std::string out = Header(sample_rate_hz, static_cast<uint32_t>(samples.size() * 2));
  for (int16_t s : samples) PutLe16(static_cast<uint16_t>(s), &out);
  return out;
}

WavWriter::~WavWriter() { (void)Close(); }

absl::Status WavWriter::Open(const std::string& path, int sample_rate_hz) {
  if (file_ != nullptr) return absl::FailedPreconditionError("WavWriter already open");
  file_ = std::fopen(path.c_str(), "wb");
  if (file_ == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create recording ", path, ": ", std::strerror(errno)));
  }
  path_ = path;
  rate_ = sample_rate_hz;
  data_bytes_ = 0;
  const std::string h = Header(rate_, 0);
  std::fwrite(h.data(), 1, h.size(), file_);
  return absl::OkStatus();
}

absl::Status WavWriter::Append(absl::Span<const uint8_t> pcm_le) {
  if (file_ == nullptr) return absl::FailedPreconditionError("WavWriter not open");
  const size_t n = pcm_le.size() & ~size_t{1};
  if (std::fwrite(pcm_le.data(), 1, n, file_) != n) {
    return absl::InternalError(absl::StrCat("writing ", path_, ": ", std::strerror(errno)));
  }
  data_bytes_ += n;
  return absl::OkStatus();
}

absl::Status WavWriter::Close() {
  if (file_ == nullptr) return absl::OkStatus();
  const uint32_t size = static_cast<uint32_t>(std::min<uint64_t>(data_bytes_, 0xffffffffu - 36));
  const std::string h = Header(rate_, size);
  std::fseek(file_, 0, SEEK_SET);
  std::fwrite(h.data(), 1, h.size(), file_);
  const bool ok = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!ok) return absl::InternalError(absl::StrCat("closing ", path_, ": ", std::strerror(errno)));
  return absl::OkStatus();
}

}  // namespace audiosocket::audio
