package io.audiosocketbridge.client;

import static org.junit.jupiter.api.Assertions.assertTrue;

import io.audiosocketbridge.client.Support.BridgeProcess;
import io.audiosocketbridge.example.EchoBackend;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The example backend against the real bridge and audiosocket-call: echo (matched byte-exact by
 * the tool's RTT), DTMF logged, the WAV played on a digit, hang-up on '#'.
 */
class ExampleBackendTest {
  @ParameterizedTest
  @CsvSource({"push,asterisk", "push,extended", "pull,asterisk", "pull,extended"})
  void echoesPlaysTheWavAndHangsUpOnHash(String mode, String dialect) throws Exception {
    List<String> log = new CopyOnWriteArrayList<>();
    EchoBackend.Wav prompt = EchoBackend.prompt(null);
    String listen = "--listen=127.0.0.1:0" + (dialect.equals("extended") ? ",dialect=extended" : "");
    List<AutoCloseable> open = new ArrayList<>();
    try {
      BridgeProcess bridge;
      if (mode.equals("push")) {
        BackendServer server = EchoBackend.push("127.0.0.1", 0, prompt, log::add);
        open.add(server);
        bridge = new BridgeProcess(List.of(listen, "--backend=ipv4:127.0.0.1:" + server.port()));
      } else {
        bridge = new BridgeProcess(List.of(listen, "--mode=pull"));
        open.add(EchoBackend.pull("127.0.0.1:" + bridge.grpcPort, prompt, log::add));
      }
      open.add(0, bridge);
      String summary = Support.runCall(bridge.audiosocketPort,
          "--dialect=" + dialect, "--source=tone:440", "--dtmf=1@1000ms,#@3000ms", "--end=wait", "--duration=20s");
      assertTrue(summary.contains("\"ended\":\"remote_hangup\""), summary);
      assertTrue(summary.matches("(?s).*\"rtt_ms\":\\{[^}]*\"count\":[1-9].*"), "echoed frames match byte-exact: " + summary);
      waitFor(log, "dtmf", " digit=1 phase="
          + (dialect.equals("asterisk") ? "DTMF_PHASE_END_ONLY" : "DTMF_PHASE_END"));
      waitFor(log, "wav_played", "mark=MARK_RESOLUTION_PLAYED");
      waitFor(log, "dtmf", "digit=#");
      waitFor(log, "ended", "reason=CALL_END_REASON_BACKEND_HUNG_UP");
    } finally {
      for (AutoCloseable c : open) c.close();
    }
  }

  private static void waitFor(List<String> log, String prefix, String text) throws InterruptedException {
    long deadline = System.currentTimeMillis() + Support.WAIT_MS;
    while (System.currentTimeMillis() < deadline) {
      for (String line : log) if (line.startsWith(prefix) && line.contains(text)) return;
      Thread.sleep(20);
    }
    throw new AssertionError("no log line " + prefix + " ... " + text + " in " + log);
  }
}
