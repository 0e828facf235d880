'use strict';
// BridgeCall: one call's side of the bridge's gRPC stream, in either mode.
const { EventEmitter } = require('node:events');

// Event names emitted (and `event` values of the objects the async iterator
// yields), by CallEvent member.
const EVENT_NAMES = {
  audio: 'audio',
  dtmf: 'dtmf',
  control: 'control',
  result: 'result',
  mark: 'mark',
  cleared: 'cleared',
  playout: 'playout',
  ended: 'ended',
};

// The CommandKind a CommandResult names for a command field: 'play' ->
// 'COMMAND_KIND_PLAY', 'sendDtmf' or 'send_dtmf' -> 'COMMAND_KIND_SEND_DTMF'.
function commandKind(name) {
  if (!name) return 'COMMAND_KIND_UNSPECIFIED';
  return `COMMAND_KIND_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

// The command's name as in CallCommand ('play', 'send_dtmf', ...).
function commandName(kind) {
  if (!kind || kind === 'COMMAND_KIND_UNSPECIFIED' || typeof kind !== 'string') return 'command';
  return kind.replace(/^COMMAND_KIND_/, '').toLowerCase();
}

class CommandError extends Error {
  constructor(result) {
    super(`${commandName(result.command)} failed: ${result.code}${result.message ? `: ${result.message}` : ''}`);
    this.result = result;
    this.code = result.code;
  }
}

function withOk(result) {
  return { ...result, ok: result.code === 'RESULT_CODE_OK' };
}

function callEndedResult(commandId, command) {
  return withOk({ commandId, code: 'RESULT_CODE_CALL_ENDED', message: 'the call ended before the command completed', command: commandKind(command) });
}

function toBuffer(pcm) {
  if (Buffer.isBuffer(pcm)) return pcm;
  if (ArrayBuffer.isView(pcm)) return Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  if (pcm instanceof ArrayBuffer) return Buffer.from(pcm);
  throw new TypeError('pcm must be a Buffer, a typed array (e.g. Int16Array) or an ArrayBuffer');
}

// Events: 'audio' (AudioChunk), 'dtmf' (DtmfEvent), 'control' (ControlEvent),
// 'result' (every CommandResult), 'mark' (MarkResolved),
// 'cleared' (ClearResult), 'playout' (PlayoutEvent), 'ended' (CallEnded,
// always last and exactly once). Also an async iterator over the same
// events as CallEvent objects ({ event: 'audio', audio: {...} }), ending
// after 'ended'.
class BridgeCall extends EventEmitter {
  // stream: a gRPC duplex stream; wrap(command) builds the message to write
  // (push: an { accept } or { reject } answer becomes the HandleCallResponse
  // member of that name; everything else is a CallCommand); unwrap(message)
  // returns the CallEvent in a message read.
  constructor({ mode, stream, started, wrap }) {
    super();
    this.mode = mode; // 'push' | 'pull'
    this.started = started;
    this.callId = started.callId;
    this.listener = started.listener;
    this.dialect = started.dialect;
    this.peerAddress = started.peerAddress;
    this.callSampleRateHz = started.callSampleRateHz;
    // Pull: from CallStarted. Push: the offered rate until the accept's
    // result confirms the rate (what the accept asked for, or the offer's).
    this.sampleRateHz = started.backendSampleRateHz;
    this.encoding = started.callEncoding;
    this.startTime = started.startTime
      ? new Date(Number(started.startTime.seconds) * 1000 + Math.floor(Number(started.startTime.nanos) / 1e6))
      : null;
    this.isEnded = false;
    this.endedEvent = null;
    this._stream = stream;
    this._wrap = wrap;
    this._nextId = 1;
    this._results = new Map(); // command id -> { resolve, reject, command, kind }
    this._marks = new Map(); // mark name -> [resolve]
    this._queue = []; // events waiting for dispatch (setImmediate), in order
    this._scheduled = false;
    this._iterators = new Set();
    this.done = new Promise((resolve) => {
      this._resolveDone = resolve;
    });
  }

  // --------------------------------------------------------------- commands

  // Queues LINEAR16 audio (Buffer or Int16Array) for the caller. Resolves
  // with the CommandResult (result.ok tells whether it was queued).
  play(pcm, { responseId = '', sampleRateHz = 0 } = {}) {
    return this._command('play', { play: { pcm: toBuffer(pcm), responseId, sampleRateHz } });
  }

  // Resolves with the resolution once the caller has heard everything queued
  // before the mark: 'MARK_RESOLUTION_PLAYED', or 'MARK_RESOLUTION_CLEARED'
  // (a clear removed it), or 'MARK_RESOLUTION_CALL_ENDED'. Rejects with
  // CommandError only if the bridge refused the mark.
  mark(name) {
    return new Promise((resolve, reject) => {
      const waiter = (resolved) => resolve(resolved.resolution);
      const waiters = this._marks.get(name) || [];
      waiters.push(waiter);
      this._marks.set(name, waiters);
      this._command('mark', { mark: { name } }).then((result) => {
        if (!result.ok) {
          const left = (this._marks.get(name) || []).filter((w) => w !== waiter);
          if (left.length) this._marks.set(name, left);
          else this._marks.delete(name);
          if (result.code === 'RESULT_CODE_CALL_ENDED') resolve('MARK_RESOLUTION_CALL_ENDED');
          else reject(new CommandError(result));
        }
      });
    });
  }

  // Barge-in: discards queued audio (only responseId's when given).
  // Resolves with the ClearResult: { commandId, responses: [{ responseId,
  // playedMs, discardedMs }], discardedMs }. It arrives before the 'mark'
  // events of the marks it cleared. After the end of the call: an empty
  // ClearResult (nothing is left to clear). Rejects with CommandError only
  // if the bridge refused the clear.
  clear({ responseId = '' } = {}) {
    return this._command('clear', { clear: { responseId } }, 'cleared').then((r) => {
      if (r.code === 'RESULT_CODE_CALL_ENDED') return { commandId: r.commandId, responses: [], discardedMs: 0 };
      if (r.ok === false) throw new CommandError(r);
      return r;
    });
  }

  // DTMF toward the caller; resolves when the last tone has played.
  sendDtmf(digits, { toneMs = 0, gapMs = 0 } = {}) {
    return this._command('send_dtmf', { sendDtmf: { digits, toneMs, gapMs } });
  }

  // A control signal toward Asterisk (extended dialect): a ControlType name
  // ('CONTROL_TYPE_ANSWER') or a raw AST_CONTROL_* number.
  sendControl(type) {
    const control = typeof type === 'number' ? { type: 'CONTROL_TYPE_UNSPECIFIED', rawCode: type } : { type, rawCode: 0 };
    return this._command('send_control', { sendControl: control });
  }

  // Ends the call (after the queued audio when afterPlayout). Resolves with
  // the CommandResult; 'ended' follows.
  hangup({ afterPlayout = false } = {}) {
    return this._command('hangup', { hangup: { afterPlayout } });
  }

  // Push mode, before the call is accepted: done for you when the onCall
  // handler returns, unless it accepted or rejected itself.
  accept({ sampleRateHz = 0, detectInbandDtmf = false } = {}) {
    this._answered = true;
    return this._command('accept', { accept: { media: { sampleRateHz, detectInbandDtmf } } });
  }

  // Push mode: refuse the call. reason 'REJECT_REASON_BUSY' (try another
  // backend) or 'REJECT_REASON_DECLINED' (end the call).
  reject({ reason = 'REJECT_REASON_BUSY', detail = '' } = {}) {
    this._answered = true;
    this._write({ reject: { reason, detail } });
    this._finishStream();
  }

  // Sends any CallCommand (plain object, e.g. { mark: { name } }); resolves
  // with the result keyed by its command id (assigned when missing).
  send(command) {
    const kind = Object.keys(command).find((k) => k !== 'commandId');
    return this._command(kind, command);
  }

  _command(name, body, answeredBy = 'result') {
    const commandId = body.commandId || `${name}-${this._nextId++}`;
    if (this.isEnded) return Promise.resolve(callEndedResult(commandId, name));
    return new Promise((resolve, reject) => {
      this._results.set(commandId, { resolve, reject, command: name, answeredBy });
      if (!this._write({ ...body, commandId })) {
        this._results.delete(commandId);
        resolve(callEndedResult(commandId, name));
      }
    });
  }

  _write(command) {
    if (this._closed) return false;
    // Push mode: commands sent before the accept wait for it (the bridge refuses them earlier).
    if (this.mode === 'push' && !this._answered && !command.accept && !command.reject) {
      (this._held = this._held || []).push(command);
      return true;
    }
    if (command.accept) {
      const ok = this._writeNow(command);
      for (const held of this._held || []) this._writeNow(held);
      this._held = [];
      return ok;
    }
    return this._writeNow(command);
  }

  _writeNow(command) {
    try {
      this._stream.write(this._wrap(command));
      return true;
    } catch (e) {
      return false;
    }
  }

  _finishStream() {
    if (this._closed) return;
    this._closed = true;
    try {
      this._stream.end();
    } catch (e) {
      // already closed
    }
  }

  // ----------------------------------------------------------------- events

  // Called by the transport with each CallEvent, in order.
  _receive(event) {
    if (this.isEnded) return;
    const kind = event.event;
    const data = event[kind];
    if (kind === 'result') {
      // Push: the accept's result confirms the rate audio is exchanged at.
      if (data.backendSampleRateHz && data.code === 'RESULT_CODE_OK') this.sampleRateHz = data.backendSampleRateHz;
      const pending = this._results.get(data.commandId);
      if (pending) {
        this._results.delete(data.commandId);
        pending.resolve(withOk(data));
      }
    } else if (kind === 'cleared') {
      const pending = this._results.get(data.commandId);
      if (pending) {
        this._results.delete(data.commandId);
        pending.resolve(data);
      }
    }
    if (kind === 'ended') this._end(data, event);
    else this._enqueue(kind, data, event);
  }

  // The stream ended or failed without CallEnded.
  _lost(detail) {
    if (this.isEnded) return;
    const ended = { reason: 'CALL_END_REASON_UNSPECIFIED', detail, asteriskError: null, stats: null };
    this._end(ended, { event: 'ended', ended });
  }

  _end(data, event) {
    this.isEnded = true;
    this.endedEvent = data;
    for (const [id, pending] of this._results) pending.resolve(callEndedResult(id, pending.command));
    this._results.clear();
    this._enqueue('ended', data, event);
    this._finishStream();
  }

  _enqueue(kind, data, event) {
    this._queue.push([kind, data, event]);
    for (const it of this._iterators) it.push(event);
    if (!this._scheduled) {
      this._scheduled = true;
      setImmediate(() => this._dispatch());
    }
  }

  // Emits queued events a tick later, so listeners attached right after the
  // call is handed over miss nothing.
  _dispatch() {
    this._scheduled = false;
    const queue = this._queue;
    this._queue = [];
    for (const [kind, data] of queue) {
      if (kind === 'mark') {
        const waiters = this._marks.get(data.name);
        if (waiters && waiters.length) {
          waiters.shift()(data);
          if (!waiters.length) this._marks.delete(data.name);
        }
      }
      if (kind === 'ended') {
        for (const [name, waiters] of this._marks) {
          for (const w of waiters) w({ name, resolution: 'MARK_RESOLUTION_CALL_ENDED' });
        }
        this._marks.clear();
      }
      // A listener that throws must not stop the call's other events.
      try {
        this.emit(EVENT_NAMES[kind] || kind, data);
      } catch (e) {
        process.emitWarning(`audiosocket-bridge: a '${kind}' listener of call ${this.callId} threw: ${e && e.stack}`);
      }
      if (kind === 'ended') this._resolveDone(data);
    }
  }

  // for await (const event of call) { ... }: events from the moment the
  // iterator is created, as CallEvent objects; ends after 'ended'.
  [Symbol.asyncIterator]() {
    return this.events();
  }

  events() {
    const buffered = [];
    const waiting = [];
    let finished = false;
    const sink = {
      push: (event) => {
        if (finished) return;
        if (event.event === 'ended') finished = true;
        if (waiting.length) waiting.shift()({ value: event, done: false });
        else buffered.push(event);
        if (finished) {
          this._iterators.delete(sink);
        }
      },
    };
    if (this.isEnded && this.endedEvent) {
      buffered.push({ event: 'ended', ended: this.endedEvent });
      finished = true;
    } else {
      this._iterators.add(sink);
    }
    const self = this;
    return {
      next() {
        if (buffered.length) return Promise.resolve({ value: buffered.shift(), done: false });
        if (finished) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => waiting.push(resolve));
      },
      return() {
        finished = true;
        self._iterators.delete(sink);
        buffered.length = 0;
        for (const w of waiting.splice(0)) w({ value: undefined, done: true });
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }
}

module.exports = { BridgeCall, CommandError };
