package io.audiosocketbridge.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.audiosocketbridge.v1.AudioChunk;
import io.audiosocketbridge.v1.CallEvent;
import io.audiosocketbridge.wire.Wire;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.ClientStreamTracer;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerStreamTracer;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiConsumer;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Test support: the bridge process, a scripted Asterisk, a recording listener. */
final class Support {
  static final long WAIT_MS = 15000;
  static final String UUID = "40325ec2-5efd-4bd3-805f-53576e581d13";

  static Path root() {
    return Path.of(System.getProperty("user.dir")).resolve("../..").normalize();
  }

  static String bin(String property, String relative) {
    String v = System.getProperty(property);
    return v != null && !v.isEmpty() && !v.startsWith("${") ? v : root().resolve(relative).toString();
  }

  static String bridgeBin() { return bin("bridge.bin", "bazel-bin/server/audiosocket-bridge"); }
  static String callBin() { return bin("call.bin", "bazel-bin/tools/audiosocket-call/audiosocket-call"); }

  /** Runs audiosocket-call against an AudioSocket port and returns its JSON summary; it must exit 0. */
  static String runCall(int audiosocketPort, String... flags) throws Exception {
    List<String> command = new ArrayList<>(List.of(callBin(), "--target=127.0.0.1:" + audiosocketPort));
    command.addAll(List.of(flags));
    Process call = new ProcessBuilder(command).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    call.getInputStream().transferTo(out);
    assertTrue(call.waitFor(120, TimeUnit.SECONDS), "audiosocket-call did not finish");
    String summary = out.toString().trim();
    assertEquals(0, call.exitValue(), summary);
    return summary;
  }

  /** The real bridge binary. */
  static final class BridgeProcess implements AutoCloseable {
    final Process process;
    final List<String> lines = new CopyOnWriteArrayList<>();
    int audiosocketPort;
    int grpcPort;

    BridgeProcess(List<String> flags) throws Exception {
      List<String> command = new ArrayList<>(List.of(bridgeBin(), "--grpc_listen=127.0.0.1:0", "--metrics_listen=", "--first_audio_wait=100ms"));
      command.addAll(flags);
      process = new ProcessBuilder(command).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
      LinkedBlockingQueue<String> listening = new LinkedBlockingQueue<>();
      Thread reader = new Thread(() -> {
        try (BufferedReader r = new BufferedReader(new InputStreamReader(process.getErrorStream()))) {
          for (String line; (line = r.readLine()) != null; ) {
            lines.add(line);
            if (line.contains("\"event\":\"listening\"")) listening.add(line);
          }
        } catch (IOException e) {
          // process gone
        }
      });
      reader.setDaemon(true);
      reader.start();
      String line = listening.poll(WAIT_MS, TimeUnit.MILLISECONDS);
      if (line == null) throw new IllegalStateException("the bridge did not start: " + lines);
      Matcher a = Pattern.compile("\"audiosocket\":\"127\\.0\\.0\\.1:(\\d+)").matcher(line);
      Matcher g = Pattern.compile("\"grpc_port\":(\\d+)").matcher(line);
      if (!a.find() || !g.find()) throw new IllegalStateException("unexpected listening line: " + line);
      audiosocketPort = Integer.parseInt(a.group(1));
      grpcPort = Integer.parseInt(g.group(1));
    }

    String waitForLog(String event, String text) throws InterruptedException {
      long deadline = System.currentTimeMillis() + WAIT_MS;
      while (System.currentTimeMillis() < deadline) {
        for (String l : lines) if (l.contains("\"event\":\"" + event + "\"") && l.contains(text)) return l;
        Thread.sleep(20);
      }
      return null;
    }

    @Override
    public void close() throws Exception {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
  }

  /** Plays Asterisk's part of a call over TCP with the SDK's wire helper. */
  static final class FakeAsterisk implements AutoCloseable {
    final Wire.Dialect dialect;
    final Socket socket = new Socket();
    final BlockingQueue<Wire.Message> inbox = new LinkedBlockingQueue<>();
    volatile boolean closed;
    private OutputStream out;
    private static final Wire.Message CLOSED = Wire.Message.unknown(-1, new byte[0]);

    FakeAsterisk(Wire.Dialect dialect) { this.dialect = dialect; }

    void connect(int port) throws IOException {
      socket.connect(new InetSocketAddress("127.0.0.1", port), (int) WAIT_MS);
      socket.setTcpNoDelay(true);
      out = socket.getOutputStream();
      InputStream in = socket.getInputStream();
      Thread reader = new Thread(() -> {
        Wire.Decoder decoder = new Wire.Decoder(dialect);
        byte[] buf = new byte[4096];
        // Not closed here: closing a socket's input stream closes the whole
        // socket, and a test may still be writing when the bridge hangs up.
        try {
          for (int n; (n = in.read(buf)) > 0; ) inbox.addAll(decoder.push(buf, 0, n));
        } catch (IOException | Wire.WireException e) {
          // closed or malformed: end of input
        }
        closed = true;
        inbox.add(CLOSED);
      });
      reader.setDaemon(true);
      reader.start();
    }

    void send(Wire.Message m) throws IOException {
      out.write(Wire.encode(m, dialect, Wire.Peer.SERVER));
      out.flush();
    }

    void sendAudio(short[] samples) throws IOException { send(Wire.Message.audio(8000, Pcm.toBytes(samples))); }

    /** The next message; null when the socket closed; throws on timeout. */
    Wire.Message read(long timeoutMs) throws InterruptedException {
      Wire.Message m = inbox.poll(timeoutMs, TimeUnit.MILLISECONDS);
      if (m == null) throw new AssertionError("no message from the bridge within " + timeoutMs + " ms");
      if (m == CLOSED) {
        inbox.add(CLOSED);
        return null;
      }
      return m;
    }

    Wire.Message read() throws InterruptedException { return read(WAIT_MS); }

    List<Wire.Message> readFor(long ms) throws InterruptedException {
      List<Wire.Message> out = new ArrayList<>();
      long deadline = System.currentTimeMillis() + ms;
      for (long left; (left = deadline - System.currentTimeMillis()) > 0; ) {
        Wire.Message m = inbox.poll(left, TimeUnit.MILLISECONDS);
        if (m == null) break;
        if (m == CLOSED) {
          inbox.add(CLOSED);
          break;
        }
        out.add(m);
      }
      return out;
    }

    List<Wire.Message> readUntilClosed() throws InterruptedException {
      List<Wire.Message> out = new ArrayList<>();
      for (Wire.Message m; (m = read()) != null; ) out.add(m);
      return out;
    }

    @Override
    public void close() throws IOException { socket.close(); }
  }

  /** Records every event; tests take them in order. */
  static final class Recorder implements CallListener {
    final BlockingQueue<CallEvent> events = new LinkedBlockingQueue<>();
    final List<String> order = new CopyOnWriteArrayList<>();

    @Override
    public void onEvent(BridgeCall call, CallEvent event) {
      order.add(event.getEventCase().name());
      events.add(event);
    }

    CallEvent next(Predicate<CallEvent> match) throws InterruptedException {
      long deadline = System.currentTimeMillis() + WAIT_MS;
      for (long left; (left = deadline - System.currentTimeMillis()) > 0; ) {
        CallEvent e = events.poll(left, TimeUnit.MILLISECONDS);
        if (e == null) break;
        if (match.test(e)) return e;
      }
      throw new AssertionError("no matching event within " + WAIT_MS + " ms");
    }
  }

  /** A listener that hands each audio chunk to {@code onAudio} and ignores the other events. */
  static CallListener onAudio(BiConsumer<BridgeCall, AudioChunk> onAudio) {
    return new CallListener() {
      @Override
      public void onAudio(BridgeCall call, AudioChunk audio) { onAudio.accept(call, audio); }
    };
  }

  /**
   * What grpc-java's calls send, counted by a stream tracer: message bytes as written to the wire
   * and the same messages before compression (equal when they went out uncompressed).
   */
  static final class SentBytes {
    final AtomicLong wire = new AtomicLong();
    final AtomicLong uncompressed = new AtomicLong();

    /** For a client channel: counts what its calls send. */
    ClientInterceptor clientInterceptor() {
      ClientStreamTracer.Factory factory = new ClientStreamTracer.Factory() {
        @Override
        public ClientStreamTracer newClientStreamTracer(ClientStreamTracer.StreamInfo info, Metadata headers) {
          return new ClientStreamTracer() {
            @Override
            public void outboundWireSize(long bytes) { wire.addAndGet(bytes); }

            @Override
            public void outboundUncompressedSize(long bytes) { uncompressed.addAndGet(bytes); }
          };
        }
      };
      return new ClientInterceptor() {
        @Override
        public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
          return next.newCall(method, options.withStreamTracerFactory(factory));
        }
      };
    }

    /** For a server: counts what its calls send. */
    ServerStreamTracer.Factory serverTracer() {
      return new ServerStreamTracer.Factory() {
        @Override
        public ServerStreamTracer newServerStreamTracer(String method, Metadata headers) {
          return new ServerStreamTracer() {
            @Override
            public void outboundWireSize(long bytes) { wire.addAndGet(bytes); }

            @Override
            public void outboundUncompressedSize(long bytes) { uncompressed.addAndGet(bytes); }
          };
        }
      };
    }
  }

  /** A server interceptor asking grpc-java to compress each call's responses with {@code encoding}. */
  static ServerInterceptor compressResponses(String encoding) {
    return new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
        call.setCompression(encoding);
        return next.startCall(call, headers);
      }
    };
  }

  static short[] numberedFrame(int n) {
    short[] frame = new short[160];
    for (int i = 0; i < 160; i++) frame[i] = (short) ((n * 160 + i) % 20000 + 100);
    return frame;
  }

  static short[] filled(int count, int value) {
    short[] s = new short[count];
    java.util.Arrays.fill(s, (short) value);
    return s;
  }

  static int count(byte[] pcm, int value) {
    int n = 0;
    for (short s : Pcm.toSamples(pcm)) if (s == value) n++;
    return n;
  }

  private Support() {}
}
