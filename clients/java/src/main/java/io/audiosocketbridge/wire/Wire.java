package io.audiosocketbridge.wire;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;

/**
 * AudioSocket wire helper: message kinds, dialect rules, a streaming {@link Decoder} and {@link
 * #encode}. For testing your own AudioSocket tools; this SDK's tests use it to play Asterisk.
 */
public final class Wire {
  private Wire() {}

  public enum Dialect { ASTERISK, EXTENDED }

  /** Who receives the bytes: SERVER (Asterisk sent them) or ASTERISK (a server sent them). */
  public enum Peer { SERVER, ASTERISK }

  /** Kinds a dialect does not define: fail, drop, or keep as UNKNOWN. */
  public enum UnknownPolicy { REJECT, SKIP, KEEP }

  public enum Kind { HANGUP, UUID, DTMF, DTMF_DIGIT, CONTROL, AUDIO, ERROR, UNKNOWN }

  public static final int KIND_HANGUP = 0x00;
  public static final int KIND_UUID = 0x01;
  public static final int KIND_DTMF = 0x02;
  public static final int KIND_DIGIT_OR_CONTROL = 0x03;
  public static final int KIND_AUDIO_FIRST = 0x10;
  public static final int KIND_AUDIO_LAST = 0x18;
  public static final int KIND_ERROR = 0xff;
  public static final int MAX_PAYLOAD = 65535;
  public static final int[] AUDIO_RATES = {8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000};

  private static final String[] CONTROL_NAMES = {
    "", "hangup", "ring", "ringing", "answer", "busy", "take_off_hook", "off_hook", "congestion",
    "flash", "wink", "option", "radio_key", "radio_unkey", "progress", "proceeding", "hold",
    "unhold", "video_update", "t38", "source_update", "transfer", "connected_line", "redirecting",
    "t38_parameters", "call_completion", "source_change", "read_action", "advice_of_charge",
    "end_of_queue", "incomplete", "malicious_call_id", "update_rtp_peer", "private_cause_code",
    "masquerade_notify", "stream_topology_request_change", "stream_topology_changed",
    "stream_topology_source_changed",
  };

  /**
   * One message. type is the kind byte; the other fields apply by kind: uuid; dtmf (start,
   * digit, durationMs); dtmf_digit (digit); control (code); audio (rate, payload); error and
   * unknown (payload).
   */
  public record Message(int type, Kind kind, String uuid, boolean start, char digit, long durationMs,
      int code, int rate, byte[] payload) {
    public static Message hangup() { return new Message(KIND_HANGUP, Kind.HANGUP, null, false, '\0', 0, 0, 0, new byte[0]); }
    public static Message uuid(String uuid) { return new Message(KIND_UUID, Kind.UUID, uuid, false, '\0', 0, 0, 0, null); }
    public static Message dtmf(boolean start, char digit, long durationMs) {
      return new Message(KIND_DTMF, Kind.DTMF, null, start, digit, durationMs, 0, 0, null);
    }
    public static Message dtmfDigit(char digit) { return new Message(KIND_DIGIT_OR_CONTROL, Kind.DTMF_DIGIT, null, false, digit, 0, 0, 0, null); }
    public static Message control(int code) { return new Message(KIND_DIGIT_OR_CONTROL, Kind.CONTROL, null, false, '\0', 0, code, 0, null); }
    public static Message audio(int rate, byte[] pcm) {
      Integer kind = kindOfRate(rate);
      return new Message(kind == null ? -1 : kind, Kind.AUDIO, null, false, '\0', 0, 0, rate, pcm);
    }
    public static Message error(byte[] payload) { return new Message(KIND_ERROR, Kind.ERROR, null, false, '\0', 0, 0, 0, payload); }
    public static Message unknown(int type, byte[] payload) { return new Message(type, Kind.UNKNOWN, null, false, '\0', 0, 0, 0, payload); }

    /** The payload length on the wire. */
    public int length() {
      return switch (kind) {
        case HANGUP -> 0;
        case UUID -> 16;
        case DTMF -> 6;
        case DTMF_DIGIT, CONTROL -> 1;
        default -> payload.length;
      };
    }
  }

  /** A decoding fault: code (too_large, unknown_kind, bad_length, empty_audio, odd_audio, bad_dtmf_state, bad_dtmf_digit, truncated) at a stream offset. */
  public static final class WireException extends Exception {
    public final String code;
    public final long offset;
    public final List<Message> before;

    WireException(String code, long offset, String what, List<Message> before) {
      super(what + " (" + code + " at offset " + offset + ")");
      this.code = code;
      this.offset = offset;
      this.before = before;
    }
  }

  /** The message may not be sent in this dialect to this peer. */
  public static final class RefusedException extends IllegalArgumentException {
    RefusedException(String what) { super(what); }
  }

  public static boolean isDtmfDigit(char c) {
    return (c >= '0' && c <= '9') || c == '*' || c == '#' || (c >= 'A' && c <= 'D');
  }

  public static boolean isAudioKind(int type) { return type >= KIND_AUDIO_FIRST && type <= KIND_AUDIO_LAST; }

  public static boolean isKnownKind(int type, Dialect dialect) {
    if (type == KIND_HANGUP || type == KIND_UUID || type == KIND_DIGIT_OR_CONTROL || type == KIND_ERROR) return true;
    if (type == KIND_DTMF) return dialect == Dialect.EXTENDED;
    return isAudioKind(type);
  }

  /** The kind's name in the dialect: hangup, uuid, dtmf, dtmf_digit, control, audio, error, unknown(0xNN). */
  public static String kindName(int type, Dialect dialect) {
    if (!isKnownKind(type, dialect)) return String.format("unknown(0x%02x)", type);
    return switch (type) {
      case KIND_HANGUP -> "hangup";
      case KIND_UUID -> "uuid";
      case KIND_DTMF -> "dtmf";
      case KIND_DIGIT_OR_CONTROL -> dialect == Dialect.ASTERISK ? "dtmf_digit" : "control";
      case KIND_ERROR -> "error";
      default -> "audio";
    };
  }

  /** snake_case AST_CONTROL_* name, or unknown(N). */
  public static String controlName(int code) {
    return code >= 0 && code < CONTROL_NAMES.length && !CONTROL_NAMES[code].isEmpty()
        ? CONTROL_NAMES[code] : "unknown(" + code + ")";
  }

  /** Names of the bits of an error's first payload byte. */
  public static List<String> errorFlagNames(int flags) {
    List<String> out = new ArrayList<>();
    if ((flags & 1) != 0) out.add("caller_hangup");
    if ((flags & 2) != 0) out.add("frame_forwarding");
    if ((flags & 4) != 0) out.add("memory");
    int rest = flags & 0xf8;
    if (rest != 0) out.add(String.format("0x%02x", rest));
    return out;
  }

  public static Integer rateOfKind(int type) { return isAudioKind(type) ? AUDIO_RATES[type - KIND_AUDIO_FIRST] : null; }

  public static Integer kindOfRate(int rate) {
    for (int i = 0; i < AUDIO_RATES.length; i++) if (AUDIO_RATES[i] == rate) return KIND_AUDIO_FIRST + i;
    return null;
  }

  static String uuidToString(byte[] b) {
    String h = HexFormat.of().formatHex(b);
    return h.substring(0, 8) + "-" + h.substring(8, 12) + "-" + h.substring(12, 16) + "-" + h.substring(16, 20) + "-" + h.substring(20);
  }

  static byte[] uuidToBytes(String text) {
    if (!text.matches("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")) {
      throw new IllegalArgumentException("\"" + text + "\" is not a UUID");
    }
    return HexFormat.of().parseHex(text.replace("-", ""));
  }

  /** A streaming decoder: push bytes as they arrive, get whole messages. */
  public static final class Decoder {
    private final Dialect dialect;
    private final UnknownPolicy unknown;
    private final int maxPayload;
    private final int bytesPerSample;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();
    private final List<Message> decoded = new ArrayList<>();
    private long offset;
    private WireException failed;

    public Decoder(Dialect dialect) { this(dialect, UnknownPolicy.REJECT, MAX_PAYLOAD, 2); }

    public Decoder(Dialect dialect, UnknownPolicy unknown, int maxPayload, int bytesPerSample) {
      this.dialect = dialect;
      this.unknown = unknown;
      this.maxPayload = maxPayload;
      this.bytesPerSample = bytesPerSample;
    }

    /** The messages these bytes complete; throws on malformed input (and on every later call). */
    public List<Message> push(byte[] bytes, int from, int length) throws WireException {
      if (failed != null) throw failed;
      pending.write(bytes, from, length);
      byte[] buf = pending.toByteArray();
      int at = 0;
      List<Message> out = new ArrayList<>();
      while (buf.length - at >= 3) {
        int type = buf[at] & 0xff;
        int len = ((buf[at + 1] & 0xff) << 8) | (buf[at + 2] & 0xff);
        checkHeader(type, len, out);
        if (buf.length - at < 3 + len) break;
        byte[] payload = java.util.Arrays.copyOfRange(buf, at + 3, at + 3 + len);
        Message m = parse(type, payload, out);
        at += 3 + len;
        offset += 3 + len;
        if (m != null) {
          out.add(m);
          decoded.add(m);
        }
      }
      pending.reset();
      pending.write(buf, at, buf.length - at);
      return out;
    }

    public List<Message> push(byte[] bytes) throws WireException { return push(bytes, 0, bytes.length); }

    /** Fails with truncated when the input ended inside a message. */
    public void end() throws WireException {
      if (failed != null) throw failed;
      if (pending.size() > 0) fail("truncated", "the input ends inside a message");
    }

    private void fail(String code, String what) throws WireException {
      failed = new WireException(code, offset, what, List.copyOf(decoded));
      throw failed;
    }

    private void checkHeader(int type, int len, List<Message> out) throws WireException {
      decoded.clear();
      decoded.addAll(out);
      String name = kindName(type, dialect);
      if (len > maxPayload) fail("too_large", name + " payload of " + len + " bytes exceeds " + maxPayload);
      if (!isKnownKind(type, dialect)) {
        if (unknown == UnknownPolicy.REJECT) fail("unknown_kind", String.format("kind 0x%02x is not defined in this dialect", type));
        return;
      }
      int want = switch (type) {
        case KIND_HANGUP -> 0;
        case KIND_UUID -> 16;
        case KIND_DTMF -> 6;
        case KIND_DIGIT_OR_CONTROL -> 1;
        default -> -1;
      };
      if (want >= 0 && len != want) fail("bad_length", name + " needs " + want + " payload bytes, got " + len);
      if (isAudioKind(type)) {
        if (len == 0) fail("empty_audio", "audio payload is empty");
        if (len % bytesPerSample != 0) fail("odd_audio", "audio of " + len + " bytes is not whole samples");
      }
    }

    private Message parse(int type, byte[] p, List<Message> out) throws WireException {
      decoded.clear();
      decoded.addAll(out);
      if (!isKnownKind(type, dialect)) return unknown == UnknownPolicy.SKIP ? null : Message.unknown(type, p);
      switch (type) {
        case KIND_HANGUP: return Message.hangup();
        case KIND_UUID: return Message.uuid(uuidToString(p));
        case KIND_DTMF: {
          int state = p[0] & 0xff;
          if (state > 1) fail("bad_dtmf_state", "dtmf state " + state + " is neither 0 nor 1");
          char digit = (char) (p[1] & 0xff);
          if (!isDtmfDigit(digit)) fail("bad_dtmf_digit", String.format("byte 0x%02x is not a DTMF digit", p[1] & 0xff));
          long duration = ByteBuffer.wrap(p, 2, 4).order(ByteOrder.LITTLE_ENDIAN).getInt() & 0xffffffffL;
          return Message.dtmf(state == 1, digit, duration);
        }
        case KIND_DIGIT_OR_CONTROL: {
          if (dialect == Dialect.EXTENDED) return Message.control(p[0] & 0xff);
          char digit = (char) (p[0] & 0xff);
          if (!isDtmfDigit(digit)) fail("bad_dtmf_digit", String.format("byte 0x%02x is not a DTMF digit", p[0] & 0xff));
          return Message.dtmfDigit(digit);
        }
        case KIND_ERROR: return Message.error(p);
        default: return Message.audio(rateOfKind(type), p);
      }
    }
  }

  /** Decodes a whole byte string. */
  public static List<Message> decodeAll(byte[] bytes, Decoder decoder) throws WireException {
    List<Message> out = new ArrayList<>(decoder.push(bytes));
    decoder.end();
    return out;
  }

  /** Throws RefusedException when the message may not go in this dialect to this peer. */
  public static void checkAllowed(Message m, Dialect dialect, Peer peer) {
    switch (m.kind()) {
      case HANGUP, AUDIO -> { return; }
      case UNKNOWN -> {
        if (isKnownKind(m.type(), dialect)) throw new RefusedException(String.format("kind 0x%02x is defined in this dialect", m.type()));
        if (peer == Peer.ASTERISK) throw new RefusedException("Asterisk hangs up on unknown kinds");
        return;
      }
      default -> {}
    }
    if (dialect == Dialect.ASTERISK) {
      if (m.kind() == Kind.DTMF) throw new RefusedException("dtmf (0x02) exists only in the extended dialect");
      if (m.kind() == Kind.CONTROL) throw new RefusedException("control signals exist only in the extended dialect");
      if (peer == Peer.ASTERISK) throw new RefusedException(m.kind() + " to stock Asterisk: it hangs up on any kind but audio and hangup");
      return;
    }
    if (m.kind() == Kind.DTMF_DIGIT) throw new RefusedException("in the extended dialect 0x03 is control; send DTMF as dtmf (0x02)");
  }

  /** Encodes one message for the dialect and peer. */
  public static byte[] encode(Message m, Dialect dialect, Peer peer) {
    checkAllowed(m, dialect, peer);
    byte[] payload;
    int type = m.type();
    switch (m.kind()) {
      case HANGUP -> payload = new byte[0];
      case UUID -> payload = uuidToBytes(m.uuid());
      case DTMF -> {
        if (!isDtmfDigit(m.digit())) throw new IllegalArgumentException("not a DTMF digit: " + m.digit());
        payload = ByteBuffer.allocate(6).order(ByteOrder.LITTLE_ENDIAN)
            .put((byte) (m.start() ? 1 : 0)).put((byte) m.digit()).putInt((int) m.durationMs()).array();
      }
      case DTMF_DIGIT -> {
        if (!isDtmfDigit(m.digit())) throw new IllegalArgumentException("not a DTMF digit: " + m.digit());
        payload = new byte[] {(byte) m.digit()};
      }
      case CONTROL -> payload = new byte[] {(byte) m.code()};
      case AUDIO -> {
        if (kindOfRate(m.rate()) == null) throw new IllegalArgumentException("no audio kind for " + m.rate() + " Hz");
        if (m.payload().length == 0) throw new IllegalArgumentException("audio payload is empty");
        if (m.payload().length % 2 != 0) throw new IllegalArgumentException("16-bit audio needs an even number of bytes");
        type = kindOfRate(m.rate());
        payload = m.payload();
      }
      default -> payload = m.payload();
    }
    if (payload.length > MAX_PAYLOAD) throw new IllegalArgumentException("payload over " + MAX_PAYLOAD + " bytes");
    byte[] out = new byte[3 + payload.length];
    out[0] = (byte) type;
    out[1] = (byte) (payload.length >> 8);
    out[2] = (byte) payload.length;
    System.arraycopy(payload, 0, out, 3, payload.length);
    return out;
  }
}
