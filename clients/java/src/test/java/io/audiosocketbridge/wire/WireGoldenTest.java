package io.audiosocketbridge.wire;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * The wire helper against every golden vector in tests/testdata/wire: decode the bytes and expect
 * the messages (or the error at its offset); build the messages from their fields and expect the
 * bytes (or the refusal).
 */
class WireGoldenTest {
  static Path vectors() {
    String p = System.getProperty("wire.vectors");
    return p != null && !p.startsWith("${") ? Path.of(p)
        : Path.of(System.getProperty("user.dir")).resolve("../../tests/testdata/wire").normalize();
  }

  static final class Vector {
    String file;
    String name;
    Map<String, String> keys = new LinkedHashMap<>();
    StringBuilder hex = new StringBuilder();
    List<String> messages = new ArrayList<>();
  }

  static String stripComment(String line) {
    for (int i = 0; i < line.length(); i++) {
      if (line.charAt(i) == '#' && (i == 0 || line.charAt(i - 1) == ' ' || line.charAt(i - 1) == '\t')) return line.substring(0, i);
    }
    return line;
  }

  static List<Vector> parse(Path file) throws IOException {
    List<Vector> out = new ArrayList<>();
    Vector current = null;
    for (String raw : Files.readAllLines(file)) {
      String line = stripComment(raw).trim();
      if (line.isEmpty()) continue;
      int colon = line.indexOf(':');
      String key = line.substring(0, colon).trim();
      String value = line.substring(colon + 1).trim();
      if (key.equals("vector")) {
        current = new Vector();
        current.file = file.getFileName().toString();
        current.name = value;
        out.add(current);
      } else if (key.equals("hex")) {
        current.hex.append(value.replace(" ", ""));
      } else if (key.equals("message")) {
        current.messages.add(value);
      } else {
        current.keys.put(key, value);
      }
    }
    return out;
  }

  static Map<String, String> fields(String description) {
    Map<String, String> out = new LinkedHashMap<>();
    for (String pair : description.split(" ")) {
      int eq = pair.indexOf('=');
      out.put(pair.substring(0, eq), pair.substring(eq + 1));
    }
    return out;
  }

  static String describe(Wire.Message m, Wire.Dialect dialect, int bytesPerSample) {
    StringBuilder s = new StringBuilder(String.format("type=0x%02x kind=%s length=%d", m.type(), Wire.kindName(m.type(), dialect), m.length()));
    switch (m.kind()) {
      case UUID -> s.append(" uuid=").append(m.uuid());
      case DTMF -> s.append(" state=").append(m.start() ? "start" : "stop").append(" digit=").append(m.digit()).append(" duration_ms=").append(m.durationMs());
      case DTMF_DIGIT -> s.append(" digit=").append(m.digit());
      case CONTROL -> s.append(" code=").append(m.code()).append(" control=").append(Wire.controlName(m.code()));
      case AUDIO -> s.append(" rate=").append(m.rate()).append(" samples=").append(m.length() / bytesPerSample);
      case ERROR -> s.append(" payload=").append(HexFormat.of().formatHex(m.payload())).append(" flags=")
          .append(String.join("|", Wire.errorFlagNames(m.payload().length > 0 ? m.payload()[0] & 0xff : 0)));
      case UNKNOWN -> s.append(" payload=").append(HexFormat.of().formatHex(m.payload()));
      default -> {}
    }
    return s.toString();
  }

  static Wire.Message build(String description, byte[] bytes, int at) {
    Map<String, String> f = fields(description);
    int length = Integer.parseInt(f.get("length"));
    String kind = f.get("kind");
    if (kind.startsWith("unknown(")) return Wire.Message.unknown(Integer.parseInt(f.get("type").substring(2), 16), HexFormat.of().parseHex(f.get("payload")));
    return switch (kind) {
      case "hangup" -> Wire.Message.hangup();
      case "uuid" -> Wire.Message.uuid(f.get("uuid"));
      case "dtmf" -> Wire.Message.dtmf(f.get("state").equals("start"), f.get("digit").charAt(0), Long.parseLong(f.get("duration_ms")));
      case "dtmf_digit" -> Wire.Message.dtmfDigit(f.get("digit").charAt(0));
      case "control" -> Wire.Message.control(Integer.parseInt(f.get("code")));
      case "audio" -> Wire.Message.audio(Integer.parseInt(f.get("rate")), java.util.Arrays.copyOfRange(bytes, at + 3, at + 3 + length));
      case "error" -> Wire.Message.error(HexFormat.of().parseHex(f.get("payload")));
      default -> throw new IllegalArgumentException(kind);
    };
  }

  static Wire.Decoder decoder(Vector v) {
    return new Wire.Decoder(dialect(v),
        Wire.UnknownPolicy.valueOf(v.keys.getOrDefault("policy", "reject").toUpperCase()),
        Integer.parseInt(v.keys.getOrDefault("max_payload", "65535")),
        Integer.parseInt(v.keys.getOrDefault("bytes_per_sample", "2")));
  }

  static Wire.Dialect dialect(Vector v) { return Wire.Dialect.valueOf(v.keys.get("dialect").toUpperCase()); }

  static Wire.Peer peer(Vector v) { return Wire.Peer.valueOf(v.keys.get("peer").toUpperCase()); }

  @Test
  void allVectorFilesArePresent() throws IOException {
    try (Stream<Path> files = Files.list(vectors())) {
      assertEquals(List.of("asterisk.txt", "extended.txt", "malformed.txt"),
          files.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".txt")).sorted().toList());
    }
  }

  @TestFactory
  Stream<DynamicTest> goldenVectors() throws IOException {
    List<DynamicTest> tests = new ArrayList<>();
    List<Path> files;
    try (Stream<Path> list = Files.list(vectors())) {
      files = list.filter(p -> p.toString().endsWith(".txt")).sorted().toList();
    }
    for (Path file : files) {
      for (Vector v : parse(file)) {
        byte[] bytes = HexFormat.of().parseHex(v.hex);
        int bps = Integer.parseInt(v.keys.getOrDefault("bytes_per_sample", "2"));
        tests.add(DynamicTest.dynamicTest("decode " + v.file + " " + v.name, () -> {
          peer(v);
          List<Wire.Message> decoded;
          String error = v.keys.get("error");
          if (error != null) {
            String code = error.split(" ")[0];
            long offset = Long.parseLong(error.split("offset=")[1]);
            Wire.WireException e = assertThrows(Wire.WireException.class, () -> Wire.decodeAll(bytes, decoder(v)));
            assertEquals(code, e.code);
            assertEquals(offset, e.offset);
            decoded = e.before;
            // One byte at a time, the same fault.
            Wire.Decoder streaming = decoder(v);
            Wire.WireException e2 = assertThrows(Wire.WireException.class, () -> {
              for (byte b : bytes) streaming.push(new byte[] {b});
              streaming.end();
            });
            assertEquals(code, e2.code);
            assertEquals(offset, e2.offset);
          } else {
            decoded = Wire.decodeAll(bytes, decoder(v));
            Wire.Decoder streaming = decoder(v);
            List<Wire.Message> oneByOne = new ArrayList<>();
            for (byte b : bytes) oneByOne.addAll(streaming.push(new byte[] {b}));
            streaming.end();
            assertEquals(decoded.stream().map(m -> describe(m, dialect(v), bps)).toList(),
                oneByOne.stream().map(m -> describe(m, dialect(v), bps)).toList());
          }
          assertEquals(v.messages, decoded.stream().map(m -> describe(m, dialect(v), bps)).toList());
        }));
        String encode = v.keys.get("encode");
        if (encode == null) continue;
        tests.add(DynamicTest.dynamicTest("encode " + v.file + " " + v.name, () -> {
          List<Wire.Message> built = new ArrayList<>();
          int at = 0;
          for (String d : v.messages) {
            built.add(build(d, bytes, at));
            at += 3 + Integer.parseInt(fields(d).get("length"));
          }
          if (encode.equals("same")) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            for (Wire.Message m : built) out.write(Wire.encode(m, dialect(v), peer(v)));
            assertEquals(v.hex.toString().toLowerCase(), HexFormat.of().formatHex(out.toByteArray()));
          } else {
            assertEquals("refused", encode);
            assertEquals(1, built.size());
            assertThrows(Wire.RefusedException.class, () -> Wire.encode(built.get(0), dialect(v), peer(v)));
          }
        }));
      }
    }
    assertTrue(tests.size() > 100, "vectors found: " + tests.size());
    assertNotNull(files);
    return tests.stream();
  }
}
