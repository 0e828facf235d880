'use strict';
// BridgeWorker: pull mode across bridge replicas. Keeps `claimsPerAddress`
// ClaimCall streams open on every address of the target and hands each call
// that arrives to onCall(call).
const dns = require('node:dns');
const net = require('node:net');
const grpc = require('@grpc/grpc-js');
const { load } = require('./proto');
const { BridgeCall } = require('./call');
const { firstEvent, attach, bearer } = require('./stream');

// Retrying cannot help with these: the caller must fix something.
const PERMANENT = new Set([
  grpc.status.UNAUTHENTICATED, grpc.status.PERMISSION_DENIED, grpc.status.UNIMPLEMENTED,
  grpc.status.FAILED_PRECONDITION, grpc.status.INVALID_ARGUMENT,
]);

function isPermanent(err) {
  return !!err && typeof err.code === 'number' && PERMANENT.has(err.code);
}

// The default resolver: 'host:port' or a comma-separated list of them; each
// host to all its addresses (A and AAAA). Resolves with [{ host, address, port }].
async function resolveAll(target) {
  const out = [];
  const seen = new Set();
  for (let part of String(target).split(',')) {
    part = part.trim().replace(/^dns:\/\/\//, '');
    if (!part) continue;
    const colon = part.lastIndexOf(':');
    if (colon <= 0) throw Object.assign(new Error(`target needs host:port: ${part}`), { code: grpc.status.INVALID_ARGUMENT });
    const host = part.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
    const port = Number(part.slice(colon + 1));
    if (!Number.isInteger(port) || port <= 0) throw Object.assign(new Error(`bad port in ${part}`), { code: grpc.status.INVALID_ARGUMENT });
    const found = net.isIP(host) ? [{ address: host }] : await dns.promises.lookup(host, { all: true });
    for (const { address } of found) {
      const key = `${net.isIPv6(address) ? `[${address}]` : address}:${port}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push({ host, address, port, key });
      }
    }
  }
  return out;
}

class BridgeWorker {
  // target: 'host:port' (a DNS name stands for all its addresses, e.g. a
  // Kubernetes headless Service) or 'host1:port,host2:port'.
  // options: onCall(call) (required; may be async; a throw hangs the call up),
  // claimsPerAddress (4), reresolveMs (30000), credentials
  // (grpc.credentials.createSsl(...) for TLS; plaintext by default), token
  // (sent as `authorization: Bearer TOKEN`), listener and media (what each
  // claim asks for), resolver(target) (replaces DNS), backoffMinMs (200),
  // backoffMaxMs (10000), log(level, message) (console.error for errors),
  // channelOptions (grpc-js channel options for the channel to every address,
  // e.g. 'grpc.default_compression_algorithm': 2 to gzip what the worker
  // sends, 'grpc.keepalive_time_ms'; they win over the TLS name options the
  // worker sets for a resolved name).
  constructor(target, options = {}) {
    if (typeof options.onCall !== 'function') throw new TypeError('BridgeWorker needs onCall(call)');
    if (options.channelOptions != null && (typeof options.channelOptions !== 'object' || Array.isArray(options.channelOptions))) {
      throw new TypeError('BridgeWorker channelOptions must be an object of grpc-js channel options');
    }
    this.target = target;
    this.onCall = options.onCall;
    this.claimsPerAddress = options.claimsPerAddress || 4;
    this.reresolveMs = options.reresolveMs || 30000;
    this.credentials = options.credentials || grpc.credentials.createInsecure();
    this.token = options.token;
    this.channelOptions = { ...options.channelOptions };
    this.claim = { listener: options.listener || '', media: { sampleRateHz: (options.media || {}).sampleRateHz || 0, detectInbandDtmf: !!(options.media || {}).detectInbandDtmf } };
    this.resolver = options.resolver || resolveAll;
    this.backoffMinMs = options.backoffMinMs || 200;
    this.backoffMaxMs = options.backoffMaxMs || 10000;
    this.log = options.log || ((level, message) => { if (level === 'error') console.error(`audiosocket-bridge: ${message}`); });
    this.endpoints = new Map(); // key -> endpoint
    this.stopped = false;
    this.done = new Promise((resolve, reject) => {
      this._resolveDone = resolve;
      this._rejectDone = reject;
    });
    // Observed here so a permanent error is never an unhandled rejection;
    // it is logged, and `done` rejects for whoever awaits it.
    this.done.catch(() => {});
  }

  // Starts claiming; returns this. `done` resolves on close() and rejects
  // with the permanent error (err.code: the gRPC status) that stopped it.
  start() {
    this._refresh();
    return this;
  }

  // The addresses claims are kept on now ('ip:port').
  addresses() {
    return [...this.endpoints.keys()];
  }

  // Stops claiming; calls in progress go on until they end.
  close() {
    this._stop(null);
  }

  _stop(err) {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this._timer);
    for (const ep of this.endpoints.values()) this._retire(ep);
    this.endpoints.clear();
    if (err) {
      this.log('error', `worker stopped: ${err.message}`);
      this._rejectDone(err);
    } else {
      this._resolveDone();
    }
  }

  async _refresh() {
    if (this.stopped) return;
    try {
      const now = await this.resolver(this.target);
      if (this.stopped) return;
      const want = new Map(now.map((a) => [a.key || `${a.address}:${a.port}`, a]));
      for (const [key, ep] of this.endpoints) {
        if (!want.has(key)) {
          this.endpoints.delete(key);
          this._retire(ep);
        }
      }
      for (const [key, a] of want) {
        if (this.endpoints.has(key)) continue;
        const ep = this._endpoint(key, a);
        this.endpoints.set(key, ep);
        for (let i = 0; i < this.claimsPerAddress; i++) this._slot(ep, 0);
      }
    } catch (err) {
      if (isPermanent(err)) {
        this._stop(err);
        return;
      }
      this.log('warn', `resolving ${this.target} failed (keeping the addresses known): ${err.message}`);
    }
    if (!this.stopped) {
      this._timer = setTimeout(() => this._refresh(), this.reresolveMs);
    }
  }

  _endpoint(key, { host, address }) {
    const options = {};
    if (host && host !== address) {
      // TLS verifies the certificate against the name, not the address.
      options['grpc.ssl_target_name_override'] = host;
      options['grpc.default_authority'] = host;
    }
    Object.assign(options, this.channelOptions);
    const client = new (load().BridgeService)(key, this.credentials, options);
    return { key, client, idle: new Set(), calls: 0, retired: false };
  }

  _retire(ep) {
    ep.retired = true;
    for (const stream of ep.idle) stream.cancel();
    ep.idle.clear();
    if (ep.calls === 0) ep.client.close();
  }

  _backoff(attempt) {
    const ceiling = Math.min(this.backoffMaxMs, this.backoffMinMs * 2 ** Math.min(attempt, 20));
    return ceiling / 2 + Math.random() * (ceiling / 2); // jitter over the upper half
  }

  _slot(ep, attempt) {
    if (this.stopped || ep.retired) return;
    const stream = ep.client.ClaimCall(bearer(this.token));
    stream.on('error', () => {}); // handled below or by the call
    ep.idle.add(stream);
    stream.write({ claim: this.claim });
    const unwrap = (m) => m.event;
    firstEvent(stream, unwrap).then((started) => {
      ep.idle.delete(stream);
      ep.calls++;
      const call = new BridgeCall({ mode: 'pull', stream, started, wrap: (command) => ({ command }) });
      attach(call, stream, unwrap);
      call.done.then(() => {
        ep.calls--;
        if (ep.retired && ep.calls === 0) ep.client.close();
        this._slot(ep, 0); // the slot is claimed again when the call ends
      });
      Promise.resolve()
        .then(() => this.onCall(call))
        .catch((err) => {
          this.log('warn', `onCall for call ${call.callId} threw: ${err && err.stack}`);
          if (!call.isEnded) call.hangup();
        });
    }, (err) => {
      ep.idle.delete(stream);
      if (this.stopped || ep.retired) return;
      if (isPermanent(err)) {
        err.message = `claiming from ${ep.key}: ${err.message}`;
        this._stop(err);
        return;
      }
      const delay = this._backoff(attempt);
      this.log('debug', `claiming from ${ep.key}: ${err.message}; retrying in ${Math.round(delay)} ms`);
      setTimeout(() => this._slot(ep, attempt + 1), delay);
    });
  }
}

module.exports = { BridgeWorker, resolveAll, isPermanent };
