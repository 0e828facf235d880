package io.audiosocketbridge.client;

import io.audiosocketbridge.v1.CallCommand;
import io.audiosocketbridge.v1.CallHandlerServiceGrpc;
import io.audiosocketbridge.v1.HandleCallRequest;
import io.audiosocketbridge.v1.HandleCallResponse;
import io.audiosocketbridge.v1.MediaOptions;
import io.audiosocketbridge.v1.RejectReason;
import io.grpc.BindableService;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Push mode: serves CallHandler; the bridge (started with --backend=ipv4:HOST:PORT) dials it once
 * per call and the {@link CallHandler} decides.
 *
 * <p>{@link #start} runs a plaintext server of its own. For TLS, a token check or interceptors,
 * add {@link #service} to your own {@link Server} instead.
 */
public final class BackendServer implements AutoCloseable {
  /** How long {@link #close()} lets calls in progress go on before it cancels them. */
  public static final Duration DEFAULT_GRACE = Duration.ofSeconds(10);

  private final Server server;

  private BackendServer(Server server) {
    this.server = server;
  }

  /**
   * The CallHandler service alone, to add to a server you build yourself:
   * {@code Grpc.newServerBuilderForPort(port, tlsCredentials).addService(
   * ServerInterceptors.intercept(BackendServer.service(handler), tokenCheck)).build().start()}.
   */
  public static BindableService service(CallHandler handler) {
    return service(handler, MediaOptions.getDefaultInstance());
  }

  /** As {@link #service(CallHandler)}; media: what the SDK's accept asks for. */
  public static BindableService service(CallHandler handler, MediaOptions media) {
    return new Service(handler, media);
  }

  /** Serves on host:port (port 0 picks a free one; see {@link #port()}). */
  public static BackendServer start(String host, int port, CallHandler handler) throws IOException {
    return start(host, port, handler, MediaOptions.getDefaultInstance());
  }

  public static BackendServer start(String host, int port, CallHandler handler, MediaOptions media)
      throws IOException {
    Server server = NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
        .addService(new Service(handler, media)).build().start();
    return new BackendServer(server);
  }

  public int port() {
    return server.getPort();
  }

  public void awaitTermination() throws InterruptedException {
    server.awaitTermination();
  }

  /** Graceful: {@link #close(Duration)} with {@link #DEFAULT_GRACE}. */
  @Override
  public void close() {
    close(DEFAULT_GRACE);
  }

  /**
   * Stops taking new calls, lets the calls in progress go on for up to {@code grace}, then cancels
   * what is left (those calls end BACKEND_LOST on the bridge) and waits briefly for that.
   */
  public void close(Duration grace) {
    server.shutdown();
    try {
      if (!server.awaitTermination(grace.toMillis(), TimeUnit.MILLISECONDS)) {
        server.shutdownNow();
        server.awaitTermination(5, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      server.shutdownNow();
      Thread.currentThread().interrupt();
    }
  }

  private static final class Service extends CallHandlerServiceGrpc.CallHandlerServiceImplBase {
    private final CallHandler handler;
    private final MediaOptions media;

    Service(CallHandler handler, MediaOptions media) {
      this.handler = handler;
      this.media = media;
    }

    @Override
    public StreamObserver<HandleCallRequest> handleCall(StreamObserver<HandleCallResponse> responses) {
      ServerCallStreamObserver<HandleCallResponse> out = (ServerCallStreamObserver<HandleCallResponse>) responses;
      return new StreamObserver<>() {
        private BridgeCall call;

        @Override
        public void onNext(HandleCallRequest request) {
          if (call != null) {
            call.receive(request.getEvent());
            return;
          }
          if (!request.getEvent().hasStarted()) {
            out.onCompleted();
            return;
          }
          call = new BridgeCall(BridgeCall.Mode.PUSH, request.getEvent().getStarted(),
              (CallCommand c) -> out.onNext(HandleCallResponse.newBuilder().setCommand(c).build()),
              out::onNext, out::onCompleted, media);
          // The handler runs off the gRPC thread; the bridge sends no audio before the accept.
          BridgeCall current = call;
          Thread answer = new Thread(() -> {
            try {
              CallListener listener = handler.onCall(current);
              if (listener != null) current.setListener(listener);
              else current.settleListener();
              if (!current.answered) current.accept(media);
            } catch (Exception e) {
              current.settleListener();
              if (!current.answered) current.reject(RejectReason.REJECT_REASON_BUSY, String.valueOf(e.getMessage()));
            }
          }, "answer-" + current.callId());
          answer.setDaemon(true);
          answer.start();
        }

        @Override
        public void onError(Throwable t) {
          if (call != null) call.lost("stream failed: " + t.getMessage());
        }

        @Override
        public void onCompleted() {
          if (call != null) call.lost("the bridge closed the stream without CallEnded");
        }
      };
    }
  }
}
