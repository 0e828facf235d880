package io.audiosocketbridge.client;

import io.audiosocketbridge.v1.BridgeServiceGrpc;
import io.audiosocketbridge.v1.CallCommand;
import io.audiosocketbridge.v1.CallInfo;
import io.audiosocketbridge.v1.ClaimCall;
import io.audiosocketbridge.v1.ClaimCallRequest;
import io.audiosocketbridge.v1.ClaimCallResponse;
import io.audiosocketbridge.v1.HangupCallRequest;
import io.audiosocketbridge.v1.ListCallsRequest;
import io.audiosocketbridge.v1.MediaOptions;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * Pull mode: a client of one bridge address (claim a call, list calls, hang one up). To serve calls
 * from every replica behind a name, use {@link BridgeWorker}.
 */
public final class BridgeClient implements AutoCloseable {
  private final ManagedChannel channel;
  private final BridgeServiceGrpc.BridgeServiceStub async;
  private final BridgeServiceGrpc.BridgeServiceBlockingStub blocking;

  /** target: the bridge's gRPC address, e.g. "127.0.0.1:50051" (plaintext). */
  public BridgeClient(String target) {
    this(NettyChannelBuilder.forTarget(target).usePlaintext().build());
  }

  /**
   * With credentials (e.g. {@code TlsChannelCredentials.create()}) and a bearer token (null: none),
   * sent as {@code authorization: Bearer TOKEN}.
   */
  public BridgeClient(String target, ChannelCredentials credentials, String bearerToken) {
    this(bearerToken == null ? Grpc.newChannelBuilder(target, credentials).build()
        : Grpc.newChannelBuilder(target, credentials).intercept(BridgeWorker.bearer(bearerToken)).build());
  }

  /**
   * On a channel you build, e.g. with interceptors: {@code BridgeWorker.compression("gzip")} to
   * compress what this client sends, {@code BridgeWorker.bearer(token)}. {@link #close()} shuts it
   * down.
   */
  public BridgeClient(ManagedChannel channel) {
    this.channel = channel;
    this.async = BridgeServiceGrpc.newStub(channel);
    this.blocking = BridgeServiceGrpc.newBlockingStub(channel);
  }

  /** Claims the next call on any listener. */
  public CompletableFuture<BridgeCall> claim(CallListener listener) {
    return claim(ClaimCall.getDefaultInstance(), listener);
  }

  /**
   * Claims a call (ClaimCall: by call_id, by listener, or any; media options). The future completes
   * when the call arrives (CallStarted), with the listener already attached; exceptionally if the
   * stream fails first. Cancelling the future cancels the claim.
   */
  public CompletableFuture<BridgeCall> claim(ClaimCall claim, CallListener listener) {
    CompletableFuture<BridgeCall> future = new CompletableFuture<>();
    async.claimCall(new ClientResponseObserver<ClaimCallRequest, ClaimCallResponse>() {
      private ClientCallStreamObserver<ClaimCallRequest> requests;
      private BridgeCall call;

      @Override
      public void beforeStart(ClientCallStreamObserver<ClaimCallRequest> requests) {
        this.requests = requests;
        future.whenComplete((c, e) -> {
          if (future.isCancelled()) requests.cancel("claim cancelled", null);
        });
      }

      @Override
      public void onNext(ClaimCallResponse response) {
        if (call != null) {
          call.receive(response.getEvent());
          return;
        }
        if (!response.getEvent().hasStarted()) return; // e.g. a result for the claim itself
        call = new BridgeCall(BridgeCall.Mode.PULL, response.getEvent().getStarted(),
            (CallCommand c) -> requests.onNext(ClaimCallRequest.newBuilder().setCommand(c).build()),
            requests::onCompleted);
        call.setListener(listener);
        future.complete(call);
      }

      @Override
      public void onError(Throwable t) {
        if (call != null) call.lost("stream failed: " + t.getMessage());
        else future.completeExceptionally(t);
      }

      @Override
      public void onCompleted() {
        if (call != null) call.lost("the bridge closed the stream without CallEnded");
        else future.completeExceptionally(new IllegalStateException("the stream ended before CallStarted"));
      }
    }).onNext(ClaimCallRequest.newBuilder().setClaim(claim).build());
    return future;
  }

  public static ClaimCall any() {
    return ClaimCall.getDefaultInstance();
  }

  public static ClaimCall byListener(String listener) {
    return ClaimCall.newBuilder().setListener(listener).build();
  }

  public static ClaimCall byCallId(String callId) {
    return ClaimCall.newBuilder().setCallId(callId).build();
  }

  public static ClaimCall withMedia(ClaimCall claim, MediaOptions media) {
    return claim.toBuilder().setMedia(media).build();
  }

  public List<CallInfo> listCalls(String listener) {
    return blocking.listCalls(ListCallsRequest.newBuilder().setListener(listener).build()).getCallsList();
  }

  /** Ends a call (reason HANGUP_REQUESTED); throws StatusRuntimeException NOT_FOUND if unknown. */
  public void hangupCall(String callId) {
    blocking.hangupCall(HangupCallRequest.newBuilder().setCallId(callId).build());
  }

  public ManagedChannel channel() {
    return channel;
  }

  @Override
  public void close() {
    channel.shutdownNow();
    try {
      channel.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
