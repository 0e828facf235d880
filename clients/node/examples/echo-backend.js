#!/usr/bin/env node
'use strict';
// Example backend: echoes the caller's audio back, logs DTMF, plays a WAV
// when a digit is pressed, and hangs up on '#'.
//
//   node examples/echo-backend.js --push 127.0.0.1:50052   # serve; run the bridge with --backend=ipv4:127.0.0.1:50052
//   node examples/echo-backend.js --pull 127.0.0.1:50051   # claim calls from a bridge started with --mode=pull
//   ... --wav FILE   play FILE (16-bit PCM mono at the call's rate) instead of a generated chime
//
// Logs one JSON line per happening on stdout.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { BackendServer, BridgeWorker, wav } = require('../src');

function log(fields) {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}

// The WAV to play: --wav FILE, or a two-note chime written once to a temp file.
function wavFile(argv) {
  const i = argv.indexOf('--wav');
  if (i >= 0) return argv[i + 1];
  const file = path.join(os.tmpdir(), 'audiosocket-bridge-node-chime.wav');
  if (!fs.existsSync(file)) {
    fs.writeFileSync(file, wav.buildWav(Buffer.concat([wav.tone(880, 200), wav.tone(660, 300)]), 8000));
  }
  return file;
}

async function handleCall(call, prompt) {
  log({ event: 'call', callId: call.callId, listener: call.listener, dialect: call.dialect, rate: call.sampleRateHz, mode: call.mode });
  let prompting = false;
  call.on('audio', (chunk) => {
    if (!prompting) call.play(chunk.pcm, { responseId: 'echo' });
  });
  call.on('dtmf', async (dtmf) => {
    if (dtmf.phase === 'DTMF_PHASE_BEGIN') return;
    log({ event: 'dtmf', callId: call.callId, digit: dtmf.digit, phase: dtmf.phase, durationMs: dtmf.durationMs });
    if (dtmf.digit === '#') {
      const result = await call.hangup();
      log({ event: 'hangup', callId: call.callId, code: result.code });
      return;
    }
    if (prompt.sampleRate !== call.sampleRateHz) {
      log({ event: 'wav_skipped', reason: `the WAV is ${prompt.sampleRate} Hz, the call ${call.sampleRateHz} Hz` });
      return;
    }
    prompting = true;
    await call.clear({ responseId: 'echo' });
    const played = await call.play(prompt.pcm, { responseId: 'wav' });
    const mark = await call.mark(`wav-${dtmf.digit}`);
    prompting = false;
    log({ event: 'wav_played', callId: call.callId, queued: played.code, mark });
  });
  call.on('ended', (ended) => log({ event: 'ended', callId: call.callId, reason: ended.reason, detail: ended.detail }));
}

async function main(argv) {
  const prompt = wav.parseWav(fs.readFileSync(wavFile(argv)));
  const push = argv.indexOf('--push');
  const pull = argv.indexOf('--pull');
  if (push >= 0) {
    const server = new BackendServer({ onCall: (call) => handleCall(call, prompt) });
    const port = await server.listen(argv[push + 1] || '127.0.0.1:50052');
    log({ event: 'listening', port });
    process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
  } else if (pull >= 0) {
    const worker = new BridgeWorker(argv[pull + 1] || '127.0.0.1:50051', { onCall: (call) => handleCall(call, prompt), claimsPerAddress: 4 }).start();
    log({ event: 'claiming', target: argv[pull + 1] });
    worker.done.then(() => process.exit(0), (err) => {
      log({ event: 'stopped', error: err.message });
      process.exit(1);
    });
    process.on('SIGTERM', () => worker.close());
  } else {
    process.stderr.write('usage: echo-backend.js --push ADDRESS | --pull BRIDGE [--wav FILE]\n');
    process.exit(2);
  }
}

main(process.argv.slice(2)).catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
