package io.audiosocketbridge.client;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.audiosocketbridge.client.Support.BridgeProcess;
import io.audiosocketbridge.client.Support.FakeAsterisk;
import io.audiosocketbridge.client.Support.Recorder;
import io.audiosocketbridge.v1.AudioChunk;
import io.audiosocketbridge.v1.CallEnded;
import io.audiosocketbridge.v1.CallEndReason;
import io.audiosocketbridge.v1.CallEvent;
import io.audiosocketbridge.v1.ClearResult;
import io.audiosocketbridge.v1.CommandResult;
import io.audiosocketbridge.v1.ControlType;
import io.audiosocketbridge.v1.Dialect;
import io.audiosocketbridge.v1.DtmfEvent;
import io.audiosocketbridge.v1.DtmfPhase;
import io.audiosocketbridge.v1.DtmfSource;
import io.audiosocketbridge.v1.MarkResolution;
import io.audiosocketbridge.v1.MarkResolved;
import io.audiosocketbridge.v1.ResultCode;
import io.audiosocketbridge.wire.Wire;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The real bridge binary between a scripted Asterisk and this SDK, in push and pull mode. */
class BridgeEndToEndTest {
  private static final long WAIT = Support.WAIT_MS;
  private final List<AutoCloseable> cleanup = new ArrayList<>();
  private FakeAsterisk asterisk;
  private final Recorder events = new Recorder();

  @AfterEach
  void tearDown() throws Exception {
    for (int i = cleanup.size() - 1; i >= 0; i--) cleanup.get(i).close();
  }

  private static <T> T get(CompletableFuture<T> f) throws Exception {
    return f.get(WAIT, TimeUnit.MILLISECONDS);
  }

  /** The call's next DTMF event, asserted to be {@code digit} in {@code phase}. */
  private DtmfEvent nextDtmf(String digit, DtmfPhase phase) throws Exception {
    DtmfEvent dtmf = events.next(CallEvent::hasDtmf).getDtmf();
    assertEquals(digit, dtmf.getDigit());
    assertEquals(phase, dtmf.getPhase());
    return dtmf;
  }

  /** How a pull-mode test claims: from the bridge's gRPC target, the future of the claimed call. */
  private interface Claimer {
    CompletableFuture<BridgeCall> claim(String target) throws Exception;
  }

  /** A bridge in the mode, a call from a scripted Asterisk (UUID and frame 0), accepted or claimed. */
  private BridgeCall connect(BridgeCall.Mode mode, boolean extended) throws Exception {
    if (mode == BridgeCall.Mode.PUSH) {
      CompletableFuture<BridgeCall> pushed = new CompletableFuture<>();
      BackendServer server = BackendServer.start("127.0.0.1", 0, call -> {
        pushed.complete(call);
        return events;
      });
      cleanup.add(server);
      return pushCall(server.port(), extended, pushed);
    }
    return pullCall(extended, target -> {
      BridgeClient client = new BridgeClient(target);
      cleanup.add(client);
      return client.claim(events);
    });
  }

  /** A push-mode bridge dialling the backend on backendPort, and a call it completes pushed with. */
  private BridgeCall pushCall(int backendPort, boolean extended, CompletableFuture<BridgeCall> pushed) throws Exception {
    BridgeProcess bridge = startBridge(extended, "--backend=ipv4:127.0.0.1:" + backendPort);
    return callFromAsterisk(bridge, extended, pushed);
  }

  /** A pull-mode bridge, and a call the claimer claims. */
  private BridgeCall pullCall(boolean extended, Claimer claimer) throws Exception {
    BridgeProcess bridge = startBridge(extended, "--mode=pull");
    return callFromAsterisk(bridge, extended, claimer.claim("127.0.0.1:" + bridge.grpcPort));
  }

  private BridgeProcess startBridge(boolean extended, String modeFlag) throws Exception {
    String listen = "--listen=127.0.0.1:0" + (extended ? ",dialect=extended,name=ext" : "");
    BridgeProcess bridge = new BridgeProcess(List.of(listen, modeFlag));
    cleanup.add(bridge);
    return bridge;
  }

  private BridgeCall callFromAsterisk(BridgeProcess bridge, boolean extended, CompletableFuture<BridgeCall> arrived)
      throws Exception {
    asterisk = new FakeAsterisk(extended ? Wire.Dialect.EXTENDED : Wire.Dialect.ASTERISK);
    cleanup.add(asterisk);
    asterisk.connect(bridge.audiosocketPort);
    asterisk.send(Wire.Message.uuid(Support.UUID));
    asterisk.sendAudio(Support.numberedFrame(0));
    BridgeCall call = get(arrived);
    assertNotNull(call, "the call reached the backend");
    return call;
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void callMetadataDescribesTheCall(BridgeCall.Mode mode) throws Exception {
    BridgeCall call = connect(mode, false);
    assertEquals(mode, call.mode());
    assertEquals(Support.UUID, call.callId());
    assertEquals("default", call.listenerName());
    assertEquals(Dialect.DIALECT_ASTERISK, call.dialect());
    assertEquals(8000, call.callSampleRateHz());
    assertEquals(8000, call.sampleRateHz());
    assertTrue(call.peerAddress().startsWith("127.0.0.1:"), call.peerAddress());
    assertTrue(call.startTime().getEpochSecond() > 0);
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void echoComesBackByteExact(BridgeCall.Mode mode) throws Exception {
    assertEchoIsByteExact(connect(mode, false));
  }

  /**
   * Frames 1 to 24 from the caller (frame 0 went with the call), each echoed with play as it
   * arrives; the caller hears all 25 back byte-exact.
   */
  private void assertEchoIsByteExact(BridgeCall call) throws Exception {
    List<Short> sent = new ArrayList<>();
    for (short s : Support.numberedFrame(0)) sent.add(s);
    for (int i = 1; i < 25; i++) {
      asterisk.sendAudio(Support.numberedFrame(i));
      for (short s : Support.numberedFrame(i)) sent.add(s);
    }
    for (int i = 0; i < 25; i++) {
      AudioChunk chunk = events.next(CallEvent::hasAudio).getAudio();
      assertEquals(i, chunk.getSequenceNumber());
      assertEquals(i * 160L, chunk.getOffsetSamples());
      assertArrayEquals(Support.numberedFrame(i), Pcm.toSamples(chunk.getPcm().toByteArray()));
      CommandResult result = get(call.play(chunk.getPcm(), "echo"));
      assertEquals(ResultCode.RESULT_CODE_OK, result.getCode());
    }
    List<Short> heard = new ArrayList<>();
    while (heard.size() < sent.size()) {
      Wire.Message m = asterisk.read();
      assertNotNull(m, "the bridge closed the socket");
      if (m.kind() != Wire.Kind.AUDIO) continue;
      assertEquals(0x10, m.type());
      assertEquals(320, m.payload().length);
      short[] samples = Pcm.toSamples(m.payload());
      boolean silent = true;
      for (short s : samples) silent &= s == 0;
      if (silent) continue; // silence before the echo, or an underrun gap on a loaded machine
      for (short s : samples) heard.add(s);
    }
    assertEquals(sent, heard.subList(0, sent.size()));
  }

  /**
   * A worker whose every message is gzipped (grpc-java's withCompression, here by the worker's
   * compression option): the bridge inflates its claim and its plays, and the caller hears the echo
   * byte-exact.
   */
  @Test
  void echoIsByteExactFromAWorkerThatGzips() throws Exception {
    CompletableFuture<BridgeCall> claimed = new CompletableFuture<>();
    BridgeCall call = pullCall(false, target -> {
      BridgeWorker worker = BridgeWorker.builder(target, c -> {
        claimed.complete(c);
        return events;
      }).claimsPerAddress(1).compression("gzip").start();
      cleanup.add(worker);
      return claimed;
    });
    assertEchoIsByteExact(call);
  }

  @Test
  void theWorkersCompressionMustBeOneGrpcJavaHas() {
    BridgeWorker.Builder builder = BridgeWorker.builder("127.0.0.1:1", c -> null);
    assertThrows(IllegalArgumentException.class, () -> builder.compression("deflate"));
    assertThrows(IllegalArgumentException.class, () -> builder.compression("br"));
    builder.compression("gzip").compression("identity");
  }

  /**
   * The same from a BridgeClient on a channel built with the compression interceptor; a stream
   * tracer shows grpc-java did compress (fewer bytes on the wire than in the messages).
   */
  @Test
  void echoIsByteExactFromAClientThatGzips() throws Exception {
    Support.SentBytes sent = new Support.SentBytes();
    BridgeCall call = pullCall(false, target -> {
      BridgeClient client = new BridgeClient(NettyChannelBuilder.forTarget(target).usePlaintext()
          .intercept(BridgeWorker.compression("gzip"), sent.clientInterceptor()).build());
      cleanup.add(client);
      return client.claim(events);
    });
    assertEchoIsByteExact(call);
    assertTrue(sent.wire.get() < sent.uncompressed.get(), sent.wire + " bytes on the wire for " + sent.uncompressed);
  }

  /**
   * A push backend asking grpc-java to gzip its responses ({@code ServerCall.setCompression}):
   * grpc-java compresses only with an encoding the client's grpc-accept-encoding lists, and the
   * bridge lists gzip and deflate, so the backend's messages go out gzipped and are read.
   */
  @Test
  void aPushBackendThatGzipsIsEchoedByteExact() throws Exception {
    Support.SentBytes sent = new Support.SentBytes();
    CompletableFuture<BridgeCall> pushed = new CompletableFuture<>();
    Server server = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
        .addStreamTracerFactory(sent.serverTracer())
        .addService(ServerInterceptors.intercept(BackendServer.service(c -> {
          pushed.complete(c);
          return events;
        }), Support.compressResponses("gzip")))
        .build().start();
    cleanup.add(() -> server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
    assertEchoIsByteExact(pushCall(server.getPort(), false, pushed));
    assertTrue(sent.uncompressed.get() > 0);
    assertTrue(sent.wire.get() < sent.uncompressed.get(), sent.wire + " bytes on the wire for " + sent.uncompressed);
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void stockAsteriskDigitIsEndOnly(BridgeCall.Mode mode) throws Exception {
    connect(mode, false);
    asterisk.send(Wire.Message.dtmfDigit('7'));
    DtmfEvent dtmf = nextDtmf("7", DtmfPhase.DTMF_PHASE_END_ONLY);
    assertEquals(DtmfSource.DTMF_SOURCE_SIGNALLED, dtmf.getSource());
    assertEquals(160, dtmf.getOffsetSamples());
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void extendedDtmfIsBeginAndEnd(BridgeCall.Mode mode) throws Exception {
    BridgeCall call = connect(mode, true);
    assertEquals(Dialect.DIALECT_EXTENDED, call.dialect());
    assertEquals("ext", call.listenerName());
    asterisk.send(Wire.Message.dtmf(true, '#', 0));
    asterisk.send(Wire.Message.dtmf(false, '#', 120));
    nextDtmf("#", DtmfPhase.DTMF_PHASE_BEGIN);
    assertEquals(120, nextDtmf("#", DtmfPhase.DTMF_PHASE_END).getDurationMs());
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void sendDtmfInTheExtendedDialectIsStartStopMessages(BridgeCall.Mode mode) throws Exception {
    BridgeCall call = connect(mode, true);
    CompletableFuture<CommandResult> result = call.sendDtmf("12", 80, 60);
    List<String> seen = new ArrayList<>();
    while (seen.size() < 4) {
      Wire.Message m = asterisk.read();
      assertNotNull(m);
      if (m.kind() == Wire.Kind.AUDIO) continue;
      assertEquals(Wire.Kind.DTMF, m.kind());
      seen.add((m.start() ? "start" : "stop") + ":" + m.digit() + ":" + m.durationMs());
    }
    assertEquals(List.of("start:1:0", "stop:1:80", "start:2:0", "stop:2:80"), seen);
    assertEquals(ResultCode.RESULT_CODE_OK, get(result).getCode());
    assertEquals(io.audiosocketbridge.v1.CommandKind.COMMAND_KIND_SEND_DTMF, get(result).getCommand());
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void controlGoesOutInTheExtendedDialect(BridgeCall.Mode mode) throws Exception {
    BridgeCall call = connect(mode, true);
    assertEquals(ResultCode.RESULT_CODE_OK, get(call.sendControl(ControlType.CONTROL_TYPE_ANSWER)).getCode());
    Wire.Message m;
    do m = asterisk.read(); while (m != null && m.kind() == Wire.Kind.AUDIO);
    assertNotNull(m);
    assertEquals(Wire.Kind.CONTROL, m.kind());
    assertEquals(4, m.code());
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void controlIsUnsupportedInTheAsteriskDialect(BridgeCall.Mode mode) throws Exception {
    BridgeCall call = connect(mode, false);
    CommandResult r = get(call.sendControl(ControlType.CONTROL_TYPE_ANSWER));
    assertEquals(ResultCode.RESULT_CODE_UNSUPPORTED, r.getCode());
    assertTrue(r.getMessage().contains("extended"), r.getMessage());
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void clearAccountsPerResponseBeforeTheMarksItClears(BridgeCall.Mode mode) throws Exception {
    BridgeCall call = connect(mode, false);
    assertEquals(ResultCode.RESULT_CODE_OK, get(call.play(Support.filled(16000, 500), "r1")).getCode());
    CompletableFuture<MarkResolution> mark = call.mark("after-r1");
    assertEquals(ResultCode.RESULT_CODE_OK, get(call.play(Support.filled(8000, 700), "r2")).getCode());
    int heardR1 = 0;
    while (heardR1 < 8 * 160) {
      Wire.Message m = asterisk.read();
      assertNotNull(m);
      if (m.kind() == Wire.Kind.AUDIO) heardR1 += Support.count(m.payload(), 500);
    }
    ClearResult cleared = get(call.clear());
    assertEquals(2, cleared.getResponsesCount());
    var r1 = cleared.getResponses(0);
    var r2 = cleared.getResponses(1);
    assertEquals("r1", r1.getResponseId());
    assertEquals(2000, r1.getPlayedMs() + r1.getDiscardedMs());
    assertTrue(r1.getPlayedMs() >= 160);
    assertEquals("r2", r2.getResponseId());
    assertEquals(0, r2.getPlayedMs());
    assertEquals(1000, r2.getDiscardedMs());
    assertEquals(r1.getDiscardedMs() + 1000, cleared.getDiscardedMs());
    assertEquals(MarkResolution.MARK_RESOLUTION_CLEARED, get(mark));
    // The listener saw CLEARED before the MARK it caused.
    MarkResolved heard = events.next(CallEvent::hasMark).getMark();
    assertEquals("after-r1", heard.getName());
    assertEquals(MarkResolution.MARK_RESOLUTION_CLEARED, heard.getResolution());
    List<String> order = new ArrayList<>(events.order);
    order.removeIf(e -> !e.equals("CLEARED") && !e.equals("MARK"));
    assertEquals(List.of("CLEARED", "MARK"), order);
    for (Wire.Message m : asterisk.readFor(300)) {
      if (m.kind() != Wire.Kind.AUDIO) continue;
      heardR1 += Support.count(m.payload(), 500);
      assertEquals(0, Support.count(m.payload(), 700), "r2 was cleared before it started");
    }
    assertEquals(r1.getPlayedMs() * 8, heardR1);
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void markResolvesPlayedAfterItsAudio(BridgeCall.Mode mode) throws Exception {
    BridgeCall call = connect(mode, false);
    call.play(Support.filled(800, 1000), "r1");
    assertEquals(MarkResolution.MARK_RESOLUTION_PLAYED, get(call.mark("m1")));
    int loud = 0;
    for (Wire.Message m : asterisk.readFor(300)) if (m.kind() == Wire.Kind.AUDIO) loud += Support.count(m.payload(), 1000);
    assertEquals(800, loud);
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void refusedCommandsSurfaceTheirResults(BridgeCall.Mode mode) throws Exception {
    BridgeCall call = connect(mode, false);
    CommandResult odd = get(call.play(new byte[3], ""));
    assertEquals(ResultCode.RESULT_CODE_INVALID_ARGUMENT, odd.getCode());
    assertTrue(odd.getMessage().contains("even"));
    assertEquals(ResultCode.RESULT_CODE_INVALID_ARGUMENT, get(call.sendDtmf("1x")).getCode());
    assertEquals(ResultCode.RESULT_CODE_OK, get(call.play(Support.filled(160, 9), "")).getCode());
    assertFalse(call.isEnded());
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void hangupSendsHangupAndEndsTheCall(BridgeCall.Mode mode) throws Exception {
    BridgeCall call = connect(mode, false);
    assertEquals(ResultCode.RESULT_CODE_OK, get(call.hangup()).getCode());
    CallEnded ended = get(call.ended());
    assertEquals(CallEndReason.CALL_END_REASON_BACKEND_HUNG_UP, ended.getReason());
    assertTrue(events.next(CallEvent::hasEnded).hasEnded(), "the listener hears the end");
    List<Wire.Message> rest = asterisk.readUntilClosed();
    assertTrue(rest.stream().anyMatch(m -> m.kind() == Wire.Kind.HANGUP), "0x00 before closing");
    assertEquals(ResultCode.RESULT_CODE_CALL_ENDED, get(call.play(new byte[2], "")).getCode());
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void hangupAfterPlayoutPlaysQueuedAudioFirst(BridgeCall.Mode mode) throws Exception {
    BridgeCall call = connect(mode, false);
    call.play(Support.filled(1600, 321), "bye");
    call.hangup(true);
    List<Wire.Message> rest = asterisk.readUntilClosed();
    int count = 0;
    for (Wire.Message m : rest) if (m.kind() == Wire.Kind.AUDIO) count += Support.count(m.payload(), 321);
    assertEquals(1600, count);
    assertEquals(Wire.Kind.HANGUP, rest.get(rest.size() - 1).kind());
    assertEquals(CallEndReason.CALL_END_REASON_BACKEND_HUNG_UP, get(call.ended()).getReason());
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void callerHangupEndsTheCallAndResolvesPendingMarks(BridgeCall.Mode mode) throws Exception {
    BridgeCall call = connect(mode, false);
    call.play(Support.filled(8000, 1), "");
    CompletableFuture<MarkResolution> mark = call.mark("never");
    Thread.sleep(100);
    asterisk.send(Wire.Message.hangup());
    assertEquals(MarkResolution.MARK_RESOLUTION_CALL_ENDED, get(mark));
    assertEquals(CallEndReason.CALL_END_REASON_CALLER_HUNG_UP, get(call.ended()).getReason());
    events.next(CallEvent::hasEnded);
    assertEquals("ENDED", events.order.get(events.order.size() - 1));
  }

  @Test
  void claimingFromAPushModeBridgeFails() throws Exception {
    try (BackendServer server = BackendServer.start("127.0.0.1", 0, call -> null);
        BridgeProcess bridge = new BridgeProcess(List.of("--listen=127.0.0.1:0", "--backend=ipv4:127.0.0.1:" + server.port()));
        BridgeClient client = new BridgeClient("127.0.0.1:" + bridge.grpcPort)) {
      CompletableFuture<BridgeCall> claim = client.claim(new CallListener() {});
      Throwable error = null;
      try {
        get(claim);
      } catch (java.util.concurrent.ExecutionException e) {
        error = e.getCause();
      }
      assertNotNull(error);
      assertEquals(io.grpc.Status.Code.FAILED_PRECONDITION, io.grpc.Status.fromThrowable(error).getCode());
    }
  }

  @Test
  void aHandlerThatRejectsEndsTheCall() throws Exception {
    try (BackendServer server = BackendServer.start("127.0.0.1", 0, call -> {
          call.reject(io.audiosocketbridge.v1.RejectReason.REJECT_REASON_DECLINED, "closed today");
          return null;
        });
        BridgeProcess bridge = new BridgeProcess(List.of("--listen=127.0.0.1:0", "--backend=ipv4:127.0.0.1:" + server.port()));
        FakeAsterisk caller = new FakeAsterisk(Wire.Dialect.ASTERISK)) {
      caller.connect(bridge.audiosocketPort);
      caller.send(Wire.Message.uuid(Support.UUID));
      caller.readUntilClosed();
      String line = bridge.waitForLog("call_ended", "ALL_BACKENDS_REJECTED");
      assertNotNull(line, String.join("\n", bridge.lines));
      assertTrue(line.contains("closed today"), line);
    }
  }

}
