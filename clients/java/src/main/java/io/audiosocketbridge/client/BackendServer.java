package io.audiosocketbridge.client;

import io.audiosocketbridge.v1.CallCommand;
import io.audiosocketbridge.v1.CallHandlerGrpc;
import io.audiosocketbridge.v1.HandleCallRequest;
import io.audiosocketbridge.v1.HandleCallResponse;
import io.audiosocketbridge.v1.MediaOptions;
import io.audiosocketbridge.v1.RejectReason;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * Push mode: serves CallHandler; the bridge (started with --backend=ipv4:HOST:PORT) dials it once
 * per call and the {@link CallHandler} decides.
 */
public final class BackendServer implements AutoCloseable {
  private final Server server;

  private BackendServer(Server server) {
    this.server = server;
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

  @Override
  public void close() {
    server.shutdownNow();
    try {
      server.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private static final class Service extends CallHandlerGrpc.CallHandlerImplBase {
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
              out::onCompleted);
          // The handler runs off the gRPC thread; the bridge sends no audio before the accept.
          BridgeCall current = call;
          Thread answer = new Thread(() -> {
            try {
              CallListener listener = handler.onCall(current);
              if (listener != null) current.setListener(listener);
              if (!current.answered) current.accept(media);
            } catch (Exception e) {
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
