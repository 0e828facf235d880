'use strict';
// End-to-end: the real bridge binary between a scripted Asterisk (or
// audiosocket-call) and this SDK, in push and in pull mode.
const { describe, it, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const zlib = require('node:zlib');
const { Harness, Bridge, FakeAsterisk, numberedFrame, samplesOf, nextOf, withTimeout, UUID, WAIT } = require('./support');
const { wire, grpc } = require('../src');

// Sends frames 1 to 24 after the call's frame 0 and plays each of the 25 back
// as it arrives; the caller must hear them byte-exact, in 20 ms frames.
async function echoesByteExact(call, asterisk) {
  const events = call.events();
  const sent = [...numberedFrame(0)];
  for (let i = 1; i < 25; i++) {
    asterisk.sendAudio(numberedFrame(i));
    sent.push(...numberedFrame(i));
  }
  for (let i = 0; i < 25; i++) {
    const chunk = await nextOf(events, 'audio');
    assert.equal(chunk.sequenceNumber, i);
    assert.equal(chunk.offsetSamples, i * 160);
    assert.deepEqual(samplesOf(chunk.pcm), [...numberedFrame(i)]);
    const result = await call.play(chunk.pcm, { responseId: 'echo' });
    assert.equal(result.code, 'RESULT_CODE_OK');
    assert.ok(result.ok);
  }
  const heard = [];
  while (heard.length < sent.length) {
    const m = await asterisk.read();
    assert.ok(m, 'the bridge closed the socket');
    if (m.kind !== 'audio') continue;
    assert.equal(m.type, 0x10);
    assert.equal(m.payload.length, 320);
    const samples = samplesOf(m.payload);
    if (samples.every((s) => s === 0)) continue; // silence before the echo, or an underrun gap
    heard.push(...samples);
  }
  assert.deepEqual(heard.slice(0, sent.length), sent);
}

for (const mode of ['push', 'pull']) {
  describe(`${mode} mode`, () => {
    let h;
    let asterisk;
    afterEach(async () => {
      if (asterisk) asterisk.close();
      if (h) await h.stop();
      h = null;
      asterisk = null;
    });

    async function setUp(dialect = 'asterisk', listen = '127.0.0.1:0') {
      h = await Harness.start(mode, { listen: dialect === 'extended' ? `${listen},dialect=extended,name=ext` : listen });
      asterisk = new FakeAsterisk(dialect);
      return h.connect(asterisk);
    }

    it('describes the call in its metadata', async () => {
      const call = await setUp();
      assert.equal(call.mode, mode);
      assert.equal(call.callId, UUID);
      assert.equal(call.listener, 'default');
      assert.equal(call.dialect, 'DIALECT_ASTERISK');
      assert.equal(call.callSampleRateHz, 8000);
      assert.equal(call.sampleRateHz, 8000);
      assert.match(call.peerAddress, /^127\.0\.0\.1:\d+$/);
      assert.ok(call.startTime instanceof Date && Math.abs(call.startTime - Date.now()) < 60000);
    });

    it('echoes audio back byte-exact in 20 ms frames', async () => {
      const call = await setUp();
      await echoesByteExact(call, asterisk);
    });

    it('delivers a stock Asterisk DTMF digit as an END_ONLY event', async () => {
      const call = await setUp();
      const dtmf = new Promise((resolve) => call.once('dtmf', resolve));
      asterisk.send(wire.messages.dtmfDigit('7'));
      const event = await dtmf;
      assert.equal(event.digit, '7');
      assert.equal(event.phase, 'DTMF_PHASE_END_ONLY');
      assert.equal(event.source, 'DTMF_SOURCE_SIGNALLED');
      assert.equal(event.offsetSamples, 160);
    });

    it('delivers extended DTMF start/stop as BEGIN and END', async () => {
      const call = await setUp('extended');
      assert.equal(call.dialect, 'DIALECT_EXTENDED');
      assert.equal(call.listener, 'ext');
      const events = call.events();
      asterisk.send(wire.messages.dtmf('start', '#', 0));
      asterisk.send(wire.messages.dtmf('stop', '#', 120));
      const begin = await nextOf(events, 'dtmf');
      const end = await nextOf(events, 'dtmf');
      assert.equal(begin.digit, '#');
      assert.equal(begin.phase, 'DTMF_PHASE_BEGIN');
      assert.equal(end.phase, 'DTMF_PHASE_END');
      assert.equal(end.durationMs, 120);
    });

    it('sends DTMF toward the caller as 0x02 start/stop in the extended dialect', async () => {
      const call = await setUp('extended');
      const result = call.sendDtmf('12', { toneMs: 80, gapMs: 60 });
      const seen = [];
      while (seen.length < 4) {
        const m = await asterisk.read();
        assert.ok(m);
        if (m.kind === 'audio') continue;
        assert.equal(m.kind, 'dtmf');
        seen.push(`${m.state}:${m.digit}:${m.durationMs}`);
      }
      assert.deepEqual(seen, ['start:1:0', 'stop:1:80', 'start:2:0', 'stop:2:80']);
      const r = await result;
      assert.equal(r.code, 'RESULT_CODE_OK');
      assert.equal(r.command, 'COMMAND_KIND_SEND_DTMF');
    });

    it('sends control signals in the extended dialect and reports UNSUPPORTED in the asterisk dialect', async () => {
      let call = await setUp('extended');
      const ok = await call.sendControl('CONTROL_TYPE_ANSWER');
      assert.equal(ok.code, 'RESULT_CODE_OK');
      let m;
      do m = await asterisk.read(); while (m && m.kind === 'audio');
      assert.equal(m.kind, 'control');
      assert.equal(m.code, 4);
      asterisk.close();
      await h.stop();
      call = await setUp('asterisk');
      const refused = await call.sendControl('CONTROL_TYPE_ANSWER');
      assert.equal(refused.code, 'RESULT_CODE_UNSUPPORTED');
      assert.equal(refused.ok, false);
      assert.match(refused.message, /extended/);
    });

    it('accounts a clear per response, before the marks it clears', async () => {
      const call = await setUp();
      const events = call.events();
      const order = [];
      call.on('cleared', () => order.push('cleared'));
      call.on('mark', () => order.push('mark'));
      assert.ok((await call.play(new Int16Array(16000).fill(500), { responseId: 'r1' })).ok); // 2 s
      const mark = call.mark('after-r1');
      assert.ok((await call.play(new Int16Array(8000).fill(700), { responseId: 'r2' })).ok); // 1 s
      let heardR1 = 0;
      while (heardR1 < 8 * 160) {
        const m = await asterisk.read();
        assert.ok(m);
        if (m.kind === 'audio') heardR1 += samplesOf(m.payload).filter((s) => s === 500).length;
      }
      const cleared = await call.clear();
      assert.equal(cleared.responses.length, 2);
      const [r1, r2] = cleared.responses;
      assert.equal(r1.responseId, 'r1');
      assert.equal(r1.playedMs + r1.discardedMs, 2000);
      assert.ok(r1.playedMs >= 160);
      assert.equal(r2.responseId, 'r2');
      assert.equal(r2.playedMs, 0);
      assert.equal(r2.discardedMs, 1000);
      assert.equal(cleared.discardedMs, r1.discardedMs + 1000);
      assert.equal(await mark, 'MARK_RESOLUTION_CLEARED');
      // The stream order: ClearResult, then the MarkResolved it caused.
      const first = await nextOf(events, 'cleared');
      assert.equal(first.commandId, cleared.commandId);
      const heard = await nextOf(events, 'mark');
      assert.equal(heard.name, 'after-r1');
      assert.equal(heard.resolution, 'MARK_RESOLUTION_CLEARED');
      assert.deepEqual(order, ['cleared', 'mark']);
      // What the caller heard matches the account exactly.
      for (const m of await asterisk.readFor(300)) {
        if (m.kind !== 'audio') continue;
        for (const s of samplesOf(m.payload)) {
          if (s === 500) heardR1++;
          assert.notEqual(s, 700, 'r2 was cleared before it started');
        }
      }
      assert.equal(heardR1, r1.playedMs * 8);
    });

    it('resolves a mark PLAYED after its audio', async () => {
      const call = await setUp();
      await call.play(new Int16Array(800).fill(1000), { responseId: 'r1' });
      assert.equal(await call.mark('m1'), 'MARK_RESOLUTION_PLAYED');
      let loud = 0;
      for (const m of await asterisk.readFor(300)) {
        if (m.kind === 'audio') loud += samplesOf(m.payload).filter((s) => s === 1000).length;
      }
      assert.equal(loud, 800);
    });

    it('surfaces refused commands in their results without ending the call', async () => {
      const call = await setUp();
      const odd = await call.play(Buffer.alloc(3));
      assert.equal(odd.code, 'RESULT_CODE_INVALID_ARGUMENT');
      assert.equal(odd.ok, false);
      assert.match(odd.message, /even/);
      const digits = await call.sendDtmf('1x');
      assert.equal(digits.code, 'RESULT_CODE_INVALID_ARGUMENT');
      const after = await call.play(new Int16Array(160).fill(9));
      assert.equal(after.code, 'RESULT_CODE_OK');
      assert.equal(call.isEnded, false);
    });

    it('hangs up: the caller gets 0x00, the call ends BACKEND_HUNG_UP', async () => {
      const call = await setUp();
      const result = await call.hangup();
      assert.equal(result.code, 'RESULT_CODE_OK');
      const ended = await call.done;
      assert.equal(ended.reason, 'CALL_END_REASON_BACKEND_HUNG_UP');
      const rest = await asterisk.readUntilClosed();
      assert.ok(rest.some((m) => m.kind === 'hangup'), 'the bridge sends 0x00 before closing');
      assert.ok(asterisk.closed);
      // Commands after the end answer CALL_ENDED.
      assert.equal((await call.play(Buffer.alloc(2))).code, 'RESULT_CODE_CALL_ENDED');
    });

    it('hangs up after playout: queued audio plays first', async () => {
      const call = await setUp();
      await call.play(new Int16Array(1600).fill(321), { responseId: 'bye' });
      await call.hangup({ afterPlayout: true });
      const rest = await asterisk.readUntilClosed();
      let count = 0;
      for (const m of rest) if (m.kind === 'audio') count += samplesOf(m.payload).filter((s) => s === 321).length;
      assert.equal(count, 1600);
      assert.equal(rest[rest.length - 1].kind, 'hangup');
      assert.equal((await call.done).reason, 'CALL_END_REASON_BACKEND_HUNG_UP');
    });

    it('ends CALLER_HUNG_UP when the caller hangs up; pending marks resolve CALL_ENDED', async () => {
      const call = await setUp();
      const iterated = [];
      const consumer = (async () => {
        for await (const event of call) iterated.push(event.event);
      })();
      await call.play(new Int16Array(8000).fill(1));
      const mark = call.mark('never');
      await new Promise((r) => setTimeout(r, 100));
      asterisk.send(wire.messages.hangup());
      assert.equal(await mark, 'MARK_RESOLUTION_CALL_ENDED');
      const ended = await call.done;
      assert.equal(ended.reason, 'CALL_END_REASON_CALLER_HUNG_UP');
      await consumer; // the iterator ends after 'ended'
      assert.equal(iterated[iterated.length - 1], 'ended');
    });
  });
}

// grpc-js compresses every message it sends, whatever its size, once the
// channel names an algorithm ('grpc.default_compression_algorithm': 1
// deflate, 2 gzip); the bridge sends no grpc-accept-encoding that would turn
// it off, so the whole stream is compressed. grpc-js's server never
// compresses, so a push backend of this SDK sends plain messages whatever its
// options.
describe('compressed messages', () => {
  for (const [algorithm, code] of [['gzip', 2], ['deflate', 1]]) {
    it(`pull: a worker whose channel compresses with ${algorithm} is echoed byte-exact`, async () => {
      // grpc-js compresses each message with zlib.gzip / zlib.deflate:
      // counted, so the test cannot pass on plain messages.
      const compress = zlib[algorithm];
      let compressed = 0;
      zlib[algorithm] = (...args) => {
        compressed++;
        return compress(...args);
      };
      let h;
      const asterisk = new FakeAsterisk();
      try {
        h = await Harness.start('pull', { grpcOptions: { 'grpc.default_compression_algorithm': code } });
        const call = await h.connect(asterisk);
        await echoesByteExact(call, asterisk);
        assert.ok(compressed >= 26, `grpc-js compressed ${compressed} messages, not the claim and the 25 plays`);
      } finally {
        zlib[algorithm] = compress;
        asterisk.close();
        if (h) await h.stop();
      }
    });
  }

  it('pull: a BridgeWorker given gzip channelOptions compresses and is echoed byte-exact', async () => {
    // The worker makes its own channel to each address: channelOptions must
    // reach it, or grpc-js sends the claim and the plays uncompressed.
    const compress = zlib.gzip;
    let compressed = 0;
    zlib.gzip = (...args) => {
      compressed++;
      return compress(...args);
    };
    let bridge;
    let worker;
    const asterisk = new FakeAsterisk();
    try {
      bridge = await Bridge.start(['--listen=127.0.0.1:0', '--mode=pull']);
      let claimed;
      const call = new Promise((resolve) => { claimed = resolve; });
      const { BridgeWorker } = require('../src');
      worker = new BridgeWorker(`127.0.0.1:${bridge.grpcPort}`, {
        onCall: claimed,
        claimsPerAddress: 1,
        log: () => {},
        channelOptions: { 'grpc.default_compression_algorithm': 2 },
      }).start();
      await asterisk.connect(bridge.audiosocketPort);
      asterisk.sendUuid();
      asterisk.sendAudio(numberedFrame(0));
      const worked = await withTimeout(call, WAIT, 'the worker to claim the call');
      assert.equal(worked.mode, 'pull');
      assert.equal(worked.callId, UUID);
      await echoesByteExact(worked, asterisk);
      assert.ok(compressed >= 26, `grpc-js compressed ${compressed} messages, not the claim and the 25 plays`);
    } finally {
      zlib.gzip = compress;
      if (worker) worker.close();
      asterisk.close();
      if (bridge) await bridge.stop();
    }
  });
});

describe('mode-specific', () => {
  it('pull: claiming from a push-mode bridge fails with FAILED_PRECONDITION', async () => {
    const h = await Harness.start('push');
    try {
      const { BridgeClient } = require('../src');
      const client = new BridgeClient(`127.0.0.1:${h.bridge.grpcPort}`);
      await assert.rejects(client.claim(), (e) => e.code === 9);
      client.close();
    } finally {
      await h.stop();
    }
  });

  it('push: options besides onCall and media go to the grpc.Server', async () => {
    const paths = [];
    const interceptors = [(method, call) => {
      paths.push(method.path);
      return new grpc.ServerInterceptingCall(call);
    }];
    const h = await Harness.start('push', { grpcOptions: { interceptors } });
    const asterisk = new FakeAsterisk();
    try {
      const call = await h.connect(asterisk);
      await echoesByteExact(call, asterisk);
      assert.deepEqual(paths, ['/audiosocket.bridge.v1.CallHandlerService/HandleCall']);
    } finally {
      asterisk.close();
      await h.stop();
    }
  });

  it('push: a handler that rejects makes the call end ALL_BACKENDS_REJECTED', async () => {
    const { BackendServer } = require('../src');
    const { Bridge } = require('./support');
    const server = new BackendServer({ onCall: (call) => call.reject({ reason: 'REJECT_REASON_DECLINED', detail: 'closed today' }) });
    const port = await server.listen('127.0.0.1:0');
    const bridge = await Bridge.start(['--listen=127.0.0.1:0', `--backend=ipv4:127.0.0.1:${port}`]);
    const asterisk = new FakeAsterisk();
    try {
      await asterisk.connect(bridge.audiosocketPort);
      asterisk.sendUuid();
      await asterisk.readUntilClosed(WAIT);
      const line = await bridge.waitForLog('call_ended', 'ALL_BACKENDS_REJECTED');
      assert.match(line, /closed today/);
    } finally {
      asterisk.close();
      await server.close();
      await bridge.stop();
    }
  });
});
