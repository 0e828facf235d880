'use strict';
// audiosocket-bridge Node SDK: push mode (BackendServer serves CallHandler,
// the bridge dials it per call) and pull mode (BridgeClient claims calls).
const grpc = require('@grpc/grpc-js');
const { load } = require('./proto');
const { BridgeCall, CommandError } = require('./call');
const wire = require('./wire');
const wav = require('./wav');

// Waits for a stream's first event, which must be CallStarted.
function firstEvent(stream, unwrap) {
  return new Promise((resolve, reject) => {
    const onData = (message) => {
      cleanup();
      const event = unwrap(message);
      if (event && event.event === 'started') resolve(event.started);
      else reject(new Error(`expected CallStarted first, got ${event ? event.event : 'nothing'}`));
    };
    const onError = (err) => {
      cleanup();
      reject(err);
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('the stream ended before CallStarted'));
    };
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('error', onError);
      stream.off('end', onEnd);
    };
    stream.on('data', onData);
    stream.on('error', onError);
    stream.on('end', onEnd);
  });
}

// Feeds a stream's remaining events to the call.
function attach(call, stream, unwrap) {
  stream.on('data', (message) => {
    const event = unwrap(message);
    if (event && event.event) call._receive(event);
  });
  stream.on('error', (err) => call._lost(`stream failed: ${err.message}`));
  stream.on('end', () => call._lost('the stream ended without CallEnded'));
  stream.on('close', () => call._lost('the stream closed without CallEnded'));
}

// Push mode: a gRPC server implementing CallHandler. For each call the
// bridge dials in, onCall(call) runs (it may be async); the call is
// accepted when it returns unless it called call.accept(...) or
// call.reject(...) itself. If onCall throws, the call is rejected (busy).
class BackendServer {
  constructor({ onCall, media = {} } = {}) {
    if (typeof onCall !== 'function') throw new TypeError('BackendServer needs onCall(call)');
    this.onCall = onCall;
    this.media = media;
    this.calls = new Set();
    this.server = new grpc.Server();
    const v1 = load();
    this.server.addService(v1.CallHandler.service, { handleCall: (stream) => this._handle(stream) });
  }

  // Listens on address ('127.0.0.1:0' picks a free port); resolves with the
  // port. Point the bridge at it: --backend=ipv4:127.0.0.1:PORT.
  listen(address = '0.0.0.0:50052', credentials = grpc.ServerCredentials.createInsecure()) {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, credentials, (err, port) => {
        if (err) reject(err);
        else {
          this.port = port;
          resolve(port);
        }
      });
    });
  }

  async _handle(stream) {
    const unwrap = (m) => m.event;
    let started;
    try {
      started = await firstEvent(stream, unwrap);
    } catch (e) {
      stream.end();
      return;
    }
    const call = new BridgeCall({ mode: 'push', stream, started, wrap: (command) => ({ command }) });
    attach(call, stream, unwrap);
    this.calls.add(call);
    call.done.then(() => this.calls.delete(call));
    try {
      await this.onCall(call);
      if (!call._answered && !call.isEnded) await call.accept(this.media);
    } catch (e) {
      if (!call._answered && !call.isEnded) call.reject({ reason: 'REJECT_REASON_BUSY', detail: String(e && e.message) });
      else throw e;
    }
  }

  // Stops accepting new calls; ends the streams of calls in progress.
  close() {
    return new Promise((resolve) => {
      this.server.tryShutdown(() => resolve());
      setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 2000).unref();
    });
  }
}

// Pull mode: a client of the bridge's Bridge service.
class BridgeClient {
  // target: the bridge's gRPC address, e.g. '127.0.0.1:50051'.
  constructor(target, credentials = grpc.credentials.createInsecure(), options = {}) {
    const v1 = load();
    this.client = new v1.Bridge(target, credentials, options);
    this.streams = new Set();
  }

  // Claims a call: { callId } for a specific call, { listener } for the next
  // one on that listener, nothing for any call; media: { sampleRateHz,
  // detectInbandDtmf }. Resolves with the BridgeCall when the call arrives
  // (CallStarted); rejects if the stream fails first (e.g. the bridge is in
  // push mode) or when cancel() is called on the returned promise.
  claim({ callId, listener, media = {} } = {}) {
    const stream = this.client.ClaimCall();
    this.streams.add(stream);
    const claim = { media: { sampleRateHz: media.sampleRateHz || 0, detectInbandDtmf: !!media.detectInbandDtmf } };
    if (callId) claim.callId = callId;
    else claim.listener = listener || '';
    stream.write({ command: { claim } });
    const unwrap = (m) => m.event;
    const promise = firstEvent(stream, unwrap).then(
      (started) => {
        const call = new BridgeCall({ mode: 'pull', stream, started, wrap: (command) => ({ command }) });
        attach(call, stream, unwrap);
        call.done.then(() => this.streams.delete(stream));
        return call;
      },
      (err) => {
        this.streams.delete(stream);
        stream.cancel();
        throw err;
      },
    );
    promise.cancel = () => stream.cancel();
    return promise;
  }

  // Serves calls as `workers` concurrent claims, calling onCall(call) for
  // each (it may be async; the slot is claimed again when the call ends).
  // Returns { stop() }.
  serve(onCall, { workers = 1, listener = '', media = {} } = {}) {
    let stopped = false;
    const pending = new Set();
    const worker = async () => {
      while (!stopped) {
        const claim = this.claim({ listener, media });
        pending.add(claim);
        let call;
        try {
          call = await claim;
        } catch (e) {
          pending.delete(claim);
          if (stopped) return;
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
        pending.delete(claim);
        try {
          await onCall(call);
        } catch (e) {
          if (!call.isEnded) call.hangup();
        }
        await call.done;
      }
    };
    for (let i = 0; i < workers; i++) worker();
    return {
      stop() {
        stopped = true;
        for (const claim of pending) claim.cancel();
      },
    };
  }

  listCalls({ listener = '' } = {}) {
    return new Promise((resolve, reject) => {
      this.client.ListCalls({ listener }, (err, response) => (err ? reject(err) : resolve(response.calls)));
    });
  }

  // Ends a call (reason HANGUP_REQUESTED).
  hangupCall(callId) {
    return new Promise((resolve, reject) => {
      this.client.HangupCall({ callId }, (err) => (err ? reject(err) : resolve()));
    });
  }

  // A readable stream of { started: CallInfo } / { ended: CallEndedNotice }.
  watchCalls({ listener = '' } = {}) {
    return this.client.WatchCalls({ listener });
  }

  close() {
    for (const stream of this.streams) stream.cancel();
    this.client.close();
  }
}

module.exports = { BackendServer, BridgeClient, BridgeCall, CommandError, wire, wav, grpc, loadProto: load };
