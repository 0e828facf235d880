'use strict';
// Test support: the real bridge binary, a scripted Asterisk over TCP (using
// the SDK's wire helper), audiosocket-call, and backends in both modes.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const readline = require('node:readline');
const { BackendServer, BridgeClient, wire } = require('../src');

const ROOT = path.join(__dirname, '..', '..', '..');
const BRIDGE_BIN = process.env.BRIDGE_BIN || path.join(ROOT, 'bazel-bin', 'server', 'audiosocket-bridge');
const CALL_BIN = process.env.CALL_BIN || path.join(ROOT, 'bazel-bin', 'tools', 'audiosocket-call', 'audiosocket-call');
const WAIT = 15000;
const UUID = '40325ec2-5efd-4bd3-805f-53576e581d13';

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// The README's js block that contains `needle`.
function readmeBlock(needle) {
  const readme = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
  for (const m of readme.matchAll(/```js\n([\s\S]*?)```/g)) if (m[1].includes(needle)) return m[1];
  throw new Error(`README.md has no js block with ${needle}`);
}

// The bridge process; resolves once it logs "listening".
class Bridge {
  static async start(flags) {
    const b = new Bridge();
    b.lines = [];
    b.proc = spawn(BRIDGE_BIN, ['--grpc_listen=127.0.0.1:0', '--metrics_listen=', '--first_audio_wait=100ms', ...flags], { stdio: ['ignore', 'ignore', 'pipe'] });
    const rl = readline.createInterface({ input: b.proc.stderr });
    b.exited = new Promise((resolve) => b.proc.on('exit', resolve));
    const listening = new Promise((resolve, reject) => {
      rl.on('line', (line) => {
        b.lines.push(line);
        try {
          const entry = JSON.parse(line);
          if (entry.event === 'listening') resolve(entry);
        } catch (e) {
          // not JSON
        }
      });
      b.exited.then((code) => reject(new Error(`bridge exited (${code}): ${b.lines.join('\n')}`)));
    });
    const entry = await withTimeout(listening, WAIT, 'the bridge to listen');
    b.audiosocketPort = Number(String(entry.audiosocket).split(',')[0].split(':').pop());
    b.grpcPort = entry.grpc_port;
    return b;
  }

  // Resolves with the first log line with this event (and text), past or future.
  waitForLog(event, text = '') {
    const match = (line) => line.includes(`"event":"${event}"`) && line.includes(text);
    return withTimeout(new Promise((resolve) => {
      const found = this.lines.find(match);
      if (found) return resolve(found);
      const timer = setInterval(() => {
        const hit = this.lines.find(match);
        if (hit) {
          clearInterval(timer);
          resolve(hit);
        }
      }, 20);
      return undefined;
    }), WAIT, `bridge log ${event} ${text}`);
  }

  async stop() {
    if (this.proc.exitCode === null) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }
}

// Plays Asterisk's part of a call, message by message.
class FakeAsterisk {
  constructor(dialect = 'asterisk') {
    this.dialect = dialect;
    this.decoder = new wire.Decoder({ dialect });
    this.inbox = [];
    this.waiters = [];
    this.closed = false;
  }

  connect(port) {
    return new Promise((resolve, reject) => {
      this.socket = net.connect({ host: '127.0.0.1', port }, resolve);
      this.socket.setNoDelay(true);
      this.socket.on('error', (e) => {
        if (!this.connectedOnce) reject(e);
      });
      this.socket.on('data', (bytes) => {
        for (const m of this.decoder.push(bytes)) this._deliver(m);
      });
      this.socket.on('close', () => {
        this.closed = true;
        this._deliver(null);
      });
      this.socket.once('connect', () => {
        this.connectedOnce = true;
      });
    });
  }

  _deliver(message) {
    if (message) this.inbox.push(message);
    while (this.waiters.length && (this.inbox.length || this.closed)) {
      this.waiters.shift()();
    }
  }

  send(message) {
    this.socket.write(wire.encode(message, { dialect: this.dialect, peer: 'server' }));
  }

  sendUuid(uuid = UUID) { this.send(wire.messages.uuid(uuid)); }

  sendAudio(samples) { this.send(wire.messages.audio(samples)); }

  // The next message, or null when the socket closed (throws on timeout).
  async read(timeoutMs = WAIT) {
    if (!this.inbox.length && !this.closed) {
      await withTimeout(new Promise((resolve) => this.waiters.push(resolve)), timeoutMs, 'a message from the bridge');
    }
    return this.inbox.length ? this.inbox.shift() : null;
  }

  // Messages that arrive within ms (silence flows all the time).
  async readFor(ms) {
    const out = [];
    const deadline = Date.now() + ms;
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const m = await this.read(left);
        if (!m) break;
        out.push(m);
      } catch (e) {
        break;
      }
    }
    return out;
  }

  // Reads until the bridge closes the socket; returns what came.
  async readUntilClosed(timeoutMs = WAIT) {
    const out = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await this.read(Math.max(1, deadline - Date.now()));
      if (!m) return out;
      out.push(m);
    }
  }

  close() {
    if (this.socket) this.socket.destroy();
  }
}

function samplesOf(buffer) {
  const out = [];
  for (let i = 0; i + 1 < buffer.length; i += 2) out.push(buffer.readInt16LE(i));
  return out;
}

// 160 samples (20 ms at 8 kHz), unique per frame number, never zero.
function numberedFrame(n) {
  const frame = new Int16Array(160);
  for (let i = 0; i < 160; i++) frame[i] = ((n * 160 + i) % 20000) + 100;
  return frame;
}

// A bridge in `mode` with a backend of the SDK; connect() makes a call and
// resolves with the backend's BridgeCall (accepted / claimed). grpcOptions:
// the push server's grpc.Server options, or the pull client's channel options.
class Harness {
  static async start(mode, { listen = '127.0.0.1:0', flags = [], grpcOptions = {} } = {}) {
    const h = new Harness();
    h.mode = mode;
    h.calls = [];
    h.callWaiters = [];
    if (mode === 'push') {
      h.server = new BackendServer({ onCall: (call) => h._arrived(call), ...grpcOptions });
      const port = await h.server.listen('127.0.0.1:0');
      h.bridge = await Bridge.start([`--listen=${listen}`, `--backend=ipv4:127.0.0.1:${port}`, ...flags]);
    } else {
      h.bridge = await Bridge.start([`--listen=${listen}`, '--mode=pull', ...flags]);
      h.client = new BridgeClient(`127.0.0.1:${h.bridge.grpcPort}`, undefined, grpcOptions);
    }
    return h;
  }

  _arrived(call) {
    this.calls.push(call);
    while (this.callWaiters.length && this.calls.length) this.callWaiters.shift()(this.calls.shift());
  }

  nextPushCall() {
    if (this.calls.length) return Promise.resolve(this.calls.shift());
    return withTimeout(new Promise((resolve) => this.callWaiters.push(resolve)), WAIT, 'a pushed call');
  }

  // Connects a scripted Asterisk, sends the UUID and frame 0.
  async connect(asterisk, uuid = UUID) {
    const claim = this.mode === 'pull' ? this.client.claim() : null;
    await asterisk.connect(this.bridge.audiosocketPort);
    asterisk.sendUuid(uuid);
    asterisk.sendAudio(numberedFrame(0));
    const call = await withTimeout(claim || this.nextPushCall(), WAIT, 'the call');
    return call;
  }

  async stop() {
    if (this.client) this.client.close();
    if (this.server) await this.server.close();
    await this.bridge.stop();
  }
}

// Runs audiosocket-call with flags; resolves with { code, summary, stderr }.
function runCall(flags) {
  return new Promise((resolve, reject) => {
    const proc = spawn(CALL_BIN, flags, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => { stdout += d; });
    proc.stderr.on('data', (d) => { stderr += d; });
    proc.on('error', reject);
    proc.on('exit', (code) => {
      let summary = null;
      try {
        summary = JSON.parse(stdout.trim().split('\n').pop());
      } catch (e) {
        // left null
      }
      resolve({ code, summary, stderr, stdout });
    });
  });
}

// The next event of a kind from an iterator over a call's events.
async function nextOf(events, kind, timeoutMs = WAIT) {
  return withTimeout((async () => {
    for (;;) {
      const { value, done } = await events.next();
      if (done) throw new Error(`the call ended before a ${kind} event`);
      if (value.event === kind) return value[kind];
    }
  })(), timeoutMs, `a ${kind} event`);
}

module.exports = {
  ROOT, BRIDGE_BIN, CALL_BIN, WAIT, UUID, Bridge, FakeAsterisk, Harness, readmeBlock, runCall, numberedFrame, samplesOf, withTimeout, nextOf,
};
