#ifndef AUDIOSOCKET_BRIDGE_SERVER_CONFIG_FLAGS_H_
#define AUDIOSOCKET_BRIDGE_SERVER_CONFIG_FLAGS_H_

// The bridge's command line: every setting is a flag (--help lists them,
// with their defaults), which may also come from an AUDIOSOCKET_BRIDGE_<FLAG>
// environment variable or a --config_file line. Precedence: command line,
// then environment, then file.

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/config/config.h"
#include "server/ops/log.h"

namespace audiosocket {

// Everything main() needs to run the bridge.
struct Settings {
  BridgeConfig config;
  int io_threads = 1;
  log::Level log_level = log::Level::kInfo;
  absl::Duration drain_timeout;
};

// Parses the command line (exits for --help), then the environment and the
// config file. Errors start with the setting at fault ("listen: ...").
absl::StatusOr<Settings> SettingsFromCommandLine(int argc, char** argv);

}  // namespace audiosocket

#endif  // AUDIOSOCKET_BRIDGE_SERVER_CONFIG_FLAGS_H_
