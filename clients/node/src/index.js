'use strict';
// audiosocket-bridge Node SDK: push mode (BackendServer serves CallHandlerService,
// the bridge dials it per call) and pull mode (BridgeClient claims calls).
const grpc = require('@grpc/grpc-js');
const { load } = require('./proto');
const { BridgeCall, CommandError } = require('./call');
const wire = require('./wire');
const wav = require('./wav');
const { firstEvent, attach, bearer } = require('./stream');

// Push: AcceptCall and RejectCall are HandleCallResponse members of their
// own (the accept carries its own command id); every other command is a
// CallCommand.
function wrapPush(command) {
  if (command.accept) return { accept: { ...command.accept, commandId: command.commandId || '' } };
  if (command.reject) return { reject: command.reject };
  return { command };
}

// Push mode: a gRPC server implementing CallHandlerService. For each call the
// bridge dials in, onCall(call) runs (it may be async); the call is
// accepted when it returns unless it called call.accept(...) or
// call.reject(...) itself. If onCall throws, the call is rejected (busy).
// Other options go to the grpc.Server (e.g. 'grpc.keepalive_time_ms',
// interceptors); grpc-js's server sends its messages uncompressed whatever
// they say.
class BackendServer {
  constructor({ onCall, media = {}, ...serverOptions } = {}) {
    if (typeof onCall !== 'function') throw new TypeError('BackendServer needs onCall(call)');
    this.onCall = onCall;
    this.media = media;
    this.calls = new Set();
    this.server = new grpc.Server(serverOptions);
    const v1 = load();
    this.server.addService(v1.CallHandlerService.service, { handleCall: (stream) => this._handle(stream) });
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
    const call = new BridgeCall({ mode: 'push', stream, started, wrap: wrapPush });
    call.metadata = stream.metadata; // the request headers (e.g. authorization)
    attach(call, stream, unwrap);
    this.calls.add(call);
    call.done.then(() => this.calls.delete(call));
    try {
      await this.onCall(call);
      if (!call._answered && !call.isEnded) await call.accept(this.media);
    } catch (e) {
      if (!call._answered && !call.isEnded) call.reject({ reason: 'REJECT_REASON_BUSY', detail: String(e && e.message) });
      else process.emitWarning(`audiosocket-bridge: onCall for call ${call.callId} threw: ${e && e.stack}`);
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

// Pull mode: a client of one bridge address (claim a call, list calls, hang
// one up). To serve calls from every replica behind a name, use BridgeWorker.
class BridgeClient {
  // target: the bridge's gRPC address, e.g. '127.0.0.1:50051'. credentials:
  // grpc.credentials.createSsl(...) for TLS; options.token: sent as
  // `authorization: Bearer TOKEN`; other options go to the gRPC channel.
  constructor(target, credentials = grpc.credentials.createInsecure(), options = {}) {
    const v1 = load();
    const { token, ...channelOptions } = options;
    this.token = token;
    this.client = new v1.BridgeService(target, credentials, channelOptions);
    this.streams = new Set();
  }

  // Claims a call: { callId } for a specific call, { listener } for the next
  // one on that listener, nothing for any call; media: { sampleRateHz,
  // detectInbandDtmf }. Resolves with the BridgeCall when the call arrives
  // (CallStarted); rejects if the stream fails first (e.g. the bridge is in
  // push mode) or when cancel() is called on the returned promise.
  claim({ callId, listener, media = {} } = {}) {
    const stream = this.client.ClaimCall(bearer(this.token));
    stream.on('error', () => {}); // reported through the promise or the call
    this.streams.add(stream);
    const claim = { media: { sampleRateHz: media.sampleRateHz || 0, detectInbandDtmf: !!media.detectInbandDtmf } };
    if (callId) claim.callId = callId;
    else claim.listener = listener || '';
    stream.write({ claim });
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

  listCalls({ listener = '' } = {}) {
    return new Promise((resolve, reject) => {
      this.client.ListCalls({ listener }, bearer(this.token), (err, response) => (err ? reject(err) : resolve(response.calls)));
    });
  }

  // Ends a call (reason HANGUP_REQUESTED).
  hangupCall(callId) {
    return new Promise((resolve, reject) => {
      this.client.HangupCall({ callId }, bearer(this.token), (err) => (err ? reject(err) : resolve()));
    });
  }

  // A readable stream of { started: CallInfo } / { ended: CallEndedNotice }.
  watchCalls({ listener = '' } = {}) {
    return this.client.WatchCalls({ listener }, bearer(this.token));
  }

  close() {
    for (const stream of this.streams) stream.cancel();
    this.client.close();
  }
}

const { BridgeWorker, resolveAll, isPermanent } = require('./worker');

module.exports = {
  BackendServer, BridgeClient, BridgeWorker, BridgeCall, CommandError, resolveAll, isPermanent, wire, wav, grpc, loadProto: load,
};
