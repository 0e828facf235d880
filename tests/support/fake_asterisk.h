#ifndef AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_FAKE_ASTERISK_H_
#define AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_FAKE_ASTERISK_H_

// A scripted Asterisk for tests: one blocking TCP connection that sends
// exactly the bytes a test asks for and decodes what comes back.
// Not thread-safe; one test thread drives it.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "lib/dsp/g711.h"
#include "lib/wire/wire.h"

namespace audiosocket::testing {

// A received message with its payload copied (no views).
struct Received {
  uint8_t kind = 0;
  std::vector<uint8_t> payload;
  bool is_audio() const { return kind >= 0x10 && kind <= 0x18; }
  // Audio payload as samples. Asterisk reads every audio message it receives
  // as signed linear at the kind's rate, whatever the channel's codec; so
  // does this.
  std::vector<int16_t> samples() const;
};

class FakeAsterisk {
 public:
  explicit FakeAsterisk(wire::Dialect dialect = wire::Dialect::kAsterisk) : dialect_(dialect) {}
  ~FakeAsterisk();

  // Connects to 127.0.0.1:`port`. False on failure.
  bool Connect(int port);
  void SendUuid(const std::string& uuid);
  // Connect, then SendUuid: how every call begins. False when the
  // connection failed (nothing is sent then).
  bool Dial(int port, const std::string& uuid);
  void SendAudio(const std::vector<int16_t>& samples, int rate_hz = 8000);
  // `samples` as G.711 bytes labelled 0x10, as a channel with c(ulaw) or
  // c(alaw) sends them.
  void SendG711(dsp::AudioEncoding encoding, const std::vector<int16_t>& samples);
  void SendDtmfDigit(char digit);                           // asterisk 0x03
  void SendDtmfEvent(bool start, char digit, uint32_t ms);  // extended 0x02
  void SendControl(uint8_t code);                           // extended 0x03
  void SendError(uint8_t flags);
  void SendHangup();
  void SendRaw(const std::vector<uint8_t>& bytes);
  void Close();

  // The next message, or nullopt on timeout or when the bridge closed.
  std::optional<Received> Read(absl::Duration timeout);
  // The next message that is not audio (audio is counted and dropped).
  std::optional<Received> ReadNonAudio(absl::Duration timeout);
  // Reads until the bridge closes the connection; true when it did.
  bool WaitClosed(absl::Duration timeout);
  bool closed() const { return closed_; }
  // A send failed (the bridge's end was gone: a reset, or EPIPE).
  bool send_failed() const { return send_failed_; }

  // All audio samples received so far (in order) and the frame sizes.
  const std::vector<int16_t>& audio() const { return audio_; }
  const std::vector<size_t>& frame_sizes() const { return frame_sizes_; }
  // Non-audio messages seen by any Read call.
  const std::vector<Received>& others() const { return others_; }

 private:
  bool Fill(absl::Duration timeout);

  wire::Dialect dialect_;
  int fd_ = -1;
  bool closed_ = false;
  bool send_failed_ = false;
  std::vector<uint8_t> buffer_;
  std::vector<int16_t> audio_;
  std::vector<size_t> frame_sizes_;
  std::vector<Received> others_;
};

// A frame of `samples` samples whose values encode `index` so that echoes
// can be matched exactly.
std::vector<int16_t> NumberedFrame(int index, int samples = 160);

}  // namespace audiosocket::testing

#endif  // AUDIOSOCKET_BRIDGE_TESTS_SUPPORT_FAKE_ASTERISK_H_
