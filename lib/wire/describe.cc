#include "lib/wire/describe.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace audiosocket::wire {
namespace {

std::string Hex(absl::Span<const uint8_t> bytes) {
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

void AppendJsonString(absl::string_view text, std::string* out) {
  out->push_back('"');
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20 || u >= 0x7f) {
      absl::StrAppend(out, absl::StrFormat("\\u%04x", u));
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

}  // namespace

std::vector<Field> DescribeMessage(const Message& message, Dialect dialect,
                                   int audio_bytes_per_sample) {
  const uint8_t kind = KindOf(message);
  const size_t length = EncodedSize(message) - kHeaderSize;
  std::vector<Field> fields = {
      {"type", absl::StrFormat("0x%02x", kind), false},
      {"kind", KindName(kind, dialect), false},
      {"length", absl::StrCat(length), true},
  };
  auto add = [&](std::string key, std::string value, bool number) {
    fields.push_back(Field{std::move(key), std::move(value), number});
  };
  if (const auto* uuid = std::get_if<CallUuid>(&message)) {
    add("uuid", uuid->ToString(), false);
  } else if (const auto* event = std::get_if<DtmfEvent>(&message)) {
    add("state", event->start ? "start" : "stop", false);
    add("digit", std::string(1, event->digit), false);
    add("duration_ms", absl::StrCat(event->duration_ms), true);
  } else if (const auto* digit = std::get_if<DtmfDigit>(&message)) {
    add("digit", std::string(1, digit->digit), false);
  } else if (const auto* control = std::get_if<Control>(&message)) {
    add("code", absl::StrCat(control->code), true);
    add("control", ControlNameOrNumber(control->code), false);
  } else if (const auto* audio = std::get_if<Audio>(&message)) {
    const size_t bytes_per_sample = audio_bytes_per_sample == 1 ? 1 : 2;
    add("rate", absl::StrCat(audio->sample_rate_hz), true);
    add("samples", absl::StrCat(audio->payload.size() / bytes_per_sample), true);
  } else if (const auto* error = std::get_if<Error>(&message)) {
    add("payload", Hex(error->payload), false);
    add("flags", ErrorFlagNames(error->flags()), false);
  } else if (const auto* unknown = std::get_if<Unknown>(&message)) {
    add("payload", Hex(unknown->payload), false);
  }
  return fields;
}

std::string FieldsToJson(absl::Span<const Field> fields) {
  std::string out = "{";
  for (const Field& field : fields) {
    if (out.size() > 1) out.push_back(',');
    AppendJsonString(field.key, &out);
    out.push_back(':');
    if (field.number) {
      out += field.value;
    } else {
      AppendJsonString(field.value, &out);
    }
  }
  out.push_back('}');
  return out;
}

std::string FieldsToText(absl::Span<const Field> fields) {
  std::string out;
  for (const Field& field : fields) {
    absl::StrAppend(&out, out.empty() ? "" : " ", field.key, "=", field.value);
  }
  return out;
}

}  // namespace audiosocket::wire
