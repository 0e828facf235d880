#include "tests/support/fake_asterisk.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "gtest/gtest.h"
#include "tests/support/loopback.h"

namespace audiosocket::testing {

std::vector<int16_t> Received::samples() const {
  std::vector<int16_t> out(payload.size() / 2);
  std::memcpy(out.data(), payload.data(), out.size() * 2);
  return out;
}

std::vector<int16_t> NumberedFrame(int index, int samples) {
  std::vector<int16_t> frame(static_cast<size_t>(samples));
  for (int i = 0; i < samples; ++i) {
    frame[static_cast<size_t>(i)] = static_cast<int16_t>((index * 131 + i * 7) % 20000 - 10000);
  }
  return frame;
}

FakeAsterisk::~FakeAsterisk() { Close(); }

bool FakeAsterisk::Connect(int port) {
  fd_ = ConnectLoopback(port);
  if (fd_ < 0) return false;
  const int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return true;
}

bool FakeAsterisk::Dial(int port, const std::string& uuid) {
  if (!Connect(port)) return false;
  SendUuid(uuid);
  return true;
}

void FakeAsterisk::SendRaw(const std::vector<uint8_t>& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      send_failed_ = true;
      return;
    }
    sent += static_cast<size_t>(n);
  }
}

namespace {
void EncodeOrFail(const wire::Message& message, wire::Dialect dialect, std::vector<uint8_t>* out) {
  absl::Status status = wire::Encode(message, dialect, wire::Peer::kServer, out);
  ASSERT_TRUE(status.ok()) << status;
}
}  // namespace

void FakeAsterisk::SendUuid(const std::string& uuid) {
  auto parsed = wire::CallUuid::Parse(uuid);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  std::vector<uint8_t> bytes;
  EncodeOrFail(*parsed, dialect_, &bytes);
  SendRaw(bytes);
}

void FakeAsterisk::SendAudio(const std::vector<int16_t>& samples, int rate_hz) {
  std::vector<uint8_t> bytes;
  wire::Audio audio;
  audio.sample_rate_hz = rate_hz;
  audio.payload =
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(samples.data()), samples.size() * 2);
  EncodeOrFail(audio, dialect_, &bytes);
  SendRaw(bytes);
}

void FakeAsterisk::SendG711(dsp::AudioEncoding encoding, const std::vector<int16_t>& samples) {
  std::vector<uint8_t> g711(samples.size());
  dsp::EncodeFromLinear(encoding, samples, absl::MakeSpan(g711));
  std::vector<uint8_t> bytes;
  wire::EncodeRaw(0x10, g711, &bytes);
  SendRaw(bytes);
}

void FakeAsterisk::SendDtmfDigit(char digit) {
  std::vector<uint8_t> bytes;
  EncodeOrFail(wire::DtmfDigit{digit}, dialect_, &bytes);
  SendRaw(bytes);
}

void FakeAsterisk::SendDtmfEvent(bool start, char digit, uint32_t ms) {
  std::vector<uint8_t> bytes;
  EncodeOrFail(wire::DtmfEvent{start, digit, ms}, dialect_, &bytes);
  SendRaw(bytes);
}

void FakeAsterisk::SendControl(uint8_t code) {
  std::vector<uint8_t> bytes;
  EncodeOrFail(wire::Control{code}, dialect_, &bytes);
  SendRaw(bytes);
}

void FakeAsterisk::SendError(uint8_t flags) {
  std::vector<uint8_t> bytes;
  const uint8_t payload[1] = {flags};
  wire::EncodeRaw(0xff, absl::MakeConstSpan(payload, 1), &bytes);
  SendRaw(bytes);
}

void FakeAsterisk::SendHangup() { SendRaw({0x00, 0x00, 0x00}); }

void FakeAsterisk::Close() {
  if (fd_ >= 0) {
    close(fd_);
    fd_ = -1;
  }
}

bool FakeAsterisk::Fill(absl::Duration timeout) {
  if (fd_ < 0 || closed_) return false;
  pollfd p{fd_, POLLIN, 0};
  const int ready = poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout)));
  if (ready <= 0) return false;
  uint8_t chunk[65536];
  const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
  if (n <= 0) {
    closed_ = true;
    return false;
  }
  buffer_.insert(buffer_.end(), chunk, chunk + n);
  return true;
}

std::optional<Received> FakeAsterisk::Read(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    if (buffer_.size() >= 3) {
      const size_t length = (static_cast<size_t>(buffer_[1]) << 8) | buffer_[2];
      if (buffer_.size() >= 3 + length) {
        Received message;
        message.kind = buffer_[0];
        message.payload.assign(buffer_.begin() + 3, buffer_.begin() + 3 + length);
        buffer_.erase(buffer_.begin(), buffer_.begin() + 3 + length);
        if (message.is_audio()) {
          const std::vector<int16_t> samples = message.samples();
          audio_.insert(audio_.end(), samples.begin(), samples.end());
          frame_sizes_.push_back(message.payload.size());
        } else {
          others_.push_back(message);
        }
        return message;
      }
    }
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration() || !Fill(left)) return std::nullopt;
  }
}

std::optional<Received> FakeAsterisk::ReadNonAudio(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::optional<Received> message = Read(deadline - absl::Now());
    if (!message.has_value() || !message->is_audio()) return message;
  }
}

bool FakeAsterisk::WaitClosed(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!closed_ && absl::Now() < deadline) {
    if (!Read(deadline - absl::Now()).has_value() && !closed_) return false;
  }
  return closed_;
}

}  // namespace audiosocket::testing
