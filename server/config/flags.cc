#include "server/config/flags.h"

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"

namespace {
// Each setting's default is BridgeConfig's; the flags only name them.
const audiosocket::BridgeConfig kDefaults;
}  // namespace

ABSL_FLAG(std::string, listen, kDefaults.listeners.front().address,
          "AudioSocket listeners, separated by ';'. Each is ADDRESS[,dialect=asterisk|extended]"
          "[,name=NAME][,encoding=slin|ulaw|alaw][,rate=HZ][,inband_dtmf=true|false]"
          "[,allow=CIDR[|CIDR...]], e.g. "
          "\"0.0.0.0:9092;0.0.0.0:9093,dialect=extended,name=ext\". Port 0 picks a free port. "
          "encoding= is what Asterisk sends (G.711 is labelled 0x10); toward Asterisk the bridge "
          "always sends signed linear. rate= holds until the call's first audio says otherwise.");
ABSL_FLAG(std::string, grpc_listen, kDefaults.grpc_listen,
          "Address the gRPC server binds (BridgeService, health, reflection).");
ABSL_FLAG(std::string, mode, "auto",
          "push (dial --backend per call), pull (backends claim calls over ClaimCall), or auto "
          "(push when --backend is set).");
ABSL_FLAG(std::string, backend, "",
          "Push mode: the backends' gRPC target, e.g. dns:///agents.default.svc:50051 or "
          "ipv4:10.0.0.1:50051,10.0.0.2:50051 (round-robin across addresses).");
ABSL_FLAG(std::string, push_transport, "auto",
          "Push mode: loop (each event loop's own HTTP/2 connections to the backends; "
          "plaintext), grpc (gRPC C++'s client; needed for TLS) or auto (loop unless "
          "--backend_tls_* is set).");
ABSL_FLAG(std::string, server_transport, "auto",
          "What serves --grpc_listen: loop (the event loops' own HTTP/2 server: ClaimCall "
          "streams on the loops, other methods passed to gRPC's server; plaintext), grpc "
          "(gRPC C++'s server; needed for TLS) or auto (loop in pull mode unless --tls_* is "
          "set).");
ABSL_FLAG(int, backend_attempts, kDefaults.backend_attempts,
          "Push mode: busy rejects per call before the call ends ALL_BACKENDS_REJECTED. Streams "
          "that fail before accepting are retried with backoff (100 ms doubling to 1 s) until "
          "--accept_timeout.");
ABSL_FLAG(absl::Duration, accept_timeout, kDefaults.accept_timeout,
          "Push mode: time for a backend to accept a call (all attempts).");
ABSL_FLAG(absl::Duration, claim_timeout, kDefaults.claim_timeout,
          "Pull mode: time a call waits for a worker to claim it.");
ABSL_FLAG(absl::Duration, uuid_timeout, kDefaults.uuid_timeout,
          "Time for a new connection to send its UUID before it is closed.");
ABSL_FLAG(absl::Duration, first_audio_wait, kDefaults.first_audio_wait,
          "Time after the UUID to wait for the first audio message (which gives the call's rate) "
          "before the backend is told of the call.");
ABSL_FLAG(bool, send_silence, kDefaults.send_silence,
          "Send silence frames to Asterisk when no audio is queued (some Asterisk versions stall "
          "their own audio until the server sends something).");
ABSL_FLAG(int, max_payload, static_cast<int>(kDefaults.max_payload),
          "Largest AudioSocket payload accepted, in bytes.");
ABSL_FLAG(int, hold_audio_ms, kDefaults.hold_audio_ms,
          "Caller audio held (bounded) until a backend accepts or claims the call, in ms.");
ABSL_FLAG(int, backend_queue_ms, kDefaults.backend_queue_ms,
          "Caller audio queued toward a slow backend before the oldest is dropped, in ms.");
ABSL_FLAG(int, max_playout_ms, kDefaults.max_playout_ms,
          "Backend audio queued per call for the caller, in ms.");
ABSL_FLAG(int, playout_high_watermark_ms, kDefaults.playout_high_watermark_ms,
          "Playout level that sends HIGH_WATERMARK (XOFF).");
ABSL_FLAG(int, playout_low_watermark_ms, kDefaults.playout_low_watermark_ms,
          "Playout level that sends LOW_WATERMARK (XON).");
ABSL_FLAG(int, max_unsent_ms, kDefaults.max_unsent_ms,
          "Audio Asterisk has not read before further frames are dropped, in ms.");
ABSL_FLAG(int, max_audio_ahead_ms, kDefaults.max_audio_ahead_ms,
          "Caller audio ahead of real time that ends the call as a flood (PROTOCOL_ERROR), in "
          "ms; 0: no limit.");
ABSL_FLAG(absl::Duration, write_stall_timeout, kDefaults.write_stall_timeout,
          "Time Asterisk may stop reading before the call ends CALLER_UNRESPONSIVE.");
ABSL_FLAG(absl::Duration, caller_idle_timeout, kDefaults.caller_idle_timeout,
          "Time after the UUID without a complete AudioSocket message from Asterisk before the "
          "call ends CALLER_IDLE (Asterisk sends 20 ms of audio every 20 ms while its channel has "
          "media; a channel without media may send nothing); 0: no limit.");
ABSL_FLAG(absl::Duration, drain_timeout, absl::Seconds(30),
          "On SIGTERM: time active calls get to finish before they end with reason SHUTDOWN.");
ABSL_FLAG(int, io_threads, 1, "Event-loop threads that run AudioSocket calls.");
ABSL_FLAG(absl::Duration, io_round_window, kDefaults.io_round_window,
          "Event loops start a round at most this often: under load the input of many calls "
          "is taken in one wake-up instead of one each. Timers (the 20 ms playout) stay exact; "
          "input and backend messages wait at most this long. 0: a round as soon as anything "
          "is ready; at most 2ms.");
ABSL_FLAG(std::string, metrics_listen, kDefaults.metrics_listen,
          "Address of the Prometheus /metrics endpoint (HTTP); empty turns it off.");
ABSL_FLAG(int, max_calls, kDefaults.max_calls,
          "Most AudioSocket connections open at once; more are closed at once and counted.");
ABSL_FLAG(int, max_pull_streams, kDefaults.max_pull_streams,
          "Most ClaimCall streams open at once; more are refused with RESOURCE_EXHAUSTED.");
ABSL_FLAG(std::string, fallback_wav, "",
          "WAV file (16-bit mono PCM) played to the caller when no backend takes the call or the "
          "backend is lost, before the hang-up. Empty: hang up at once.");
ABSL_FLAG(std::string, tls_cert_file, "",
          "PEM certificate for the gRPC server (TLS); needs --tls_key_file.");
ABSL_FLAG(std::string, tls_key_file, "", "PEM private key for --tls_cert_file.");
ABSL_FLAG(std::string, tls_client_ca_file, "",
          "PEM CA that must sign clients' certificates: mutual TLS on the gRPC server.");
ABSL_FLAG(std::string, backend_tls_ca_file, "",
          "Push mode: PEM CA that signs the backends' certificates (TLS toward backends).");
ABSL_FLAG(std::string, backend_tls_cert_file, "",
          "Push mode: PEM client certificate presented to backends (mutual TLS).");
ABSL_FLAG(std::string, backend_tls_key_file, "", "Push mode: key for --backend_tls_cert_file.");
ABSL_FLAG(std::string, auth_token_file, "",
          "File holding a bearer token: required on every BridgeService RPC (pull mode) and sent "
          "on every push stream as \"authorization: Bearer <token>\".");
ABSL_FLAG(std::string, config_file, "",
          "File of settings, one flag=value per line (# comments). Precedence: command line, "
          "then AUDIOSOCKET_BRIDGE_<FLAG> environment variables, then this file.");
ABSL_FLAG(std::string, log_level, "info", "Lowest log level written: debug, info, warning, error.");

namespace audiosocket {
namespace {

// PushTransport and ServerTransport are spelt the same on the command line;
// one parser keeps their words and their refusal identical.
template <typename Transport>
bool ParseTransport(const char* name, absl::string_view value, Transport* out, std::string* setting,
                    std::string* error) {
  struct Word {
    absl::string_view word;
    Transport transport;
  };
  constexpr Word kWords[] = {
      {"auto", Transport::kAuto},
      {"loop", Transport::kLoop},
      {"grpc", Transport::kGrpc},
  };
  for (const Word& w : kWords) {
    if (value == w.word) {
      *out = w.transport;
      return true;
    }
  }
  *setting = name;
  *error = "must be loop, grpc or auto";
  return false;
}

// Fills `config` from the flags; on error names the setting.
bool ConfigFromFlags(BridgeConfig* config, std::string* setting, std::string* error) {
  config->listeners.clear();
  int index = 0;
  for (absl::string_view entry :
       absl::StrSplit(absl::GetFlag(FLAGS_listen), ';', absl::SkipWhitespace())) {
    auto listener = ParseListener(absl::StripAsciiWhitespace(entry), index++);
    if (!listener.ok()) {
      *setting = "listen";
      *error = std::string(listener.status().message());
      return false;
    }
    config->listeners.push_back(*listener);
  }
  if (config->listeners.empty()) {
    *setting = "listen";
    *error = "at least one AudioSocket listener is needed";
    return false;
  }
  config->grpc_listen = absl::GetFlag(FLAGS_grpc_listen);
  config->backend_target = absl::GetFlag(FLAGS_backend);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "push" || (mode == "auto" && !config->backend_target.empty())) {
    config->mode = BackendMode::kPush;
  } else if (mode == "pull" || mode == "auto") {
    config->mode = BackendMode::kPull;
  } else {
    *setting = "mode";
    *error = "must be push, pull or auto";
    return false;
  }
  if (config->mode == BackendMode::kPush && config->backend_target.empty()) {
    *setting = "backend";
    *error = "push mode needs --backend (a gRPC target)";
    return false;
  }
  struct IntSetting {
    const char* name;
    int value;
    int min;
    int max;
    int* out;
  };
  const IntSetting ints[] = {
      {"backend_attempts", absl::GetFlag(FLAGS_backend_attempts), 1, 100,
       &config->backend_attempts},
      {"hold_audio_ms", absl::GetFlag(FLAGS_hold_audio_ms), 0, 600000, &config->hold_audio_ms},
      {"backend_queue_ms", absl::GetFlag(FLAGS_backend_queue_ms), 20, 600000,
       &config->backend_queue_ms},
      {"max_playout_ms", absl::GetFlag(FLAGS_max_playout_ms), 20, 3600000, &config->max_playout_ms},
      {"playout_high_watermark_ms", absl::GetFlag(FLAGS_playout_high_watermark_ms), 20, 3600000,
       &config->playout_high_watermark_ms},
      {"playout_low_watermark_ms", absl::GetFlag(FLAGS_playout_low_watermark_ms), 0, 3600000,
       &config->playout_low_watermark_ms},
      {"max_unsent_ms", absl::GetFlag(FLAGS_max_unsent_ms), 20, 60000, &config->max_unsent_ms},
      {"max_audio_ahead_ms", absl::GetFlag(FLAGS_max_audio_ahead_ms), 0, 3600000,
       &config->max_audio_ahead_ms},
  };
  for (const IntSetting& s : ints) {
    if (s.value < s.min || s.value > s.max) {
      *setting = s.name;
      *error = absl::StrCat("must be between ", s.min, " and ", s.max, " (got ", s.value, ")");
      return false;
    }
    *s.out = s.value;
  }
  if (config->playout_low_watermark_ms >= config->playout_high_watermark_ms) {
    *setting = "playout_low_watermark_ms";
    *error = "must be below playout_high_watermark_ms";
    return false;
  }
  const int max_payload = absl::GetFlag(FLAGS_max_payload);
  if (max_payload < 16 || max_payload > 65535) {
    *setting = "max_payload";
    *error = "must be between 16 and 65535 bytes";
    return false;
  }
  config->max_payload = static_cast<size_t>(max_payload);
  struct DurationSetting {
    const char* name;
    absl::Duration value;
    absl::Duration* out;
  };
  const DurationSetting durations[] = {
      {"accept_timeout", absl::GetFlag(FLAGS_accept_timeout), &config->accept_timeout},
      {"claim_timeout", absl::GetFlag(FLAGS_claim_timeout), &config->claim_timeout},
      {"uuid_timeout", absl::GetFlag(FLAGS_uuid_timeout), &config->uuid_timeout},
      {"first_audio_wait", absl::GetFlag(FLAGS_first_audio_wait), &config->first_audio_wait},
      {"write_stall_timeout", absl::GetFlag(FLAGS_write_stall_timeout),
       &config->write_stall_timeout},
  };
  for (const DurationSetting& d : durations) {
    if (d.value <= absl::ZeroDuration()) {
      *setting = d.name;
      *error = "must be a positive duration, e.g. 5s or 200ms";
      return false;
    }
    *d.out = d.value;
  }
  if (absl::GetFlag(FLAGS_caller_idle_timeout) < absl::ZeroDuration()) {
    *setting = "caller_idle_timeout";
    *error = "must be 0 (no limit) or a positive duration, e.g. 30s";
    return false;
  }
  config->caller_idle_timeout = absl::GetFlag(FLAGS_caller_idle_timeout);
  const absl::Duration window = absl::GetFlag(FLAGS_io_round_window);
  if (window < absl::ZeroDuration() || window > absl::Milliseconds(2)) {
    *setting = "io_round_window";
    *error = "must be between 0 and 2ms";
    return false;
  }
  config->io_round_window = window;
  config->send_silence = absl::GetFlag(FLAGS_send_silence);
  config->metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  if (absl::GetFlag(FLAGS_max_calls) < 1) {
    *setting = "max_calls";
    *error = "must be at least 1";
    return false;
  }
  config->max_calls = absl::GetFlag(FLAGS_max_calls);
  if (absl::GetFlag(FLAGS_max_pull_streams) < 1) {
    *setting = "max_pull_streams";
    *error = "must be at least 1";
    return false;
  }
  config->max_pull_streams = absl::GetFlag(FLAGS_max_pull_streams);
  config->fallback_wav = absl::GetFlag(FLAGS_fallback_wav);
  config->tls_cert_file = absl::GetFlag(FLAGS_tls_cert_file);
  config->tls_key_file = absl::GetFlag(FLAGS_tls_key_file);
  config->tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca_file);
  config->backend_tls_ca_file = absl::GetFlag(FLAGS_backend_tls_ca_file);
  config->backend_tls_cert_file = absl::GetFlag(FLAGS_backend_tls_cert_file);
  config->backend_tls_key_file = absl::GetFlag(FLAGS_backend_tls_key_file);
  if (!ParseTransport("push_transport", absl::GetFlag(FLAGS_push_transport),
                      &config->push_transport, setting, error)) {
    return false;
  }
  if (config->push_transport == PushTransport::kLoop && config->backend_tls()) {
    *setting = "push_transport";
    *error = "loop speaks plaintext HTTP/2 only; use grpc (or auto) for TLS toward backends";
    return false;
  }
  if (!ParseTransport("server_transport", absl::GetFlag(FLAGS_server_transport),
                      &config->server_transport, setting, error)) {
    return false;
  }
  if (config->server_transport == ServerTransport::kLoop && config->server_tls()) {
    *setting = "server_transport";
    *error = "loop speaks plaintext HTTP/2 only; use grpc (or auto) with --tls_*";
    return false;
  }
  if (config->server_transport == ServerTransport::kLoop &&
      !net::ParseHostPort(config->grpc_listen).ok()) {
    *setting = "server_transport";
    *error = "loop serves a host:port --grpc_listen only; use grpc (or auto) for other forms";
    return false;
  }
  if (const std::string path = absl::GetFlag(FLAGS_auth_token_file); !path.empty()) {
    std::ifstream in(path);
    std::string token;
    if (!in || !std::getline(in, token)) {
      *setting = "auth_token_file";
      *error = absl::StrCat("cannot read a token from \"", path, "\"");
      return false;
    }
    token = std::string(absl::StripAsciiWhitespace(token));
    if (token.empty()) {
      *setting = "auth_token_file";
      *error = absl::StrCat("\"", path, "\" holds an empty token");
      return false;
    }
    config->auth_token = token;
  }
  return true;
}

// Names of the flags given on the command line (recorded before parsing:
// this Abseil release keeps CommandLineFlag::IsSpecifiedOnCommandLine private).
absl::flat_hash_set<std::string>& CommandLineNames() {
  static auto* names = new absl::flat_hash_set<std::string>();
  return *names;
}

void RecordCommandLineNames(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view arg = argv[i];
    if (arg == "--") break;
    if (!absl::ConsumePrefix(&arg, "--")) {
      if (!absl::ConsumePrefix(&arg, "-")) continue;
    }
    const absl::string_view name = arg.substr(0, arg.find('='));
    CommandLineNames().insert(std::string(name));
    if (absl::StartsWith(name, "no")) CommandLineNames().insert(std::string(name.substr(2)));
  }
}

// This binary's own flags (not those of libraries linked in).
bool IsOwnFlag(const absl::CommandLineFlag& flag) {
  return absl::StrContains(flag.Filename(), "server/config/flags.cc");
}

// Sets flags not given on the command line from `source` ("config file
// F line N" or "environment"); on error names the setting.
bool ApplySetting(absl::string_view name, absl::string_view value, absl::string_view source,
                  std::string* setting, std::string* error) {
  absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
  if (flag == nullptr || !IsOwnFlag(*flag) || name == "config_file") {
    *setting = std::string(name);
    *error = absl::StrCat("unknown setting in ", source, "; see --help");
    return false;
  }
  if (CommandLineNames().contains(name)) return true;  // the command line wins
  std::string parse_error;
  if (!flag->ParseFrom(value, &parse_error)) {
    *setting = std::string(name);
    *error = absl::StrCat("invalid value \"", value, "\" from ", source, ": ", parse_error);
    return false;
  }
  return true;
}

// Applies the config file, then the environment over it.
bool ApplyFileAndEnvironment(std::string* setting, std::string* error) {
  if (const std::string path = absl::GetFlag(FLAGS_config_file); !path.empty()) {
    std::ifstream in(path);
    if (!in) {
      *setting = "config_file";
      *error = absl::StrCat("cannot read \"", path, "\"");
      return false;
    }
    std::string line;
    for (int number = 1; std::getline(in, line); ++number) {
      absl::string_view text = absl::StripAsciiWhitespace(line);
      if (text.empty() || text[0] == '#') continue;
      if (absl::StartsWith(text, "--")) text.remove_prefix(2);
      const size_t equals = text.find('=');
      if (equals == absl::string_view::npos) {
        *setting = "config_file";
        *error = absl::StrCat(path, " line ", number, ": expected flag=value");
        return false;
      }
      const std::string source = absl::StrCat("config file ", path, " line ", number);
      if (!ApplySetting(absl::StripAsciiWhitespace(text.substr(0, equals)),
                        absl::StripAsciiWhitespace(text.substr(equals + 1)), source, setting,
                        error)) {
        return false;
      }
    }
  }
  for (const auto& [name, flag] : absl::GetAllFlags()) {
    if (!IsOwnFlag(*flag) || name == "config_file") continue;
    const std::string variable = absl::StrCat("AUDIOSOCKET_BRIDGE_", absl::AsciiStrToUpper(name));
    if (const char* value = std::getenv(variable.c_str()); value != nullptr) {
      if (!ApplySetting(name, value, absl::StrCat("environment variable ", variable), setting,
                        error)) {
        return false;
      }
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<Settings> SettingsFromCommandLine(int argc, char** argv) {
  // --help lists this file's flags (Abseil would look for a file named
  // after the binary).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view path) {
    return absl::EndsWith(path, "server/config/flags.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  RecordCommandLineNames(argc, argv);
  absl::ParseCommandLine(argc, argv);
  std::string setting;
  std::string error;
  const auto failed = [&] {
    return absl::InvalidArgumentError(absl::StrCat(setting, ": ", error));
  };
  if (!ApplyFileAndEnvironment(&setting, &error)) return failed();
  Settings settings;
  if (!log::ParseLevel(absl::GetFlag(FLAGS_log_level), &settings.log_level)) {
    return absl::InvalidArgumentError("log_level: must be one of debug, info, warning, error");
  }
  if (!ConfigFromFlags(&settings.config, &setting, &error)) return failed();
  settings.io_threads = absl::GetFlag(FLAGS_io_threads);
  if (settings.io_threads < 1 || settings.io_threads > 64) {
    return absl::InvalidArgumentError("io_threads: must be between 1 and 64");
  }
  settings.drain_timeout = absl::GetFlag(FLAGS_drain_timeout);
  return settings;
}

}  // namespace audiosocket
