package io.audiosocketbridge.client;

import com.google.protobuf.ByteString;
import io.audiosocketbridge.v1.AcceptCall;
import io.audiosocketbridge.v1.CallCommand;
import io.audiosocketbridge.v1.CallEnded;
import io.audiosocketbridge.v1.CallEvent;
import io.audiosocketbridge.v1.CallStarted;
import io.audiosocketbridge.v1.ClearAudio;
import io.audiosocketbridge.v1.ClearResult;
import io.audiosocketbridge.v1.CommandResult;
import io.audiosocketbridge.v1.ControlType;
import io.audiosocketbridge.v1.Dialect;
import io.audiosocketbridge.v1.Hangup;
import io.audiosocketbridge.v1.Mark;
import io.audiosocketbridge.v1.MarkResolution;
import io.audiosocketbridge.v1.MarkResolved;
import io.audiosocketbridge.v1.MediaOptions;
import io.audiosocketbridge.v1.PlayAudio;
import io.audiosocketbridge.v1.RejectCall;
import io.audiosocketbridge.v1.RejectReason;
import io.audiosocketbridge.v1.ResultCode;
import io.audiosocketbridge.v1.SendControl;
import io.audiosocketbridge.v1.SendDtmf;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * One call, in either mode: its metadata (from CallStarted), its events (to a {@link
 * CallListener}), and commands whose futures complete with the bridge's answer. Thread-safe.
 */
public final class BridgeCall {
  /** Which way the call reached this backend. */
  public enum Mode { PUSH, PULL }

  private final Mode mode;
  private final CallStarted started;
  private final Consumer<CallCommand> writer;
  private final Runnable closer;
  private final ExecutorService events;
  private final AtomicLong nextId = new AtomicLong(1);
  private final Map<String, CompletableFuture<CommandResult>> results = new ConcurrentHashMap<>();
  private final Map<String, CompletableFuture<ClearResult>> clears = new ConcurrentHashMap<>();
  private final Map<String, ArrayDeque<CompletableFuture<MarkResolved>>> marks = new HashMap<>();
  private final CompletableFuture<CallEnded> ended = new CompletableFuture<>();
  private volatile CallListener listener;
  private volatile boolean closed;
  volatile boolean answered;

  BridgeCall(Mode mode, CallStarted started, Consumer<CallCommand> writer, Runnable closer) {
    this.mode = mode;
    this.started = started;
    this.writer = writer;
    this.closer = closer;
    this.events = Executors.newSingleThreadExecutor(r -> {
      Thread t = new Thread(r, "call-" + started.getCallId());
      t.setDaemon(true);
      return t;
    });
  }

  // ---------------------------------------------------------------- metadata

  public Mode mode() { return mode; }
  public CallStarted started() { return started; }
  public String callId() { return started.getCallId(); }
  public String listenerName() { return started.getListener(); }
  public Dialect dialect() { return started.getDialect(); }
  public String peerAddress() { return started.getPeerAddress(); }
  public int callSampleRateHz() { return started.getCallSampleRateHz(); }
  /** The rate audio is exchanged at with this backend. */
  public int sampleRateHz() { return started.getBackendSampleRateHz(); }
  public Instant startTime() {
    return Instant.ofEpochSecond(started.getStartTime().getSeconds(), started.getStartTime().getNanos());
  }
  public boolean isEnded() { return ended.isDone(); }
  /** Completes with CallEnded (or a synthetic one if the stream failed without it). */
  public CompletableFuture<CallEnded> ended() { return ended; }

  /** Sets where events go. Set it in the push handler or pass it to claim: events are not replayed. */
  public BridgeCall setListener(CallListener listener) {
    this.listener = listener;
    return this;
  }

  // ---------------------------------------------------------------- commands

  /** Queues LINEAR16 audio (little-endian bytes) for the caller. */
  public CompletableFuture<CommandResult> play(byte[] pcm, String responseId) {
    return command(CallCommand.newBuilder().setPlay(PlayAudio.newBuilder()
        .setPcm(ByteString.copyFrom(pcm)).setResponseId(responseId == null ? "" : responseId)));
  }

  public CompletableFuture<CommandResult> play(ByteString pcm, String responseId) {
    return command(CallCommand.newBuilder().setPlay(PlayAudio.newBuilder()
        .setPcm(pcm).setResponseId(responseId == null ? "" : responseId)));
  }

  public CompletableFuture<CommandResult> play(short[] samples, String responseId) {
    return play(Pcm.toBytes(samples), responseId);
  }

  /**
   * Completes with the MarkResolved once the audio queued before the mark has played (or was
   * cleared, or the call ended); exceptionally with {@link CommandException} if refused.
   */
  public CompletableFuture<MarkResolved> mark(String name) {
    CompletableFuture<MarkResolved> resolved = new CompletableFuture<>();
    synchronized (marks) {
      marks.computeIfAbsent(name, k -> new ArrayDeque<>()).add(resolved);
    }
    command(CallCommand.newBuilder().setMark(Mark.newBuilder().setName(name))).thenAccept(r -> {
      if (r.getCode() == ResultCode.RESULT_CODE_OK) return;
      synchronized (marks) {
        ArrayDeque<CompletableFuture<MarkResolved>> q = marks.get(name);
        if (q != null) q.remove(resolved);
      }
      if (r.getCode() == ResultCode.RESULT_CODE_CALL_ENDED) {
        resolved.complete(MarkResolved.newBuilder().setName(name)
            .setResolution(MarkResolution.MARK_RESOLUTION_CALL_ENDED).build());
      } else {
        resolved.completeExceptionally(new CommandException(r));
      }
    });
    return resolved;
  }

  /** Barge-in: discards queued audio (only this response's if not empty). */
  public CompletableFuture<ClearResult> clear(String responseId) {
    String id = "clear-" + nextId.getAndIncrement();
    CompletableFuture<ClearResult> cleared = new CompletableFuture<>();
    clears.put(id, cleared);
    CompletableFuture<CommandResult> refused = new CompletableFuture<>();
    results.put(id, refused);
    refused.thenAccept(r -> {
      clears.remove(id);
      cleared.completeExceptionally(new CommandException(r));
    });
    if (!write(CallCommand.newBuilder().setCommandId(id)
        .setClear(ClearAudio.newBuilder().setResponseId(responseId == null ? "" : responseId)).build())) {
      results.remove(id);
      refused.complete(callEnded(id, "clear"));
    }
    return cleared;
  }

  public CompletableFuture<ClearResult> clear() { return clear(""); }

  /** DTMF toward the caller; completes when the last tone has played. 0 means the default. */
  public CompletableFuture<CommandResult> sendDtmf(String digits, int toneMs, int gapMs) {
    return command(CallCommand.newBuilder().setSendDtmf(
        SendDtmf.newBuilder().setDigits(digits).setToneMs(toneMs).setGapMs(gapMs)));
  }

  public CompletableFuture<CommandResult> sendDtmf(String digits) { return sendDtmf(digits, 0, 0); }

  /** A control signal toward Asterisk (extended dialect). */
  public CompletableFuture<CommandResult> sendControl(ControlType type) {
    return command(CallCommand.newBuilder().setSendControl(SendControl.newBuilder().setType(type)));
  }

  public CompletableFuture<CommandResult> sendControl(int rawCode) {
    return command(CallCommand.newBuilder().setSendControl(SendControl.newBuilder().setRawCode(rawCode)));
  }

  public CompletableFuture<CommandResult> hangup(boolean afterPlayout) {
    return command(CallCommand.newBuilder().setHangup(Hangup.newBuilder().setAfterPlayout(afterPlayout)));
  }

  public CompletableFuture<CommandResult> hangup() { return hangup(false); }

  /** Push mode: accept (done for you when the handler returns unless it answered itself). */
  public CompletableFuture<CommandResult> accept(MediaOptions media) {
    answered = true;
    return command(CallCommand.newBuilder().setAccept(AcceptCall.newBuilder().setMedia(media)));
  }

  /** Push mode: refuse the call (BUSY: try another backend; DECLINED: end it). */
  public void reject(RejectReason reason, String detail) {
    answered = true;
    write(CallCommand.newBuilder().setReject(RejectCall.newBuilder().setReason(reason).setDetail(detail)).build());
    close();
  }

  /** Sends any command; a command id is assigned when missing, and the future gets its result. */
  public CompletableFuture<CommandResult> send(CallCommand command) {
    return command(command.toBuilder());
  }

  private CompletableFuture<CommandResult> command(CallCommand.Builder builder) {
    String name = builder.getCommandCase().name().toLowerCase();
    if (builder.getCommandId().isEmpty()) builder.setCommandId(name + "-" + nextId.getAndIncrement());
    String id = builder.getCommandId();
    CompletableFuture<CommandResult> future = new CompletableFuture<>();
    if (isEnded()) {
      future.complete(callEnded(id, name));
      return future;
    }
    results.put(id, future);
    if (!write(builder.build())) {
      results.remove(id);
      future.complete(callEnded(id, name));
    }
    return future;
  }

  private static CommandResult callEnded(String id, String command) {
    return CommandResult.newBuilder().setCommandId(id).setCode(ResultCode.RESULT_CODE_CALL_ENDED)
        .setMessage("the call ended before the command completed").setCommand(command).build();
  }

  private final java.util.List<CallCommand> held = new java.util.ArrayList<>();
  private boolean acceptWritten;

  private synchronized boolean write(CallCommand command) {
    if (closed) return false;
    // Push mode: commands sent before the accept wait for it (the bridge refuses them earlier).
    if (mode == Mode.PUSH && !acceptWritten && !command.hasAccept() && !command.hasReject()) {
      held.add(command);
      return true;
    }
    if (command.hasAccept()) {
      boolean ok = writeNow(command);
      acceptWritten = true;
      for (CallCommand c : held) writeNow(c);
      held.clear();
      return ok;
    }
    return writeNow(command);
  }

  private boolean writeNow(CallCommand command) {
    try {
      writer.accept(command);
      return true;
    } catch (RuntimeException e) {
      return false;
    }
  }

  private synchronized void close() {
    if (closed) return;
    closed = true;
    try {
      closer.run();
    } catch (RuntimeException e) {
      // already closed
    }
  }

  // ------------------------------------------------------------------ events

  /** Called by the transport with each event after CallStarted, in order. */
  void receive(CallEvent event) {
    if (isEnded()) return;
    switch (event.getEventCase()) {
      case RESULT -> {
        CompletableFuture<CommandResult> f = results.remove(event.getResult().getCommandId());
        if (f != null) f.complete(event.getResult());
      }
      case CLEARED -> {
        String id = event.getCleared().getCommandId();
        results.remove(id);
        CompletableFuture<ClearResult> f = clears.remove(id);
        if (f != null) f.complete(event.getCleared());
      }
      case MARK -> {
        CompletableFuture<MarkResolved> f = null;
        synchronized (marks) {
          ArrayDeque<CompletableFuture<MarkResolved>> q = marks.get(event.getMark().getName());
          if (q != null) {
            f = q.poll();
            if (q.isEmpty()) marks.remove(event.getMark().getName());
          }
        }
        deliver(event); // the listener hears the mark before the future completes
        if (f != null) {
          CompletableFuture<MarkResolved> done = f;
          events.execute(() -> done.complete(event.getMark()));
        }
        return;
      }
      case ENDED -> {
        finish(event.getEnded());
        return;
      }
      default -> {}
    }
    deliver(event);
  }

  /** The stream ended or failed without CallEnded. */
  void lost(String detail) {
    if (isEnded()) return;
    finish(CallEnded.newBuilder().setDetail(detail).build());
  }

  private void finish(CallEnded callEnded) {
    synchronized (this) {
      if (ended.isDone() || endedSeen) return;
      endedSeen = true;
    }
    results.forEach((id, f) -> f.complete(callEnded(id, "command")));
    results.clear();
    clears.forEach((id, f) -> f.completeExceptionally(new CommandException(callEnded(id, "clear"))));
    clears.clear();
    Map<String, ArrayDeque<CompletableFuture<MarkResolved>>> left;
    synchronized (marks) {
      left = new HashMap<>(marks);
      marks.clear();
    }
    close();
    deliver(CallEvent.newBuilder().setEnded(callEnded).build());
    events.execute(() -> {
      left.forEach((name, q) -> q.forEach(f -> f.complete(MarkResolved.newBuilder().setName(name)
          .setResolution(MarkResolution.MARK_RESOLUTION_CALL_ENDED).build())));
      ended.complete(callEnded);
    });
    events.shutdown();
  }

  private boolean endedSeen;

  private void deliver(CallEvent event) {
    try {
      events.execute(() -> {
        CallListener l = listener;
        if (l == null) return;
        try {
          l.onEvent(this, event);
        } catch (RuntimeException e) {
          System.err.println("audiosocket-bridge: listener of call " + callId() + " threw: " + e);
        }
      });
    } catch (java.util.concurrent.RejectedExecutionException e) {
      // after the end
    }
  }
}
