package io.audiosocketbridge.client;

import io.audiosocketbridge.v1.AudioChunk;
import io.audiosocketbridge.v1.CallEnded;
import io.audiosocketbridge.v1.CallEvent;
import io.audiosocketbridge.v1.ClearResult;
import io.audiosocketbridge.v1.CommandResult;
import io.audiosocketbridge.v1.ControlEvent;
import io.audiosocketbridge.v1.DtmfEvent;
import io.audiosocketbridge.v1.MarkResolved;
import io.audiosocketbridge.v1.PlayoutEvent;

/**
 * Receives one call's events, in stream order, on the call's own event thread (one at a time; a
 * slow listener delays later events of this call only). Override what you need. {@link #onEvent}
 * sees every event first and, by default, dispatches to the typed methods.
 */
public interface CallListener {
  default void onEvent(BridgeCall call, CallEvent event) {
    switch (event.getEventCase()) {
      case AUDIO -> onAudio(call, event.getAudio());
      case DTMF -> onDtmf(call, event.getDtmf());
      case CONTROL -> onControl(call, event.getControl());
      case RESULT -> onResult(call, event.getResult());
      case MARK -> onMark(call, event.getMark());
      case CLEARED -> onCleared(call, event.getCleared());
      case PLAYOUT -> onPlayout(call, event.getPlayout());
      case ENDED -> onEnded(call, event.getEnded());
      default -> {}
    }
  }

  /** Caller audio, LINEAR16 at {@link BridgeCall#sampleRateHz()}. */
  default void onAudio(BridgeCall call, AudioChunk audio) {}

  /** A DTMF digit from the caller (BEGIN/END in the extended dialect, END_ONLY in stock). */
  default void onDtmf(BridgeCall call, DtmfEvent dtmf) {}

  /** A control signal from Asterisk (extended dialect). */
  default void onControl(BridgeCall call, ControlEvent control) {}

  /** Every command's result (the command's future completes with it too). */
  default void onResult(BridgeCall call, CommandResult result) {}

  default void onMark(BridgeCall call, MarkResolved mark) {}

  /** A clear's accounting; it comes before the marks it cleared. */
  default void onCleared(BridgeCall call, ClearResult cleared) {}

  default void onPlayout(BridgeCall call, PlayoutEvent playout) {}

  /** The last event of every call, exactly once. */
  default void onEnded(BridgeCall call, CallEnded ended) {}
}
