package io.audiosocketbridge.client;

import com.google.protobuf.ByteString;
import io.audiosocketbridge.v1.AcceptCall;
import io.audiosocketbridge.v1.CallCommand;
import io.audiosocketbridge.v1.CallEnded;
import io.audiosocketbridge.v1.CallEvent;
import io.audiosocketbridge.v1.CallStarted;
import io.audiosocketbridge.v1.ClearAudio;
import io.audiosocketbridge.v1.ClearResult;
import io.audiosocketbridge.v1.CommandKind;
import io.audiosocketbridge.v1.CommandResult;
import io.audiosocketbridge.v1.ControlType;
import io.audiosocketbridge.v1.Dialect;
import io.audiosocketbridge.v1.HandleCallResponse;
import io.audiosocketbridge.v1.Hangup;
import io.audiosocketbridge.v1.Mark;
import io.audiosocketbridge.v1.MarkResolution;
import io.audiosocketbridge.v1.MediaOptions;
import io.audiosocketbridge.v1.PlayAudio;
import io.audiosocketbridge.v1.RejectCall;
import io.audiosocketbridge.v1.RejectReason;
import io.audiosocketbridge.v1.ResultCode;
import io.audiosocketbridge.v1.SendControl;
import io.audiosocketbridge.v1.SendDtmf;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;

/**
 * One call, in either mode: its metadata (from CallStarted), its events (to a {@link
 * CallListener}), and commands whose futures complete with the bridge's answer. Thread-safe.
 *
 * <p>Futures complete on the SDK's own completion threads, never on the thread that runs this
 * call's listener, so waiting on any of them ({@code call.mark("m").get()}) from inside a listener
 * or a handler is safe. Ending a call is a normal outcome: after the end, commands complete with
 * {@code RESULT_CODE_CALL_ENDED}, marks with {@code MARK_RESOLUTION_CALL_ENDED}, clears with an
 * empty {@link ClearResult}; none of them completes exceptionally for that.
 */
public final class BridgeCall {
  /** Which way the call reached this backend. */
  public enum Mode { PUSH, PULL }

  private final Mode mode;
  private final CallStarted started;
  private final Consumer<CallCommand> writer;
  /** Push: writes AcceptCall and RejectCall, which are not CallCommands. Null in pull mode. */
  private final Consumer<HandleCallResponse> answers;
  private final Runnable closer;
  private final MediaOptions defaultMedia;
  private final ExecutorService events;
  private final AtomicLong nextId = new AtomicLong(1);
  private final Map<String, CompletableFuture<CommandResult>> results = new ConcurrentHashMap<>();
  private final Map<String, CompletableFuture<ClearResult>> clears = new ConcurrentHashMap<>();
  private final Map<String, ArrayDeque<CompletableFuture<MarkResolution>>> marks = new HashMap<>();
  private final CompletableFuture<CallEnded> ended = new CompletableFuture<>();
  private final List<CallEvent> early = new ArrayList<>();
  private final List<CallCommand> held = new ArrayList<>();
  private volatile CallListener listener;
  private volatile int sampleRateHz;
  private volatile boolean closed;
  private boolean listenerSettled;
  private boolean acceptWritten;
  private boolean endedSeen;
  volatile boolean answered;

  /** Pull mode. */
  BridgeCall(Mode mode, CallStarted started, Consumer<CallCommand> writer, Runnable closer) {
    this(mode, started, writer, null, closer, MediaOptions.getDefaultInstance(), mode == Mode.PULL);
  }

  /** Push mode: `answers` writes the accept or reject. */
  BridgeCall(Mode mode, CallStarted started, Consumer<CallCommand> writer, Consumer<HandleCallResponse> answers,
      Runnable closer, MediaOptions defaultMedia) {
    this(mode, started, writer, answers, closer, defaultMedia, mode == Mode.PULL);
  }

  /** Pull mode; listenerSettled false: events are kept until setListener/settleListener (a handler runs first). */
  BridgeCall(Mode mode, CallStarted started, Consumer<CallCommand> writer, Runnable closer, MediaOptions defaultMedia,
      boolean listenerSettled) {
    this(mode, started, writer, null, closer, defaultMedia, listenerSettled);
  }

  private BridgeCall(Mode mode, CallStarted started, Consumer<CallCommand> writer, Consumer<HandleCallResponse> answers,
      Runnable closer, MediaOptions defaultMedia, boolean listenerSettled) {
    this.mode = mode;
    this.started = started;
    this.writer = writer;
    this.answers = answers;
    this.closer = closer;
    this.defaultMedia = defaultMedia;
    this.sampleRateHz = started.getBackendSampleRateHz();
    this.listenerSettled = listenerSettled;
    // One thread at a time, in order; it exits when idle, so nothing needs shutting down.
    this.events = new ThreadPoolExecutor(0, 1, 1, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), r -> {
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

  /**
   * The rate audio is exchanged at with this backend. Pull: from CallStarted. Push: the offered
   * rate until the call is accepted, then the rate the accept's result confirmed (what the accept
   * asked for, or the offered rate).
   */
  public int sampleRateHz() { return sampleRateHz; }

  public Instant startTime() {
    return Instant.ofEpochSecond(started.getStartTime().getSeconds(), started.getStartTime().getNanos());
  }
  public boolean isEnded() { return ended.isDone(); }
  /** Completes with CallEnded (or a synthetic one if the stream failed without it). */
  public CompletableFuture<CallEnded> ended() { return ended; }

  /**
   * Sets where events go. Pull: pass it to claim. Push: return it from the {@link CallHandler};
   * events that arrive while the handler runs are kept and delivered once it returns.
   */
  public BridgeCall setListener(CallListener listener) {
    List<CallEvent> flush;
    synchronized (early) {
      this.listener = listener;
      listenerSettled = true;
      flush = new ArrayList<>(early);
      early.clear();
    }
    for (CallEvent e : flush) dispatch(e);
    return this;
  }

  /** Push: the handler returned (with or without a listener): deliver what was kept. */
  void settleListener() {
    List<CallEvent> flush;
    synchronized (early) {
      if (listenerSettled) return;
      listenerSettled = true;
      flush = new ArrayList<>(early);
      early.clear();
    }
    for (CallEvent e : flush) dispatch(e);
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
   * Completes when the caller has heard everything queued before the mark: {@code
   * MARK_RESOLUTION_PLAYED}, or {@code MARK_RESOLUTION_CLEARED} (a clear removed it), or {@code
   * MARK_RESOLUTION_CALL_ENDED}. Exceptionally with {@link CommandException} only if the bridge
   * refused the mark. Safe to wait on from a listener.
   */
  public CompletableFuture<MarkResolution> mark(String name) {
    CompletableFuture<MarkResolution> resolved = new CompletableFuture<>();
    synchronized (marks) {
      marks.computeIfAbsent(name, k -> new ArrayDeque<>()).add(resolved);
    }
    command(CallCommand.newBuilder().setMark(Mark.newBuilder().setName(name))).thenAccept(r -> {
      if (r.getCode() == ResultCode.RESULT_CODE_OK) return;
      synchronized (marks) {
        ArrayDeque<CompletableFuture<MarkResolution>> q = marks.get(name);
        if (q != null) q.remove(resolved);
      }
      if (r.getCode() == ResultCode.RESULT_CODE_CALL_ENDED) {
        resolved.complete(MarkResolution.MARK_RESOLUTION_CALL_ENDED);
      } else {
        resolved.completeExceptionally(new CommandException(r));
      }
    });
    return resolved;
  }

  /**
   * Barge-in: discards queued audio (only this response's if not empty). Completes with the
   * ClearResult (played/discarded per response); an empty one if the call had ended; exceptionally
   * with {@link CommandException} if the bridge refused the clear.
   */
  public CompletableFuture<ClearResult> clear(String responseId) {
    String id = "clear-" + nextId.getAndIncrement();
    CompletableFuture<ClearResult> cleared = new CompletableFuture<>();
    if (isEnded()) {
      cleared.complete(ClearResult.newBuilder().setCommandId(id).build());
      return cleared;
    }
    clears.put(id, cleared);
    CompletableFuture<CommandResult> refused = new CompletableFuture<>();
    results.put(id, refused);
    refused.thenAccept(r -> {
      clears.remove(id);
      if (r.getCode() == ResultCode.RESULT_CODE_CALL_ENDED) cleared.complete(ClearResult.newBuilder().setCommandId(id).build());
      else cleared.completeExceptionally(new CommandException(r));
    });
    if (!write(CallCommand.newBuilder().setCommandId(id)
        .setClear(ClearAudio.newBuilder().setResponseId(responseId == null ? "" : responseId)).build())) {
      results.remove(id);
      refused.complete(callEnded(id, CommandKind.COMMAND_KIND_CLEAR));
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

  /**
   * Push mode: accept (done for you when the handler returns unless it answered itself, or with the
   * server's media options by the first other command the handler sends). Its result carries the
   * confirmed rate, which {@link #sampleRateHz()} then reports.
   */
  public CompletableFuture<CommandResult> accept(MediaOptions media) {
    synchronized (this) {
      if (answered) {
        CompletableFuture<CommandResult> f = new CompletableFuture<>();
        f.complete(CommandResult.newBuilder().setCode(ResultCode.RESULT_CODE_FAILED_PRECONDITION)
            .setMessage("the call was already answered").setCommand(CommandKind.COMMAND_KIND_ACCEPT).build());
        return f;
      }
      answered = true;
    }
    return writeAccept(media);
  }

  /** AcceptCall is not a CallCommand: it has its own command id. */
  private CompletableFuture<CommandResult> writeAccept(MediaOptions media) {
    String id = "accept-" + nextId.getAndIncrement();
    CompletableFuture<CommandResult> future = new CompletableFuture<>();
    if (isEnded()) {
      future.complete(callEnded(id, CommandKind.COMMAND_KIND_ACCEPT));
      return future;
    }
    results.put(id, future);
    if (!writeAnswer(HandleCallResponse.newBuilder()
        .setAccept(AcceptCall.newBuilder().setMedia(media).setCommandId(id)).build())) {
      results.remove(id);
      future.complete(callEnded(id, CommandKind.COMMAND_KIND_ACCEPT));
    }
    return future;
  }

  /** Push mode: refuse the call (BUSY: try another backend; DECLINED: end it). */
  public void reject(RejectReason reason, String detail) {
    synchronized (this) {
      if (answered) return;
      answered = true;
    }
    writeAnswer(HandleCallResponse.newBuilder()
        .setReject(RejectCall.newBuilder().setReason(reason).setDetail(detail)).build());
    close();
  }

  /** Sends any command; a command id is assigned when missing, and the future gets its result. */
  public CompletableFuture<CommandResult> send(CallCommand command) {
    return command(command.toBuilder());
  }

  private CompletableFuture<CommandResult> command(CallCommand.Builder builder) {
    String name = builder.getCommandCase().name().toLowerCase();
    CommandKind kind = kindOf(builder.getCommandCase());
    if (builder.getCommandId().isEmpty()) builder.setCommandId(name + "-" + nextId.getAndIncrement());
    String id = builder.getCommandId();
    CompletableFuture<CommandResult> future = new CompletableFuture<>();
    if (isEnded()) {
      future.complete(callEnded(id, kind));
      return future;
    }
    results.put(id, future);
    if (!write(builder.build())) {
      results.remove(id);
      future.complete(callEnded(id, kind));
    }
    return future;
  }

  /** The CommandKind a CommandResult names for a CallCommand of this case. */
  static CommandKind kindOf(CallCommand.CommandCase c) {
    return switch (c) {
      case PLAY -> CommandKind.COMMAND_KIND_PLAY;
      case MARK -> CommandKind.COMMAND_KIND_MARK;
      case CLEAR -> CommandKind.COMMAND_KIND_CLEAR;
      case SEND_DTMF -> CommandKind.COMMAND_KIND_SEND_DTMF;
      case SEND_CONTROL -> CommandKind.COMMAND_KIND_SEND_CONTROL;
      case HANGUP -> CommandKind.COMMAND_KIND_HANGUP;
      case COMMAND_NOT_SET -> CommandKind.COMMAND_KIND_UNSPECIFIED;
    };
  }

  private static CommandResult callEnded(String id, CommandKind command) {
    return CommandResult.newBuilder().setCommandId(id).setCode(ResultCode.RESULT_CODE_CALL_ENDED)
        .setMessage("the call ended before the command completed").setCommand(command).build();
  }

  private boolean write(CallCommand command) {
    boolean implicitAccept = false;
    synchronized (this) {
      if (closed) return false;
      // Push mode: a command before the answer accepts the call with the server's media options,
      // so that waiting on it from the handler cannot deadlock.
      if (mode == Mode.PUSH && !answered) {
        answered = true;
        implicitAccept = true;
      }
    }
    if (implicitAccept) writeAccept(defaultMedia);
    synchronized (this) {
      if (closed) return false;
      if (mode == Mode.PUSH && !acceptWritten) {
        held.add(command);
        return true;
      }
      return writeNow(command);
    }
  }

  /** Push: the accept (then the commands held until it) or the reject. */
  private boolean writeAnswer(HandleCallResponse answer) {
    synchronized (this) {
      if (closed) return false;
      boolean ok;
      try {
        answers.accept(answer);
        ok = true;
      } catch (RuntimeException e) {
        ok = false;
      }
      if (answer.hasAccept()) {
        acceptWritten = true;
        for (CallCommand c : held) writeNow(c);
        held.clear();
      }
      return ok;
    }
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
        CommandResult r = event.getResult();
        if (r.getBackendSampleRateHz() != 0 && r.getCode() == ResultCode.RESULT_CODE_OK) {
          sampleRateHz = r.getBackendSampleRateHz();
        }
        CompletableFuture<CommandResult> f = results.remove(r.getCommandId());
        if (f != null) completeLater(f, r);
      }
      case CLEARED -> {
        String id = event.getCleared().getCommandId();
        results.remove(id);
        CompletableFuture<ClearResult> f = clears.remove(id);
        if (f != null) completeLater(f, event.getCleared());
      }
      case MARK -> {
        CompletableFuture<MarkResolution> f = null;
        synchronized (marks) {
          ArrayDeque<CompletableFuture<MarkResolution>> q = marks.get(event.getMark().getName());
          if (q != null) {
            f = q.poll();
            if (q.isEmpty()) marks.remove(event.getMark().getName());
          }
        }
        if (f != null) completeLater(f, event.getMark().getResolution());
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
    results.forEach((id, f) -> completeLater(f, callEnded(id, CommandKind.COMMAND_KIND_UNSPECIFIED)));
    results.clear();
    clears.forEach((id, f) -> completeLater(f, ClearResult.newBuilder().setCommandId(id).build()));
    clears.clear();
    Map<String, ArrayDeque<CompletableFuture<MarkResolution>>> left;
    synchronized (marks) {
      left = new HashMap<>(marks);
      marks.clear();
    }
    close();
    left.forEach((name, q) -> q.forEach(f -> completeLater(f, MarkResolution.MARK_RESOLUTION_CALL_ENDED)));
    completeLater(ended, callEnded);
    deliver(CallEvent.newBuilder().setEnded(callEnded).build());
  }

  private void deliver(CallEvent event) {
    synchronized (early) {
      if (!listenerSettled) {
        early.add(event);
        return;
      }
    }
    dispatch(event);
  }

  private void dispatch(CallEvent event) {
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
    } catch (RejectedExecutionException e) {
      // after the end
    }
  }

  // -------------------------------------------------------------- completions

  /**
   * Futures complete on these threads, never on a call's listener thread or the transport's:
   * whatever a dependent stage or a listener blocks on can still complete.
   */
  private static final ExecutorService COMPLETIONS = Executors.newCachedThreadPool(r -> {
    Thread t = new Thread(r, "audiosocket-bridge-completion");
    t.setDaemon(true);
    return t;
  });

  private static <T> void completeLater(CompletableFuture<T> future, T value) {
    COMPLETIONS.execute(() -> future.complete(value));
  }
}
