'use strict';
// The example backend (examples/echo-backend.js), run as a process, against
// the real bridge and audiosocket-call: echo (matched byte-exact by the
// tool's RTT), DTMF logged, the WAV played on a digit, hang-up on '#', in
// both modes and both dialects.
const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');
const { Bridge, runCall, withTimeout, WAIT } = require('./support');

const EXAMPLE = path.join(__dirname, '..', 'examples', 'echo-backend.js');

function startExample(args) {
  const proc = spawn(process.execPath, [EXAMPLE, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const logs = [];
  const waiters = [];
  readline.createInterface({ input: proc.stdout }).on('line', (line) => {
    const entry = JSON.parse(line);
    logs.push(entry);
    for (const w of waiters.splice(0)) w();
  });
  const waitFor = (pred, what) => withTimeout((async () => {
    for (;;) {
      const hit = logs.find(pred);
      if (hit) return hit;
      await new Promise((resolve) => waiters.push(resolve));
    }
  })(), WAIT, what);
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  return { proc, logs, waitFor, stop: async () => { if (proc.exitCode === null) { proc.kill('SIGKILL'); await exited; } } };
}

for (const mode of ['push', 'pull']) {
  for (const dialect of ['asterisk', 'extended']) {
    describe(`example backend, ${mode} mode, ${dialect} dialect`, () => {
      it('echoes, logs DTMF, plays the WAV on a digit and hangs up on #', async () => {
        const listen = `--listen=127.0.0.1:0${dialect === 'extended' ? ',dialect=extended' : ''}`;
        let example;
        let bridge;
        try {
          if (mode === 'push') {
            example = startExample(['--push', '127.0.0.1:0']);
            const { port } = await example.waitFor((e) => e.event === 'listening', 'the example to listen');
            bridge = await Bridge.start([listen, `--backend=ipv4:127.0.0.1:${port}`]);
          } else {
            bridge = await Bridge.start([listen, '--mode=pull']);
            example = startExample(['--pull', `127.0.0.1:${bridge.grpcPort}`]);
            await example.waitFor((e) => e.event === 'claiming', 'the example to claim');
          }
          const { code, summary, stderr } = await runCall([
            `--target=127.0.0.1:${bridge.audiosocketPort}`, `--dialect=${dialect}`, '--source=tone:440',
            '--dtmf=1@1000ms,#@3000ms', '--end=wait', '--duration=20s',
          ]);
          assert.ok(summary, `no summary; stderr: ${stderr}`);
          assert.equal(code, 0, JSON.stringify(summary));
          assert.equal(summary.ended, 'remote_hangup', JSON.stringify(summary));
          assert.ok(summary.rtt_ms && summary.rtt_ms.count > 0, 'echoed frames come back byte-exact');
          const one = await example.waitFor((e) => e.event === 'dtmf' && e.digit === '1', 'DTMF 1 logged');
          assert.equal(one.phase, dialect === 'asterisk' ? 'DTMF_PHASE_END_ONLY' : 'DTMF_PHASE_END');
          const played = await example.waitFor((e) => e.event === 'wav_played', 'the WAV played');
          assert.equal(played.queued, 'RESULT_CODE_OK');
          assert.equal(played.mark, 'MARK_RESOLUTION_PLAYED');
          await example.waitFor((e) => e.event === 'dtmf' && e.digit === '#', 'DTMF # logged');
          const ended = await example.waitFor((e) => e.event === 'ended', 'the call ended');
          assert.equal(ended.reason, 'CALL_END_REASON_BACKEND_HUNG_UP');
        } finally {
          if (example) await example.stop();
          if (bridge) await bridge.stop();
        }
      });
    });
  }
}
