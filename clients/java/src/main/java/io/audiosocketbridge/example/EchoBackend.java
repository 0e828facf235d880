package io.audiosocketbridge.example;

import io.audiosocketbridge.client.BackendServer;
import io.audiosocketbridge.client.BridgeCall;
import io.audiosocketbridge.client.BridgeWorker;
import io.audiosocketbridge.client.CallListener;
import io.audiosocketbridge.v1.AudioChunk;
import io.audiosocketbridge.v1.CallEnded;
import io.audiosocketbridge.v1.DtmfEvent;
import io.audiosocketbridge.v1.DtmfPhase;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * Example backend: echoes the caller's audio, logs DTMF, plays a WAV when a digit is pressed,
 * hangs up on '#'.
 *
 * <pre>
 *   mvn -q compile exec:java -Dexec.args="--push 127.0.0.1:50052"   # bridge: --backend=ipv4:127.0.0.1:50052
 *   mvn -q compile exec:java -Dexec.args="--pull 127.0.0.1:50051"   # bridge: --mode=pull
 *   ... --wav FILE   (16-bit PCM mono at the call's rate; default: a generated chime)
 * </pre>
 */
public final class EchoBackend {
  private EchoBackend() {}

  /** The listener for one call; log gets one line per happening. */
  public static CallListener listener(Wav prompt, Consumer<String> log) {
    return new CallListener() {
      private volatile boolean prompting;

      @Override
      public void onAudio(BridgeCall call, AudioChunk audio) {
        if (!prompting) call.play(audio.getPcm(), "echo");
      }

      @Override
      public void onDtmf(BridgeCall call, DtmfEvent dtmf) {
        if (dtmf.getPhase() == DtmfPhase.DTMF_PHASE_BEGIN) return;
        log.accept("dtmf call=" + call.callId() + " digit=" + dtmf.getDigit() + " phase=" + dtmf.getPhase());
        if (dtmf.getDigit().equals("#")) {
          call.hangup().thenAccept(r -> log.accept("hangup call=" + call.callId() + " code=" + r.getCode()));
          return;
        }
        if (prompt.sampleRate() != call.sampleRateHz()) {
          log.accept("wav_skipped: the WAV is " + prompt.sampleRate() + " Hz, the call " + call.sampleRateHz() + " Hz");
          return;
        }
        prompting = true;
        call.clear("echo")
            .thenCompose(c -> call.play(prompt.pcm(), "wav"))
            .thenCompose(r -> call.mark("wav-" + dtmf.getDigit()))
            .whenComplete((mark, error) -> {
              prompting = false;
              log.accept("wav_played call=" + call.callId() + " mark=" + (mark != null ? mark : error));
            });
      }

      @Override
      public void onEnded(BridgeCall call, CallEnded ended) {
        log.accept("ended call=" + call.callId() + " reason=" + ended.getReason() + " detail=" + ended.getDetail());
      }
    };
  }

  /** Logs the call and returns its listener. */
  static CallListener onCall(BridgeCall call, Wav prompt, Consumer<String> log) {
    log.accept("call " + call.callId() + " mode=" + call.mode() + " listener=" + call.listenerName()
        + " dialect=" + call.dialect() + " rate=" + call.sampleRateHz());
    return listener(prompt, log);
  }

  /** Push mode: serves on host:port. */
  public static BackendServer push(String host, int port, Wav prompt, Consumer<String> log) throws IOException {
    return BackendServer.start(host, port, call -> onCall(call, prompt, log));
  }

  /** Pull mode: four claims on every address of target. */
  public static BridgeWorker pull(String target, Wav prompt, Consumer<String> log) {
    return BridgeWorker.builder(target, call -> onCall(call, prompt, log)).claimsPerAddress(4).start();
  }

  /** 16-bit PCM mono WAV: its rate and samples as little-endian bytes. */
  public record Wav(int sampleRate, byte[] pcm) {
    public static Wav read(Path file) throws IOException {
      ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
      if (b.getInt(0) != 0x46464952 || b.getInt(8) != 0x45564157) throw new IOException(file + " is not a WAV file");
      int at = 12;
      int rate = 0;
      while (at + 8 <= b.limit()) {
        int id = b.getInt(at);
        int size = b.getInt(at + 4);
        if (id == 0x20746d66) { // "fmt "
          if (b.getShort(at + 8) != 1 || b.getShort(at + 10) != 1 || b.getShort(at + 22) != 16) {
            throw new IOException(file + ": only 16-bit PCM mono is supported");
          }
          rate = b.getInt(at + 12);
        } else if (id == 0x61746164) { // "data"
          byte[] pcm = new byte[Math.min(size, b.limit() - at - 8)];
          b.position(at + 8);
          b.get(pcm);
          return new Wav(rate, pcm);
        }
        at += 8 + size + (size & 1);
      }
      throw new IOException(file + " has no data chunk");
    }

    /** A two-note chime at 8 kHz, as a WAV file's bytes. */
    public static byte[] chimeFile() {
      ByteArrayOutputStream pcm = new ByteArrayOutputStream();
      tone(pcm, 880, 200);
      tone(pcm, 660, 300);
      byte[] data = pcm.toByteArray();
      ByteBuffer b = ByteBuffer.allocate(44 + data.length).order(ByteOrder.LITTLE_ENDIAN);
      b.putInt(0x46464952).putInt(36 + data.length).putInt(0x45564157).putInt(0x20746d66).putInt(16)
          .putShort((short) 1).putShort((short) 1).putInt(8000).putInt(16000).putShort((short) 2)
          .putShort((short) 16).putInt(0x61746164).putInt(data.length).put(data);
      return b.array();
    }

    private static void tone(ByteArrayOutputStream out, double hz, int ms) {
      for (int i = 0; i < 8 * ms; i++) {
        short s = (short) Math.round(8000 * Math.sin(2 * Math.PI * hz * i / 8000));
        out.write(s & 0xff);
        out.write((s >> 8) & 0xff);
      }
    }
  }

  /** The WAV to play: the given file, or the chime written once to a temp file. */
  public static Wav prompt(String file) throws IOException {
    Path path = file != null ? Path.of(file) : Path.of(System.getProperty("java.io.tmpdir"), "audiosocket-bridge-java-chime.wav");
    if (file == null && !Files.exists(path)) Files.write(path, Wav.chimeFile());
    return Wav.read(path);
  }

  public static void main(String[] args) throws Exception {
    String mode = args.length > 0 ? args[0] : "";
    String address = args.length > 1 ? args[1] : "";
    String wav = null;
    for (int i = 0; i + 1 < args.length; i++) if (args[i].equals("--wav")) wav = args[i + 1];
    Wav prompt = prompt(wav);
    Consumer<String> log = line -> System.out.println(java.time.Instant.now() + " " + line);
    if (mode.equals("--push")) {
      int colon = address.lastIndexOf(':');
      String host = colon > 0 ? address.substring(0, colon) : "0.0.0.0";
      int port = colon >= 0 ? Integer.parseInt(address.substring(colon + 1)) : 50052;
      try (BackendServer server = push(host, port, prompt, log)) {
        log.accept("listening port=" + server.port());
        server.awaitTermination();
      }
    } else if (mode.equals("--pull")) {
      try (BridgeWorker worker = pull(address.isEmpty() ? "127.0.0.1:50051" : address, prompt, log)) {
        log.accept("claiming from " + address);
        worker.run();
      }
    } else {
      System.err.println("usage: EchoBackend --push HOST:PORT | --pull BRIDGE_HOST:PORT [--wav FILE]");
      System.exit(2);
    }
  }
}
