package io.audiosocketbridge.client;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.audiosocketbridge.client.Support.BridgeProcess;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;

/**
 * The README's quick starts, as written: each class is copied from README.md into
 * src/main/java of a copy of this folder and run with the README's command
 * ({@code mvn -q compile exec:java -Dexec.mainClass=...}); only the port numbers are changed.
 * Two calls at once must both be answered (echo heard, hung up on '#').
 */
class QuickStartTest {
  private static Path work;
  private static Path sdk;

  @BeforeAll
  static void copySdk() throws IOException {
    work = Files.createTempDirectory("java-quickstart");
    sdk = work.resolve("clients/java");
    Path here = Support.root().resolve("clients/java");
    copyTree(here.resolve("src/main"), sdk.resolve("src/main"));
    Files.copy(here.resolve("pom.xml"), sdk.resolve("pom.xml"));
    copyTree(Support.root().resolve("proto"), work.resolve("proto"));
  }

  @AfterAll
  static void removeCopy() throws IOException {
    if (work == null) return;
    try (Stream<Path> all = Files.walk(work)) {
      all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    }
  }

  private static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> all = Files.walk(from)) {
      for (Path p : (Iterable<Path>) all::iterator) {
        Path target = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) Files.createDirectories(target);
        else Files.copy(p, target);
      }
    }
  }

  /** The README's java block that declares this class. */
  static String readmeClass(String name) throws IOException {
    String readme = Files.readString(Support.root().resolve("clients/java/README.md"));
    Matcher m = Pattern.compile("```java\n(.*?)```", Pattern.DOTALL).matcher(readme);
    while (m.find()) if (m.group(1).contains("public class " + name + " ")) return m.group(1);
    throw new AssertionError("README.md has no java block with class " + name);
  }

  static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  /** Runs the README's command for mainClass in the copy; returns once it printed `ready`. */
  static Process run(String mainClass, String ready, List<String> output) throws Exception {
    Process p = new ProcessBuilder("mvn", "-q", "-B", "compile", "exec:java", "-Dexec.mainClass=" + mainClass)
        .directory(sdk.toFile()).redirectErrorStream(true).start();
    Thread reader = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream()))) {
        for (String line; (line = r.readLine()) != null; ) output.add(line);
      } catch (IOException e) {
        // gone
      }
    });
    reader.setDaemon(true);
    reader.start();
    long deadline = System.currentTimeMillis() + 240_000; // the first compile fetches the exec plugin
    while (output.stream().noneMatch(l -> l.contains(ready))) {
      if (!p.isAlive()) throw new AssertionError(mainClass + " exited " + p.exitValue() + ": " + output);
      if (System.currentTimeMillis() > deadline) throw new AssertionError(mainClass + " did not start: " + output);
      Thread.sleep(100);
    }
    return p;
  }

  /**
   * Two concurrent calls that press '#' after 4 s: both echoed and hung up by the backend. A first
   * call, hung up by the backend at whichever of its presses of '#' it handles first, warms the
   * example's JVM: a cold one under load took more than 4 s to echo its first frame.
   */
  static void twoConcurrentCallsAreAnswered(int audiosocketPort) throws Exception {
    String warmUp = Support.runCall(audiosocketPort, "--calls=1", "--source=tone:440", "--dtmf=#@1s,#@5s,#@15s,#@30s,#@60s", "--end=wait", "--duration=90s");
    assertTrue(warmUp.contains("\"ended_counts\":{\"remote_hangup\":1}"), "warm-up call: " + warmUp);
    String summary = Support.runCall(audiosocketPort, "--calls=2", "--source=tone:440", "--dtmf=#@4s", "--end=wait", "--duration=12s");
    assertTrue(summary.contains("\"ended_counts\":{\"remote_hangup\":2}"), summary);
    assertTrue(summary.matches("(?s).*\"rtt_ms\":\\{[^}]*\"count\":[1-9].*"), "echo heard: " + summary);
  }

  private static void stop(Process p) throws InterruptedException {
    if (p == null) return;
    p.descendants().forEach(ProcessHandle::destroyForcibly);
    p.destroyForcibly();
    p.waitFor(10, TimeUnit.SECONDS);
  }

  @Test
  @Timeout(300)
  void pushQuickStart() throws Exception {
    int port = freePort();
    Files.writeString(sdk.resolve("src/main/java/QuickStart.java"), readmeClass("QuickStart").replace("50052", String.valueOf(port)));
    List<String> output = new CopyOnWriteArrayList<>();
    Process backend = null;
    try (BridgeProcess bridge = new BridgeProcess(List.of("--listen=127.0.0.1:0", "--backend=ipv4:127.0.0.1:" + port))) {
      backend = run("QuickStart", "listening on " + port, output);
      twoConcurrentCallsAreAnswered(bridge.audiosocketPort);
    } finally {
      stop(backend);
    }
  }

  @Test
  @Timeout(300)
  void pullQuickStart() throws Exception {
    List<String> output = new CopyOnWriteArrayList<>();
    Process backend = null;
    try (BridgeProcess bridge = new BridgeProcess(List.of("--listen=127.0.0.1:0", "--mode=pull"))) {
      Files.writeString(sdk.resolve("src/main/java/PullQuickStart.java"),
          readmeClass("PullQuickStart").replace("127.0.0.1:50051", "127.0.0.1:" + bridge.grpcPort));
      backend = run("PullQuickStart", "claiming", output);
      twoConcurrentCallsAreAnswered(bridge.audiosocketPort);
      long deadline = System.currentTimeMillis() + Support.WAIT_MS;
      while (output.stream().filter(l -> l.contains("ended CALL_END_REASON_BACKEND_HUNG_UP")).count() < 2) {
        assertTrue(System.currentTimeMillis() < deadline, "both calls logged: " + output);
        Thread.sleep(50);
      }
    } finally {
      stop(backend);
    }
  }

  @Test
  @Timeout(300)
  void pullQuickStartAgainstAPushModeBridgeStopsWithTheError() throws Exception {
    try (BackendServer server = BackendServer.start("127.0.0.1", 0, call -> null);
        BridgeProcess bridge = new BridgeProcess(List.of("--listen=127.0.0.1:0", "--backend=ipv4:127.0.0.1:" + server.port()))) {
      Files.writeString(sdk.resolve("src/main/java/PullQuickStart.java"),
          readmeClass("PullQuickStart").replace("127.0.0.1:50051", "127.0.0.1:" + bridge.grpcPort));
      Process p = new ProcessBuilder("mvn", "-q", "-B", "compile", "exec:java", "-Dexec.mainClass=PullQuickStart")
          .directory(sdk.toFile()).redirectErrorStream(true).start();
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      p.getInputStream().transferTo(out);
      assertTrue(p.waitFor(240, TimeUnit.SECONDS));
      assertTrue(p.exitValue() != 0, "exits with an error");
      assertTrue(out.toString().contains("FAILED_PRECONDITION"), out.toString());
    }
  }
}
