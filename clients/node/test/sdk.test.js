'use strict';
// What a backend developer relies on beyond the wire: the push call's
// confirmed rate, the end of a call as a normal outcome, the push stream's
// headers, and BridgeWorker across replicas with its error handling.
const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { BackendServer, BridgeWorker, resolveAll, grpc } = require('../src');
const { Bridge, FakeAsterisk, numberedFrame, withTimeout, WAIT, UUID } = require('./support');

const open = [];
after(async () => {
  for (const c of open.reverse()) await c();
});

const uuid = (n) => `40325ec2-5efd-4bd3-805f-${String(n).padStart(12, '0')}`;

async function dial(port, id = UUID) {
  const a = new FakeAsterisk();
  open.push(async () => a.close());
  await a.connect(port);
  a.sendUuid(id);
  a.sendAudio(numberedFrame(0));
  return a;
}

async function bridge(flags) {
  const b = await Bridge.start(['--listen=127.0.0.1:0', ...flags]);
  open.push(() => b.stop());
  return b;
}

// A queue of values with a timed take().
function queue() {
  const items = [];
  const waiters = [];
  return {
    push(v) { if (waiters.length) waiters.shift()(v); else items.push(v); },
    take(ms = WAIT) {
      if (items.length) return Promise.resolve(items.shift());
      return withTimeout(new Promise((r) => waiters.push(r)), ms, 'a value');
    },
    get length() { return items.length; },
  };
}

function worker(target, options) {
  const w = new BridgeWorker(target, { log: () => {}, ...options }).start();
  open.push(async () => w.close());
  return w;
}

// onCall for the worker: records the call id and hangs up at once.
const recordAndHangUp = (q) => (call) => {
  q.push(call.callId);
  call.hangup();
};

async function waitUntil(cond) {
  const deadline = Date.now() + WAIT;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('BridgeCall', () => {
  it('push: sampleRateHz is the rate the accept confirmed', async () => {
    const seen = queue();
    const server = new BackendServer({
      media: { sampleRateHz: 16000 },
      onCall(call) {
        seen.push(`offered=${call.sampleRateHz}`);
        call.once('audio', (a) => seen.push(`audio=${a.sampleRateHz} call=${call.sampleRateHz}`));
      },
    });
    const port = await server.listen('127.0.0.1:0');
    open.push(() => server.close());
    const b = await bridge([`--backend=ipv4:127.0.0.1:${port}`]);
    await dial(b.audiosocketPort);
    assert.equal(await seen.take(), 'offered=8000');
    assert.equal(await seen.take(), 'audio=16000 call=16000');
  });

  it('push: the request headers are on the call (the bridge\'s token)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-token-'));
    fs.writeFileSync(path.join(dir, 'token'), 's3cret\n');
    const seen = queue();
    const server = new BackendServer({ onCall: (call) => seen.push(call.metadata.get('authorization')[0]) });
    const port = await server.listen('127.0.0.1:0');
    open.push(() => server.close());
    const b = await bridge([`--backend=ipv4:127.0.0.1:${port}`, `--auth_token_file=${path.join(dir, 'token')}`]);
    await dial(b.audiosocketPort);
    assert.equal(await seen.take(), 'Bearer s3cret');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the end of a call is a normal outcome for every command', async () => {
    const calls = queue();
    const b = await bridge(['--mode=pull']);
    worker(`127.0.0.1:${b.grpcPort}`, { onCall: (call) => calls.push(call), claimsPerAddress: 1 });
    const caller = await dial(b.audiosocketPort);
    const call = await calls.take();
    caller.send({ kind: 'hangup' });
    assert.equal((await call.done).reason, 'CALL_END_REASON_CALLER_HUNG_UP');
    assert.equal((await call.play(Buffer.alloc(2))).code, 'RESULT_CODE_CALL_ENDED');
    assert.equal(await call.mark('m'), 'MARK_RESOLUTION_CALL_ENDED');
    assert.deepEqual((await call.clear()).responses, []);
    assert.equal((await call.hangup()).code, 'RESULT_CODE_CALL_ENDED');
  });
});

describe('BridgeWorker', () => {
  it('answers calls arriving at any of three bridges, two at once on each', async () => {
    const bridges = [];
    for (let i = 0; i < 3; i++) bridges.push(await bridge(['--mode=pull']));
    const answered = queue();
    const w = worker(bridges.map((b) => `127.0.0.1:${b.grpcPort}`).join(','), { onCall: recordAndHangUp(answered), claimsPerAddress: 2 });
    await waitUntil(() => w.addresses().length === 3);
    const callers = [];
    for (let i = 0; i < 6; i++) callers.push(await dial(bridges[i % 3].audiosocketPort, uuid(i)));
    const got = new Set();
    for (let i = 0; i < 6; i++) got.add(await answered.take());
    assert.deepEqual([...got].sort(), [0, 1, 2, 3, 4, 5].map(uuid));
    for (const c of callers) {
      const rest = await c.readUntilClosed();
      assert.equal(rest[rest.length - 1].kind, 'hangup', 'hung up by the backend');
    }
    // The slots are claimed again.
    for (let i = 0; i < 3; i++) await dial(bridges[i].audiosocketPort, uuid(10 + i));
    for (let i = 0; i < 3; i++) assert.ok(await answered.take());
  });

  it('follows addresses added to and removed from the answer', async () => {
    const first = await bridge(['--mode=pull', '--claim_timeout=1s']);
    const added = await bridge(['--mode=pull']);
    const answer = [{ host: '127.0.0.1', address: '127.0.0.1', port: first.grpcPort }];
    const answered = queue();
    const w = worker('bridges.example:0', {
      onCall: recordAndHangUp(answered), claimsPerAddress: 1, reresolveMs: 200, resolver: async () => [...answer],
    });
    await dial(first.audiosocketPort, uuid(1));
    assert.equal(await answered.take(), uuid(1));
    answer.push({ host: '127.0.0.1', address: '127.0.0.1', port: added.grpcPort });
    await waitUntil(() => w.addresses().length === 2);
    await dial(added.audiosocketPort, uuid(2));
    assert.equal(await answered.take(), uuid(2));
    answer.shift();
    await waitUntil(() => w.addresses().length === 1);
    await dial(first.audiosocketPort, uuid(3));
    await first.waitForLog('call_ended', 'CLAIM_TIMEOUT');
    assert.equal(answered.length, 0);
  });

  it('stops on permanent errors with the error, never an unhandled rejection', async () => {
    let unhandled = null;
    const onUnhandled = (e) => { unhandled = e; };
    process.on('unhandledRejection', onUnhandled);
    try {
      const server = new BackendServer({ onCall: () => {} });
      const port = await server.listen('127.0.0.1:0');
      open.push(() => server.close());
      const push = await bridge([`--backend=ipv4:127.0.0.1:${port}`]);
      const w = worker(`127.0.0.1:${push.grpcPort}`, { onCall: () => {} });
      await assert.rejects(withTimeout(w.done, WAIT, 'the worker to stop'), (e) => e.code === grpc.status.FAILED_PRECONDITION && /push mode/.test(e.message));
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-token-'));
      fs.writeFileSync(path.join(dir, 'token'), 's3cret\n');
      const locked = await bridge(['--mode=pull', `--auth_token_file=${path.join(dir, 'token')}`]);
      const anonymous = worker(`127.0.0.1:${locked.grpcPort}`, { onCall: () => {} });
      await assert.rejects(withTimeout(anonymous.done, WAIT, 'the worker to stop'), (e) => e.code === grpc.status.UNAUTHENTICATED);
      const answered = queue();
      worker(`127.0.0.1:${locked.grpcPort}`, { onCall: recordAndHangUp(answered), token: 's3cret' });
      await dial(locked.audiosocketPort);
      assert.equal(await answered.take(), UUID);
      fs.rmSync(dir, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(unhandled, null);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('retries transient errors until the bridge is there', async () => {
    const net = require('node:net');
    const port = await new Promise((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    });
    const answered = queue();
    let failed = false;
    const w = worker(`127.0.0.1:${port}`, { onCall: recordAndHangUp(answered), backoffMinMs: 50, backoffMaxMs: 400 });
    w.done.catch(() => { failed = true; });
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(failed, false, 'unreachable is not fatal');
    const b = await bridge(['--mode=pull', `--grpc_listen=127.0.0.1:${port}`]);
    await dial(b.audiosocketPort);
    assert.equal(await answered.take(), UUID);
  });

  it('resolves a name to every address', async () => {
    const all = await resolveAll('localhost:50051, 127.0.0.2:7');
    assert.ok(all.some((a) => a.port === 50051 && (a.address === '127.0.0.1' || a.address === '::1')), JSON.stringify(all));
    assert.ok(all.some((a) => a.address === '127.0.0.2' && a.port === 7));
  });

  it('refuses channelOptions that are not an object of channel options', () => {
    for (const channelOptions of ['gzip', 2, [['grpc.default_compression_algorithm', 2]]]) {
      assert.throws(() => new BridgeWorker('127.0.0.1:50051', { onCall: () => {}, channelOptions }), TypeError);
    }
    for (const channelOptions of [undefined, null, {}]) new BridgeWorker('127.0.0.1:50051', { onCall: () => {}, channelOptions });
  });
});
