#ifndef AUDIOSOCKET_BRIDGE_SERVER_CONFIG_CONFIG_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CONFIG_CONFIG_H_

// The bridge's settings as plain values, filled from flags by main.cc and
// directly by tests. Every field's default is the documented default.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "audiosocket/bridge/v1/bridge.pb.h"
#include "lib/net/net.h"
#include "lib/wire/wire.h"

namespace audiosocket {

struct ListenerConfig {
  std::string name = "default";
  std::string address = "0.0.0.0:9092";
  wire::Dialect dialect = wire::Dialect::kAsterisk;
  // How the audio Asterisk sends is encoded (Asterisk labels G.711 as 0x10
  // too). Only that direction: toward Asterisk audio is always signed linear.
  bridge::v1::AudioEncoding encoding = bridge::v1::AUDIO_ENCODING_LINEAR16;
  // The call's rate until its first audio message says otherwise.
  int default_sample_rate_hz = 8000;
  bool detect_inband_dtmf = false;
  // Client networks allowed to connect; empty allows every address.
  std::vector<net::Cidr> allow;
};

// Parses one --listen entry: "ADDRESS[,dialect=asterisk|extended][,name=N]
// [,encoding=slin|ulaw|alaw][,rate=HZ][,inband_dtmf=true|false]
// [,allow=CIDR|CIDR...]".
absl::StatusOr<ListenerConfig> ParseListener(absl::string_view text, int index);

enum class BackendMode { kPush, kPull };

// Which client carries push mode's streams. kLoop: each event loop's own
// HTTP/2 connections (lib/grpc_client), plaintext only. kGrpc: gRPC C++'s
// client, needed for TLS toward backends. kAuto: kLoop unless TLS toward
// backends is configured.
enum class PushTransport { kAuto, kLoop, kGrpc };

// What serves the bridge's gRPC port (--grpc_listen). kLoop: the event
// loops' own HTTP/2 server, ClaimCall streams on the loops and the other
// methods passed through to gRPC C++'s server; plaintext only. kGrpc: gRPC
// C++'s server alone, needed for TLS. kAuto: kLoop in pull mode unless TLS
// is configured or --grpc_listen is not a host:port; kGrpc otherwise.
enum class ServerTransport { kAuto, kLoop, kGrpc };

struct BridgeConfig {
  std::vector<ListenerConfig> listeners = {ListenerConfig{}};
  std::string grpc_listen = "0.0.0.0:50051";
  std::string metrics_listen = "0.0.0.0:9090";  // empty: no metrics endpoint
  BackendMode mode = BackendMode::kPull;

  // Push mode.
  std::string backend_target;  // e.g. "dns:///agents.default.svc:50051"
  int backend_attempts = 3;    // streams tried per call (round-robin moves on)
  absl::Duration accept_timeout = absl::Seconds(3);
  // Upper bound on any call's gRPC stream (gRPC deadline).
  absl::Duration max_call_duration = absl::Hours(24);
  PushTransport push_transport = PushTransport::kAuto;

  // Pull mode.
  absl::Duration claim_timeout = absl::Seconds(10);
  ServerTransport server_transport = ServerTransport::kAuto;

  // AudioSocket side.
  absl::Duration uuid_timeout = absl::Seconds(5);
  // How long after the UUID the bridge waits for the first audio message to
  // learn the call's rate before telling the backend.
  absl::Duration first_audio_wait = absl::Milliseconds(500);
  bool send_silence = true;
  size_t max_payload = 65535;
  // When Asterisk stops reading: this much unsent audio, or this long
  // without progress, ends the call (CALLER_UNRESPONSIVE).
  int max_unsent_ms = 1000;
  // Asterisk sends audio in real time: a caller whose audio runs this far
  // ahead of the clock is flooding, a protocol error. 0: no limit.
  int max_audio_ahead_ms = 5000;
  absl::Duration write_stall_timeout = absl::Seconds(5);
  // No complete AudioSocket message from Asterisk for this long ends the
  // call (CALLER_IDLE). Asterisk sends a 20 ms frame every 20 ms while its
  // channel has media; a channel without media (silence suppression
  // upstream) may send nothing, hence a default well above a pause in
  // speech. Zero: no limit.
  absl::Duration caller_idle_timeout = absl::Seconds(30);
  // Event loops start rounds at most this often, so that under load one
  // round takes the input of many calls (EpollDispatcher::set_round_window).
  // Against no window, 500 us took about a third off the CPU per call at
  // 100-300 calls; 1 ms halves the wake-ups again and takes about a tenth
  // more, for at most 1 ms more latency toward the backend (p99 still
  // under 2 ms; docs/BENCHMARKS.md).
  absl::Duration io_round_window = absl::Milliseconds(1);

  // Buffers.
  int hold_audio_ms = 2000;     // caller audio held until accept / claim
  int backend_queue_ms = 1000;  // caller audio queued toward a slow backend
  int max_playout_ms = 120000;  // backend audio queued for the caller
  int playout_high_watermark_ms = 5000;
  int playout_low_watermark_ms = 1000;

  // Limits.
  int max_calls = 10000;         // open AudioSocket connections
  int max_pull_streams = 10000;  // open ClaimCall streams

  // Security. TLS for the gRPC server (pull mode and the BridgeService):
  // certificate and key; a client CA makes it mutual TLS.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
  // TLS toward push backends: the CA that signs them; a certificate and key
  // make it mutual TLS.
  std::string backend_tls_ca_file;
  std::string backend_tls_cert_file;
  std::string backend_tls_key_file;
  // Any TLS setting toward backends is given (push needs gRPC's client).
  bool backend_tls() const {
    return !backend_tls_ca_file.empty() || !backend_tls_cert_file.empty() ||
           !backend_tls_key_file.empty();
  }
  // Any TLS setting for the gRPC server is given (it needs gRPC's server).
  bool server_tls() const {
    return !tls_cert_file.empty() || !tls_key_file.empty() || !tls_client_ca_file.empty();
  }
  // Whether the loops' own server takes the gRPC port (ServerTransport).
  bool loop_server() const;
  // Bearer token checked on BridgeService RPCs and sent on push streams.
  std::string auth_token;

  // What the caller hears when no backend takes the call or it is lost:
  // this WAV (16-bit mono PCM), then hang-up. Empty: hang up at once.
  std::string fallback_wav;
};

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CONFIG_CONFIG_H_
