#ifndef AUDIOSOCKET_BRIDGE_SERVER_OPS_LOG_H_
#define AUDIOSOCKET_BRIDGE_SERVER_OPS_LOG_H_

// Structured logs: one JSON object per line on stderr, e.g.
//   {"time":"2026-11-25T20:38:00.123456Z","level":"info","event":"listening",...}
// Thread-safe: each line is formatted whole and written with one write(2).

#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>
#include <variant>

#include "absl/strings/string_view.h"

namespace audiosocket::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Parses "debug", "info", "warning"/"warn", "error".
bool ParseLevel(absl::string_view text, Level* level);
absl::string_view LevelName(Level level);

// Lines below this level are not written. Default kInfo.
void SetMinLevel(Level level);
bool Enabled(Level level);

// A field's value: text, integer, floating point or boolean.
using Value = std::variant<std::string, int64_t, double, bool>;
struct Field {
  Field(absl::string_view k, absl::string_view v) : key(k), value(std::string(v)) {}
  Field(absl::string_view k, const char* v) : key(k), value(std::string(v)) {}
  Field(absl::string_view k, const std::string& v) : key(k), value(v) {}
  template <typename Int,
            typename = std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>>>
  Field(absl::string_view k, Int v) : key(k), value(static_cast<int64_t>(v)) {}
  Field(absl::string_view k, double v) : key(k), value(v) {}
  Field(absl::string_view k, bool v) : key(k), value(v) {}
  std::string key;
  Value value;
};

// Writes one line. `call_id` may be empty for process-wide events.
void Write(Level level, absl::string_view event, absl::string_view call_id,
           std::initializer_list<Field> fields);

// Appends `text` to `out` as a JSON string literal, quotes included.
void AppendJsonString(absl::string_view text, std::string* out);

inline void Info(absl::string_view event, std::initializer_list<Field> fields = {}) {
  Write(Level::kInfo, event, "", fields);
}
inline void Warning(absl::string_view event, std::initializer_list<Field> fields = {}) {
  Write(Level::kWarning, event, "", fields);
}
inline void Error(absl::string_view event, std::initializer_list<Field> fields = {}) {
  Write(Level::kError, event, "", fields);
}

}  // namespace audiosocket::log

#endif  // AUDIOSOCKET_BRIDGE_SERVER_OPS_LOG_H_
