#include "server/config/config.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace audiosocket {

absl::StatusOr<ListenerConfig> ParseListener(absl::string_view text, int index) {
  ListenerConfig listener;
  listener.name = index == 0 ? "default" : absl::StrCat("listener", index);
  std::vector<absl::string_view> parts = absl::StrSplit(text, ',');
  if (parts.empty() || parts[0].empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("listener \"", text, "\" has no address; write e.g. 0.0.0.0:9092"));
  }
  listener.address = std::string(parts[0]);
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(parts[i], '=');
    const std::string key = absl::AsciiStrToLower(kv.first);
    const std::string value(kv.second);
    if (key == "dialect") {
      if (!wire::ParseDialect(value, &listener.dialect)) {
        return absl::InvalidArgumentError(
            absl::StrCat("listener \"", text, "\": dialect must be asterisk or extended"));
      }
    } else if (key == "name") {
      if (value.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("listener \"", text, "\": empty name"));
      }
      listener.name = value;
    } else if (key == "encoding") {
      const std::string lower = absl::AsciiStrToLower(value);
      if (lower == "slin" || lower == "linear16") {
        listener.encoding = bridge::v1::AUDIO_ENCODING_LINEAR16;
      } else if (lower == "ulaw" || lower == "mulaw") {
        listener.encoding = bridge::v1::AUDIO_ENCODING_MULAW;
      } else if (lower == "alaw") {
        listener.encoding = bridge::v1::AUDIO_ENCODING_ALAW;
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("listener \"", text, "\": encoding must be slin, ulaw or alaw"));
      }
    } else if (key == "rate") {
      int rate = 0;
      if (!absl::SimpleAtoi(value, &rate) || !wire::AudioKindForRate(rate).has_value()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "listener \"", text,
            "\": rate must be an AudioSocket rate (8000, 12000, 16000, 24000, 32000, 44100, "
            "48000, 96000, 192000)"));
      }
      listener.default_sample_rate_hz = rate;
    } else if (key == "inband_dtmf") {
      if (!absl::SimpleAtob(value, &listener.detect_inband_dtmf)) {
        return absl::InvalidArgumentError(
            absl::StrCat("listener \"", text, "\": inband_dtmf must be true or false"));
      }
    } else if (key == "allow") {
      for (absl::string_view network : absl::StrSplit(value, '|', absl::SkipEmpty())) {
        absl::StatusOr<net::Cidr> cidr = net::ParseCidr(network);
        if (!cidr.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("listener \"", text, "\": ", cidr.status().message()));
        }
        listener.allow.push_back(*cidr);
      }
    } else {
      return absl::InvalidArgumentError(
          absl::StrCat("listener \"", text, "\": unknown option \"", kv.first,
                       "\" (known: dialect, name, encoding, rate, inband_dtmf, allow)"));
    }
  }
  return listener;
}

bool BridgeConfig::loop_server() const {
  switch (server_transport) {
    case ServerTransport::kLoop:
      return true;
    case ServerTransport::kGrpc:
      return false;
    case ServerTransport::kAuto:
      break;
  }
  // gRPC's own address forms (unix:, dns:...) stay with gRPC's server.
  return mode == BackendMode::kPull && !server_tls() && net::ParseHostPort(grpc_listen).ok();
}

}  // namespace audiosocket
