package io.audiosocketbridge.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.audiosocketbridge.client.Support.BridgeProcess;
import io.audiosocketbridge.client.Support.FakeAsterisk;
import io.audiosocketbridge.v1.AudioChunk;
import io.audiosocketbridge.v1.CallEndReason;
import io.audiosocketbridge.v1.ClearResult;
import io.audiosocketbridge.v1.MarkResolution;
import io.audiosocketbridge.v1.MediaOptions;
import io.audiosocketbridge.v1.ResultCode;
import io.audiosocketbridge.wire.Wire;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * What a backend developer relies on beyond the wire: waiting inside callbacks, the push call's
 * rate, the push service in the user's own server, graceful close, the end of a call as a normal
 * outcome, and the pull worker across replicas with its error handling.
 */
class SdkBehaviourTest {
  private static final long WAIT = Support.WAIT_MS;
  private final List<AutoCloseable> cleanup = new ArrayList<>();

  @AfterEach
  void tearDown() throws Exception {
    for (int i = cleanup.size() - 1; i >= 0; i--) cleanup.get(i).close();
  }

  private <T extends AutoCloseable> T keep(T c) {
    cleanup.add(c);
    return c;
  }

  private static String uuid(int n) {
    return String.format("40325ec2-5efd-4bd3-805f-%012d", n);
  }

  /** A caller on port: UUID and one frame. */
  private FakeAsterisk dial(int port, String uuid) throws Exception {
    FakeAsterisk a = keep(new FakeAsterisk(Wire.Dialect.ASTERISK));
    a.connect(port);
    a.send(Wire.Message.uuid(uuid));
    a.sendAudio(Support.numberedFrame(0));
    return a;
  }

  /** A bridge in mode whose backend is handler (push: a BackendServer; pull: a worker). */
  private BridgeProcess bridgeWith(BridgeCall.Mode mode, CallHandler handler) throws Exception {
    if (mode == BridgeCall.Mode.PUSH) {
      BackendServer server = keep(BackendServer.start("127.0.0.1", 0, handler));
      return keep(new BridgeProcess(List.of("--listen=127.0.0.1:0", "--backend=ipv4:127.0.0.1:" + server.port())));
    }
    BridgeProcess bridge = keep(new BridgeProcess(List.of("--listen=127.0.0.1:0", "--mode=pull")));
    keep(BridgeWorker.builder("127.0.0.1:" + bridge.grpcPort, handler).claimsPerAddress(1).start());
    return bridge;
  }

  @ParameterizedTest
  @EnumSource(BridgeCall.Mode.class)
  void waitingOnAnyFutureInsideAListenerDoesNotDeadlock(BridgeCall.Mode mode) throws Exception {
    LinkedBlockingQueue<String> seen = new LinkedBlockingQueue<>();
    BridgeProcess bridge = bridgeWith(mode, call -> new CallListener() {
      boolean once;

      @Override
      public void onAudio(BridgeCall c, AudioChunk a) {
        if (once) return;
        once = true;
        try {
          seen.add("play=" + c.play(Support.filled(800, 1000), "r").get(5, TimeUnit.SECONDS).getCode());
          seen.add("mark=" + c.mark("m").get(5, TimeUnit.SECONDS));
          seen.add("hangup=" + c.hangup().get(5, TimeUnit.SECONDS).getCode());
          seen.add("ended=" + c.ended().get(5, TimeUnit.SECONDS).getReason());
          seen.add("after=" + c.mark("late").get(5, TimeUnit.SECONDS));
        } catch (Exception e) {
          seen.add("failed: " + e);
        }
      }
    });
    dial(bridge.audiosocketPort, Support.UUID);
    List<String> got = new ArrayList<>();
    for (int i = 0; i < 5; i++) got.add(seen.poll(WAIT, TimeUnit.MILLISECONDS));
    assertEquals(List.of("play=RESULT_CODE_OK", "mark=MARK_RESOLUTION_PLAYED", "hangup=RESULT_CODE_OK",
        "ended=CALL_END_REASON_BACKEND_HUNG_UP", "after=MARK_RESOLUTION_CALL_ENDED"), got);
  }

  @Test
  void aPushHandlerMayWaitOnACommandBeforeItReturns() throws Exception {
    LinkedBlockingQueue<String> seen = new LinkedBlockingQueue<>();
    LinkedBlockingQueue<String> audio = new LinkedBlockingQueue<>();
    BridgeProcess bridge = bridgeWith(BridgeCall.Mode.PUSH, call -> {
      seen.add("play=" + call.play(Support.filled(160, 5), "").get(5, TimeUnit.SECONDS).getCode());
      return Support.onAudio((c, a) -> audio.add("seq=" + a.getSequenceNumber()));
    });
    dial(bridge.audiosocketPort, Support.UUID);
    assertEquals("play=RESULT_CODE_OK", seen.poll(WAIT, TimeUnit.MILLISECONDS));
    // Audio that arrived while the handler ran is kept for the listener it returned.
    assertEquals("seq=0", audio.poll(WAIT, TimeUnit.MILLISECONDS));
  }

  @Test
  void aPushCallReportsTheRateTheAcceptConfirmed() throws Exception {
    LinkedBlockingQueue<String> seen = new LinkedBlockingQueue<>();
    BackendServer server = keep(BackendServer.start("127.0.0.1", 0, call -> {
      seen.add("offered=" + call.sampleRateHz());
      return Support.onAudio((c, a) -> seen.add("audio=" + a.getSampleRateHz() + " call=" + c.sampleRateHz()));
    }, MediaOptions.newBuilder().setSampleRateHz(16000).build()));
    BridgeProcess bridge = keep(new BridgeProcess(List.of("--listen=127.0.0.1:0", "--backend=ipv4:127.0.0.1:" + server.port())));
    dial(bridge.audiosocketPort, Support.UUID);
    assertEquals("offered=8000", seen.poll(WAIT, TimeUnit.MILLISECONDS));
    assertEquals("audio=16000 call=16000", seen.poll(WAIT, TimeUnit.MILLISECONDS));
  }

  @Test
  void theEndOfACallIsANormalOutcomeForEveryCommand() throws Exception {
    LinkedBlockingQueue<BridgeCall> calls = new LinkedBlockingQueue<>();
    BridgeProcess bridge = bridgeWith(BridgeCall.Mode.PULL, call -> {
      calls.add(call);
      return null;
    });
    FakeAsterisk caller = dial(bridge.audiosocketPort, Support.UUID);
    BridgeCall call = calls.poll(WAIT, TimeUnit.MILLISECONDS);
    assertNotNull(call);
    caller.send(Wire.Message.hangup());
    assertEquals(CallEndReason.CALL_END_REASON_CALLER_HUNG_UP, call.ended().get(WAIT, TimeUnit.MILLISECONDS).getReason());
    assertEquals(ResultCode.RESULT_CODE_CALL_ENDED, call.play(new byte[2], "").get(WAIT, TimeUnit.MILLISECONDS).getCode());
    assertEquals(MarkResolution.MARK_RESOLUTION_CALL_ENDED, call.mark("m").get(WAIT, TimeUnit.MILLISECONDS));
    ClearResult cleared = call.clear().get(WAIT, TimeUnit.MILLISECONDS);
    assertEquals(0, cleared.getResponsesCount());
    assertEquals(ResultCode.RESULT_CODE_CALL_ENDED, call.hangup().get(WAIT, TimeUnit.MILLISECONDS).getCode());
  }

  /** The push service in a server the user builds: here with a token check as an interceptor. */
  @Test
  void thePushServiceRunsInTheUsersOwnServer() throws Exception {
    Path token = Files.createTempFile("bridge-token", "");
    Files.writeString(token, "s3cret\n");
    List<String> headers = new CopyOnWriteArrayList<>();
    ServerInterceptor tokenCheck = new ServerInterceptor() {
      @Override
      public <Q, R> ServerCall.Listener<Q> interceptCall(ServerCall<Q, R> call, Metadata md, ServerCallHandler<Q, R> next) {
        String auth = md.get(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER));
        headers.add(String.valueOf(auth));
        if (!"Bearer s3cret".equals(auth)) {
          call.close(Status.UNAUTHENTICATED, new Metadata());
          return new ServerCall.Listener<>() {};
        }
        return next.startCall(call, md);
      }
    };
    LinkedBlockingQueue<String> calls = new LinkedBlockingQueue<>();
    Server server = Grpc.newServerBuilderForPort(0, InsecureServerCredentials.create())
        .addService(ServerInterceptors.intercept(BackendServer.service(call -> {
          calls.add(call.callId());
          return null;
        }), tokenCheck))
        .build().start();
    cleanup.add(() -> server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS));
    BridgeProcess bridge = keep(new BridgeProcess(List.of("--listen=127.0.0.1:0",
        "--backend=ipv4:127.0.0.1:" + server.getPort(), "--auth_token_file=" + token)));
    dial(bridge.audiosocketPort, Support.UUID);
    assertEquals(Support.UUID, calls.poll(WAIT, TimeUnit.MILLISECONDS));
    assertEquals("Bearer s3cret", headers.get(0));
    Files.deleteIfExists(token);
  }

  @Test
  void closeLetsCallsInProgressFinish() throws Exception {
    LinkedBlockingQueue<BridgeCall> calls = new LinkedBlockingQueue<>();
    BackendServer server = BackendServer.start("127.0.0.1", 0, call -> {
      calls.add(call);
      return null;
    });
    BridgeProcess bridge = keep(new BridgeProcess(List.of("--listen=127.0.0.1:0", "--backend=ipv4:127.0.0.1:" + server.port())));
    dial(bridge.audiosocketPort, Support.UUID);
    BridgeCall call = calls.poll(WAIT, TimeUnit.MILLISECONDS);
    assertNotNull(call);
    CompletableFuture<Void> closed = CompletableFuture.runAsync(() -> server.close(Duration.ofSeconds(60)));
    Thread.sleep(300);
    // The call still works while the server drains ...
    assertEquals(ResultCode.RESULT_CODE_OK, call.play(Support.filled(400, 3), "").get(WAIT, TimeUnit.MILLISECONDS).getCode());
    assertEquals(MarkResolution.MARK_RESOLUTION_PLAYED, call.mark("still-here").get(WAIT, TimeUnit.MILLISECONDS));
    // ... and ends as the backend decides; then close returns.
    call.hangup();
    assertEquals(CallEndReason.CALL_END_REASON_BACKEND_HUNG_UP, call.ended().get(WAIT, TimeUnit.MILLISECONDS).getReason());
    closed.get(WAIT, TimeUnit.MILLISECONDS);
  }

  // ------------------------------------------------------------------- worker

  /** A handler that hangs up each call at once and records its id. */
  private static CallHandler recordAndHangUp(LinkedBlockingQueue<String> answered) {
    return call -> {
      answered.add(call.callId());
      call.hangup();
      return null;
    };
  }

  @Test
  void theWorkerAnswersCallsArrivingAtAnyOfThreeBridges() throws Exception {
    List<BridgeProcess> bridges = new ArrayList<>();
    for (int i = 0; i < 3; i++) bridges.add(keep(new BridgeProcess(List.of("--listen=127.0.0.1:0", "--mode=pull"))));
    StringBuilder target = new StringBuilder();
    for (BridgeProcess b : bridges) target.append(target.length() > 0 ? "," : "").append("127.0.0.1:").append(b.grpcPort);
    LinkedBlockingQueue<String> answered = new LinkedBlockingQueue<>();
    BridgeWorker worker = keep(BridgeWorker.builder(target.toString(), recordAndHangUp(answered)).claimsPerAddress(2).start());
    assertEquals(3, worker.addresses().size());
    // Two calls at once on each bridge: every one is answered.
    Set<String> want = new HashSet<>();
    List<FakeAsterisk> callers = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      want.add(uuid(i));
      callers.add(dial(bridges.get(i % 3).audiosocketPort, uuid(i)));
    }
    Set<String> got = new HashSet<>();
    for (int i = 0; i < 6; i++) got.add(answered.poll(WAIT, TimeUnit.MILLISECONDS));
    assertEquals(want, got);
    for (FakeAsterisk c : callers) {
      List<Wire.Message> rest = c.readUntilClosed();
      assertEquals(Wire.Kind.HANGUP, rest.get(rest.size() - 1).kind(), "hung up by the backend");
    }
    // The slots are claimed again: a second round is answered too.
    for (int i = 0; i < 3; i++) dial(bridges.get(i).audiosocketPort, uuid(10 + i));
    for (int i = 0; i < 3; i++) assertNotNull(answered.poll(WAIT, TimeUnit.MILLISECONDS), "second round");
  }

  @Test
  void theWorkerFollowsAddressesAddedAndRemoved() throws Exception {
    BridgeProcess first = keep(new BridgeProcess(List.of("--listen=127.0.0.1:0", "--mode=pull", "--claim_timeout=1s")));
    BridgeProcess added = keep(new BridgeProcess(List.of("--listen=127.0.0.1:0", "--mode=pull")));
    List<InetSocketAddress> answer = new CopyOnWriteArrayList<>(List.of(new InetSocketAddress("127.0.0.1", first.grpcPort)));
    LinkedBlockingQueue<String> answered = new LinkedBlockingQueue<>();
    BridgeWorker worker = keep(BridgeWorker.builder("bridges.example:0", recordAndHangUp(answered))
        .resolver(t -> new ArrayList<>(answer)).reresolveEvery(Duration.ofMillis(200)).claimsPerAddress(1).start());
    dial(first.audiosocketPort, uuid(1));
    assertEquals(uuid(1), answered.poll(WAIT, TimeUnit.MILLISECONDS));
    // A new replica appears in the answer: its calls are answered.
    answer.add(new InetSocketAddress("127.0.0.1", added.grpcPort));
    waitUntil(() -> worker.addresses().size() == 2);
    dial(added.audiosocketPort, uuid(2));
    assertEquals(uuid(2), answered.poll(WAIT, TimeUnit.MILLISECONDS));
    // The first leaves the answer: the worker stops claiming there.
    answer.remove(0);
    waitUntil(() -> worker.addresses().size() == 1);
    dial(first.audiosocketPort, uuid(3));
    assertNotNull(first.waitForLog("call_ended", "CLAIM_TIMEOUT"), "no claim left on the removed address");
    assertEquals(null, answered.poll(200, TimeUnit.MILLISECONDS));
  }

  @Test
  void theWorkerStopsOnPermanentErrors() throws Exception {
    // A bridge in push mode: FAILED_PRECONDITION.
    BackendServer server = keep(BackendServer.start("127.0.0.1", 0, call -> null));
    BridgeProcess push = keep(new BridgeProcess(List.of("--listen=127.0.0.1:0", "--backend=ipv4:127.0.0.1:" + server.port())));
    BridgeWorker worker = keep(BridgeWorker.builder("127.0.0.1:" + push.grpcPort, call -> null).start());
    assertEquals(Status.Code.FAILED_PRECONDITION, failure(worker));
    // A bridge with a token, claimed without it: UNAUTHENTICATED; with it, calls are answered.
    Path token = Files.createTempFile("bridge-token", "");
    Files.writeString(token, "s3cret\n");
    BridgeProcess locked = keep(new BridgeProcess(List.of("--listen=127.0.0.1:0", "--mode=pull", "--auth_token_file=" + token)));
    BridgeWorker anonymous = keep(BridgeWorker.builder("127.0.0.1:" + locked.grpcPort, call -> null).start());
    assertEquals(Status.Code.UNAUTHENTICATED, failure(anonymous));
    LinkedBlockingQueue<String> answered = new LinkedBlockingQueue<>();
    keep(BridgeWorker.builder("127.0.0.1:" + locked.grpcPort, recordAndHangUp(answered)).bearerToken("s3cret").start());
    dial(locked.audiosocketPort, Support.UUID);
    assertEquals(Support.UUID, answered.poll(WAIT, TimeUnit.MILLISECONDS));
    Files.deleteIfExists(token);
  }

  @Test
  void theWorkerRetriesTransientErrorsUntilTheBridgeIsThere() throws Exception {
    int port;
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      port = s.getLocalPort();
    }
    LinkedBlockingQueue<String> answered = new LinkedBlockingQueue<>();
    BridgeWorker worker = keep(BridgeWorker.builder("127.0.0.1:" + port, recordAndHangUp(answered))
        .backoff(Duration.ofMillis(50), Duration.ofMillis(400)).start());
    Thread.sleep(500); // unreachable: retried, not fatal
    assertTrue(!worker.done().isDone(), "a transient error does not stop the worker");
    BridgeProcess bridge = keep(new BridgeProcess(List.of("--listen=127.0.0.1:0", "--mode=pull", "--grpc_listen=127.0.0.1:" + port)));
    dial(bridge.audiosocketPort, Support.UUID);
    assertEquals(Support.UUID, answered.poll(WAIT, TimeUnit.MILLISECONDS));
  }

  // Claims restart on the worker's timer while close() cancels the idle ones: cancelling a call
  // whose start() is still running on another thread threw grpc-java's NullPointerException out
  // of close().
  @Test
  void closeWhileClaimsAreStartingDoesNotThrow() throws Exception {
    int port;
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      port = s.getLocalPort();
    }
    for (int i = 0; i < 400; i++) {
      BridgeWorker worker = BridgeWorker.builder("127.0.0.1:" + port, call -> null)
          .claimsPerAddress(64).backoff(Duration.ofMillis(1), Duration.ofMillis(2)).start();
      Thread.sleep(i % 10);
      worker.close();
      assertTrue(worker.done().isDone());
    }
  }

  @Test
  void aNameResolvesToEveryAddress() throws Exception {
    List<InetSocketAddress> all = BridgeWorker.resolveAll("localhost:50051, 127.0.0.2:7");
    assertTrue(all.stream().anyMatch(a -> a.getAddress().isLoopbackAddress() && a.getPort() == 50051), all.toString());
    assertTrue(all.stream().anyMatch(a -> a.getAddress().getHostAddress().equals("127.0.0.2") && a.getPort() == 7), all.toString());
  }

  private static Status.Code failure(BridgeWorker worker) throws Exception {
    try {
      worker.done().get(WAIT, TimeUnit.MILLISECONDS);
    } catch (ExecutionException e) {
      return Status.fromThrowable(e.getCause()).getCode();
    }
    return Status.Code.OK;
  }

  private static void waitUntil(java.util.function.BooleanSupplier condition) throws InterruptedException {
    long deadline = System.currentTimeMillis() + WAIT;
    while (!condition.getAsBoolean()) {
      if (System.currentTimeMillis() > deadline) throw new AssertionError("condition not met in time");
      Thread.sleep(20);
    }
  }
}
