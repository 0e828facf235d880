package io.audiosocketbridge.client;

import io.audiosocketbridge.v1.BridgeServiceGrpc;
import io.audiosocketbridge.v1.CallCommand;
import io.audiosocketbridge.v1.ClaimCall;
import io.audiosocketbridge.v1.ClaimCallRequest;
import io.audiosocketbridge.v1.ClaimCallResponse;
import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientCall;
import io.grpc.ClientInterceptor;
import io.grpc.CompressorRegistry;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.MetadataUtils;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Pull mode, across bridge replicas: keeps {@code claimsPerAddress} ClaimCall streams open on
 * every address of the target and hands each call that arrives to a {@link CallHandler}.
 *
 * <p>The target is {@code host:port} (a DNS name is resolved to all its A/AAAA records, e.g. a
 * Kubernetes headless Service) or a comma-separated list of them. The worker re-resolves every
 * {@link Builder#reresolveEvery} and follows the answer: new addresses get claims, removed ones
 * stop claiming (their calls in progress go on). A call is a bridge's only on the replica that
 * holds it, so every replica needs idle claims: that is what this keeps.
 *
 * <p>Errors: transient ones (unreachable, reset, RESOURCE_EXHAUSTED, ...) are retried per claim
 * with exponential backoff and jitter; permanent ones (UNAUTHENTICATED, PERMISSION_DENIED,
 * UNIMPLEMENTED, FAILED_PRECONDITION e.g. a bridge in push mode, INVALID_ARGUMENT) stop the worker
 * and complete {@link #done()} exceptionally with the {@link StatusRuntimeException}; {@link
 * #run()} throws it.
 */
public final class BridgeWorker implements AutoCloseable {
  /** Resolves a target to the addresses to keep claims on. */
  @FunctionalInterface
  public interface Resolver {
    List<InetSocketAddress> resolve(String target) throws Exception;
  }

  private static final System.Logger LOG = System.getLogger(BridgeWorker.class.getName());

  private final String target;
  private final CallHandler handler;
  private final ClaimCall claim;
  private final int claimsPerAddress;
  private final Duration reresolveEvery;
  private final ChannelCredentials credentials;
  private final String bearerToken;
  private final String compression;
  private final Resolver resolver;
  private final Duration backoffMin;
  private final Duration backoffMax;
  private final ScheduledExecutorService timers;
  private final Map<InetSocketAddress, Endpoint> endpoints = new HashMap<>();
  private final CompletableFuture<Void> done = new CompletableFuture<>();
  private volatile boolean stopped;

  private BridgeWorker(Builder b) {
    this.target = b.target;
    this.handler = b.handler;
    this.claim = b.claim;
    this.claimsPerAddress = b.claimsPerAddress;
    this.reresolveEvery = b.reresolveEvery;
    this.credentials = b.credentials;
    this.bearerToken = b.bearerToken;
    this.compression = b.compression;
    this.resolver = b.resolver;
    this.backoffMin = b.backoffMin;
    this.backoffMax = b.backoffMax;
    this.timers = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "audiosocket-bridge-worker");
      t.setDaemon(true);
      return t;
    });
  }

  /**
   * A worker for target ("host:port", or "host1:port,host2:port"); handler.onCall(call) runs once
   * per call on its own thread and returns the call's listener (null: none).
   */
  public static Builder builder(String target, CallHandler handler) {
    return new Builder(target, handler);
  }

  /** Options; {@link #start()} builds and starts the worker. */
  public static final class Builder {
    private final String target;
    private final CallHandler handler;
    private ClaimCall claim = ClaimCall.getDefaultInstance();
    private int claimsPerAddress = 4;
    private Duration reresolveEvery = Duration.ofSeconds(30);
    private ChannelCredentials credentials = InsecureChannelCredentials.create();
    private String bearerToken;
    private String compression;
    private Resolver resolver = BridgeWorker::resolveAll;
    private Duration backoffMin = Duration.ofMillis(200);
    private Duration backoffMax = Duration.ofSeconds(10);

    private Builder(String target, CallHandler handler) {
      this.target = target;
      this.handler = handler;
    }

    /** What each stream claims (any call by default; by listener; media options). */
    public Builder claim(ClaimCall claim) { this.claim = claim; return this; }
    /** Calls each address may hand this worker at once (default 4). */
    public Builder claimsPerAddress(int n) { this.claimsPerAddress = n; return this; }
    /** How often the target is resolved again (default 30 s). */
    public Builder reresolveEvery(Duration d) { this.reresolveEvery = d; return this; }
    /** Channel credentials, e.g. {@code TlsChannelCredentials.create()} (default plaintext). */
    public Builder credentials(ChannelCredentials c) { this.credentials = c; return this; }
    /** Sent as {@code authorization: Bearer TOKEN} (the bridge's --auth_token_file). */
    public Builder bearerToken(String token) { this.bearerToken = token; return this; }
    /**
     * Compresses every message the worker sends (claims and commands, e.g. each play's audio) with
     * this grpc-encoding: {@code "gzip"} (grpc-java's; the bridge also reads deflate, which
     * grpc-java does not offer). Default: none. What the bridge sends is not compressed.
     */
    public Builder compression(String encoding) {
      if (CompressorRegistry.getDefaultInstance().lookupCompressor(encoding) == null) {
        throw new IllegalArgumentException("grpc-java has no compressor named " + encoding);
      }
      this.compression = encoding;
      return this;
    }
    /** Replaces DNS resolution (tests, service discovery of your own). */
    public Builder resolver(Resolver r) { this.resolver = r; return this; }
    /** Retry backoff bounds for transient errors (default 200 ms to 10 s). */
    public Builder backoff(Duration min, Duration max) { this.backoffMin = min; this.backoffMax = max; return this; }

    public BridgeWorker start() {
      BridgeWorker w = new BridgeWorker(this);
      w.refresh();
      return w;
    }
  }

  /** The default resolver: every host of the comma-separated list, each to all its addresses. */
  public static List<InetSocketAddress> resolveAll(String target) throws Exception {
    Set<InetSocketAddress> out = new LinkedHashSet<>();
    for (String part : target.split(",")) {
      String hp = part.trim();
      if (hp.isEmpty()) continue;
      if (hp.startsWith("dns:///")) hp = hp.substring(7);
      int colon = hp.lastIndexOf(':');
      if (colon <= 0) throw new IllegalArgumentException("target needs host:port: " + hp);
      String host = hp.substring(0, colon);
      if (host.startsWith("[") && host.endsWith("]")) host = host.substring(1, host.length() - 1);
      int port = Integer.parseInt(hp.substring(colon + 1));
      for (InetAddress a : InetAddress.getAllByName(host)) {
        // Keep the name: TLS verifies the certificate against it.
        out.add(new InetSocketAddress(InetAddress.getByAddress(host, a.getAddress()), port));
      }
    }
    return new ArrayList<>(out);
  }

  /** Completes when the worker is closed; exceptionally with a permanent error. */
  public CompletableFuture<Void> done() { return done; }

  /** Blocks until the worker stops; throws the permanent error that stopped it. */
  public void run() throws InterruptedException {
    try {
      done.get();
    } catch (java.util.concurrent.ExecutionException e) {
      if (e.getCause() instanceof RuntimeException r) throw r;
      throw new IllegalStateException(e.getCause());
    }
  }

  /** The addresses claims are kept on now. */
  public synchronized List<InetSocketAddress> addresses() {
    return new ArrayList<>(endpoints.keySet());
  }

  /** Stops claiming; calls in progress go on until they end. */
  @Override
  public void close() {
    stop(null);
  }

  private void stop(Throwable error) {
    List<Endpoint> all;
    synchronized (this) {
      if (stopped) return;
      stopped = true;
      all = new ArrayList<>(endpoints.values());
      endpoints.clear();
    }
    timers.shutdownNow();
    for (Endpoint e : all) e.retire();
    if (error != null) done.completeExceptionally(error);
    else done.complete(null);
  }

  /** Permanent: retrying cannot help, the caller must fix something. */
  static boolean permanent(Status.Code code) {
    return switch (code) {
      case UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED, FAILED_PRECONDITION, INVALID_ARGUMENT -> true;
      default -> false;
    };
  }

  private void refresh() {
    if (stopped) return;
    try {
      List<InetSocketAddress> now = resolver.resolve(target);
      List<Endpoint> removed = new ArrayList<>();
      synchronized (this) {
        if (stopped) return;
        Set<InetSocketAddress> want = new LinkedHashSet<>(now);
        for (var it = endpoints.entrySet().iterator(); it.hasNext(); ) {
          var e = it.next();
          if (!want.contains(e.getKey())) {
            removed.add(e.getValue());
            it.remove();
          }
        }
        for (InetSocketAddress a : want) {
          if (!endpoints.containsKey(a)) {
            Endpoint e = new Endpoint(a);
            endpoints.put(a, e);
            for (int i = 0; i < claimsPerAddress; i++) e.claimLoop(0);
          }
        }
      }
      for (Endpoint e : removed) e.retire();
    } catch (IllegalArgumentException e) {
      stop(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asRuntimeException());
      return;
    } catch (Exception e) {
      LOG.log(System.Logger.Level.WARNING, "resolving " + target + " failed (keeping the addresses known): " + e);
    }
    try {
      timers.schedule(this::refresh, reresolveEvery.toMillis(), TimeUnit.MILLISECONDS);
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // stopped
    }
  }

  private long backoffMillis(int attempt) {
    long max = backoffMax.toMillis();
    long ceiling = Math.min(max, backoffMin.toMillis() << Math.min(attempt, 20));
    // Full jitter over the upper half: spread retries of many claims and workers.
    return ceiling / 2 + ThreadLocalRandom.current().nextLong(ceiling / 2 + 1);
  }

  /** One bridge address: its channel and its claim streams. */
  private final class Endpoint {
    final InetSocketAddress address;
    final ManagedChannel channel;
    final BridgeServiceGrpc.BridgeServiceStub stub;
    final Set<ClientCallStreamObserver<ClaimCallRequest>> idle = ConcurrentHashMap.newKeySet();
    volatile boolean retired;

    Endpoint(InetSocketAddress address) {
      this.address = address;
      String host = address.getHostString();
      ManagedChannelBuilder<?> b = Grpc.newChannelBuilderForAddress(
          address.getAddress().getHostAddress(), address.getPort(), credentials);
      if (!host.equals(address.getAddress().getHostAddress())) b.overrideAuthority(host + ":" + address.getPort());
      if (bearerToken != null) b.intercept(bearer(bearerToken));
      if (compression != null) b.intercept(compression(compression));
      this.channel = b.build();
      this.stub = BridgeServiceGrpc.newStub(channel);
    }

    void retire() {
      retired = true;
      for (ClientCallStreamObserver<ClaimCallRequest> s : idle) s.cancel("address removed", null);
      channel.shutdown(); // graceful: calls in progress go on
    }

    void claimLoop(int attempt) {
      if (retired || stopped) return;
      // Set once the stream has a call or has ended: it is no longer idle.
      AtomicBoolean settled = new AtomicBoolean();
      ClientResponseObserver<ClaimCallRequest, ClaimCallResponse> responses =
          new ClientResponseObserver<ClaimCallRequest, ClaimCallResponse>() {
        private ClientCallStreamObserver<ClaimCallRequest> requests;
        private BridgeCall call;

        @Override
        public void beforeStart(ClientCallStreamObserver<ClaimCallRequest> requests) {
          this.requests = requests;
        }

        @Override
        public void onNext(ClaimCallResponse response) {
          if (call != null) {
            call.receive(response.getEvent());
            return;
          }
          if (!response.getEvent().hasStarted()) return;
          settled.set(true);
          idle.remove(requests);
          call = new BridgeCall(BridgeCall.Mode.PULL, response.getEvent().getStarted(),
              (CallCommand c) -> requests.onNext(ClaimCallRequest.newBuilder().setCommand(c).build()),
              requests::onCompleted, claim.getMedia(), false);
          BridgeCall current = call;
          Thread t = new Thread(() -> {
            try {
              CallListener l = handler.onCall(current);
              if (l != null) current.setListener(l);
              else current.settleListener();
            } catch (Exception e) {
              current.settleListener();
              LOG.log(System.Logger.Level.WARNING, "handler of call " + current.callId() + " threw: " + e);
              current.hangup();
            }
          }, "claim-" + current.callId());
          t.setDaemon(true);
          t.start();
          // The slot is claimed again when this call ends.
          current.ended().whenComplete((e, x) -> claimLoop(0));
        }

        @Override
        public void onError(Throwable t) {
          settled.set(true);
          idle.remove(requests);
          if (call != null) {
            call.lost("stream failed: " + t.getMessage());
            return;
          }
          if (retired || stopped) return;
          Status status = Status.fromThrowable(t);
          if (permanent(status.getCode())) {
            if (!stopped) LOG.log(System.Logger.Level.ERROR, "claiming from " + address + ": " + status);
            stop(status.augmentDescription("claiming from " + address).asRuntimeException());
            return;
          }
          retryLater(status.toString());
        }

        @Override
        public void onCompleted() {
          settled.set(true);
          idle.remove(requests);
          if (call != null) {
            call.lost("the bridge closed the stream without CallEnded");
            return;
          }
          retryLater("the bridge ended an idle claim");
        }

        private void retryLater(String why) {
          if (retired || stopped) return;
          long delay = backoffMillis(attempt);
          LOG.log(System.Logger.Level.DEBUG, "claiming from " + address + ": " + why + "; retrying in " + delay + " ms");
          try {
            timers.schedule(() -> claimLoop(attempt + 1), delay, TimeUnit.MILLISECONDS);
          } catch (java.util.concurrent.RejectedExecutionException e) {
            // stopped
          }
        }
      };
      var requests = (ClientCallStreamObserver<ClaimCallRequest>) stub.claimCall(responses);
      requests.onNext(ClaimCallRequest.newBuilder().setClaim(claim).build());
      // Idle (cancelled by retire) only now that the call has started: grpc-java throws a
      // NullPointerException out of a cancel() that races the call's start() on another thread.
      idle.add(requests);
      if (settled.get()) idle.remove(requests);
      // retire() may have gone through the idle set before the add (a call it
      // already has goes on, as close() promises).
      if ((retired || stopped) && !settled.get()) requests.cancel("worker stopped", null);
    }
  }

  /** An interceptor sending {@code authorization: Bearer TOKEN} on every call. */
  public static ClientInterceptor bearer(String token) {
    Metadata headers = new Metadata();
    headers.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + token);
    return MetadataUtils.newAttachHeadersInterceptor(headers);
  }

  /**
   * An interceptor compressing every message its calls send with {@code encoding} (e.g. "gzip"; a
   * name the channel's compressor registry knows), for a {@link BridgeClient} on a channel you
   * build: {@code new BridgeClient(Grpc.newChannelBuilder(target, credentials)
   * .intercept(BridgeWorker.compression("gzip")).build())}.
   */
  public static ClientInterceptor compression(String encoding) {
    return new ClientInterceptor() {
      @Override
      public <Q, R> ClientCall<Q, R> interceptCall(MethodDescriptor<Q, R> method, CallOptions options, Channel next) {
        return next.newCall(method, options.withCompression(encoding));
      }
    };
  }
}
