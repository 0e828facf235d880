// Never run, only compiled (types.test.js): the public API used the way the
// README documents it, so index.d.ts cannot drift from src/ unnoticed. The
// misuses at the end must stay errors; tsc fails when one is accepted, e.g.
// because a type decayed to any.
import { readFileSync } from 'node:fs';
import {
  BackendServer, BridgeCall, BridgeClient, BridgeWorker, CommandError, grpc, isPermanent, resolveAll, wav, wire,
  type CallEnded, type CallInfo, type ClearResult, type CommandResult, type MarkResolution,
} from 'audiosocket-bridge-client';

const token = 'secret';
const ca = readFileSync('ca.pem');

// Everything a call offers, in either mode.
async function converse(call: BridgeCall): Promise<CallEnded> {
  const mode: 'push' | 'pull' = call.mode;
  const rate: number = call.sampleRateHz;
  const since: Date | null = call.startTime;
  console.log(mode, call.callId, call.listener, call.dialect, call.peerAddress, call.callSampleRateHz, call.encoding, since);
  console.log(call.started.backendSampleRateHz, call.isEnded, call.endedEvent?.reason);

  call.on('audio', (chunk) => call.play(chunk.pcm, { responseId: `echo-${chunk.sequenceNumber}` }));
  call.on('dtmf', (d) => d.phase === 'DTMF_PHASE_END' && d.source === 'DTMF_SOURCE_INBAND' && console.log(d.digit));
  call.on('control', (c) => console.log(c.type, c.rawCode));
  call.on('result', (r) => r.ok || console.warn(r.command, r.code, r.message));
  call.on('mark', (m) => console.log(m.name, m.resolution));
  call.on('cleared', (c) => c.responses.forEach((r) => console.log(r.responseId, r.playedMs, r.discardedMs)));
  const onPlayout = (p: { type: string; bufferedMs: number }) => console.log(p.type, p.bufferedMs);
  call.on('playout', onPlayout).off('playout', onPlayout);
  call.once('ended', (e) => console.log(e.reason === 'CALL_END_REASON_CALLER_IDLE', e.stats?.framesToCaller, e.asteriskError?.callerHangup));

  const played: CommandResult = await call.play(wav.tone(440, 200, rate), { responseId: 'greeting', sampleRateHz: rate });
  await call.play(new Int16Array(160));
  const heard: MarkResolution = await call.mark('greeting-end');
  const cleared: ClearResult = await call.clear({ responseId: 'greeting' });
  console.log(played.ok, heard, cleared.discardedMs);
  await call.sendDtmf('123#', { toneMs: 100, gapMs: 50 });
  await call.sendControl('CONTROL_TYPE_ANSWER');
  await call.sendControl(4);
  await call.send({ mark: { name: 'raw' } });
  try {
    await call.clear();
  } catch (err) {
    if (err instanceof CommandError) console.warn(err.code, err.result.message);
  }

  for await (const ev of call) {
    if (ev.event === 'dtmf' && ev.dtmf.digit === '#') await call.hangup({ afterPlayout: true });
    if (ev.event === 'ended') console.log(ev.ended.detail);
  }
  for await (const ev of call.events()) console.log(ev.event);
  return call.done;
}

// Push, with TLS and the token check of the README.
async function push(): Promise<void> {
  const server = new BackendServer({
    media: { sampleRateHz: 16000, detectInbandDtmf: true },
    'grpc.keepalive_time_ms': 10000,
    async onCall(call) {
      if (call.metadata?.get('authorization')[0] !== 'Bearer ' + token) return call.reject({ reason: 'REJECT_REASON_DECLINED' });
      await call.accept({ sampleRateHz: 16000 });
      await converse(call);
    },
  });
  const credentials = grpc.ServerCredentials.createSsl(ca, [{ private_key: readFileSync('key.pem'), cert_chain: readFileSync('cert.pem') }]);
  const port: number = await server.listen('0.0.0.0:50052', credentials);
  console.log(port, server.port, server.server);
  await server.close();
}

// Pull across replicas with a token over TLS, and one address by hand.
async function pull(): Promise<void> {
  const worker = new BridgeWorker('audiosocket-bridge-grpc-headless:50051', {
    onCall: converse,
    token,
    credentials: grpc.credentials.createSsl(ca),
    claimsPerAddress: 2,
    reresolveMs: 10000,
    listener: 'support',
    media: { sampleRateHz: 8000 },
    resolver: resolveAll,
    backoffMinMs: 100,
    backoffMaxMs: 5000,
    log: (level, message) => level !== 'debug' && console.error(message),
    channelOptions: { 'grpc.default_compression_algorithm': 2, 'grpc.keepalive_time_ms': 10000 },
  }).start();
  const addresses: string[] = worker.addresses();
  worker.done.catch((err) => console.error(isPermanent(err), err.message, addresses));
  worker.close();

  const client = new BridgeClient('127.0.0.1:50051', grpc.credentials.createSsl(ca), { token, 'grpc.keepalive_time_ms': 10000 });
  const claim = client.claim({ listener: 'support', media: { detectInbandDtmf: true } });
  setTimeout(() => claim.cancel(), 1000);
  await converse(await claim);
  const calls: CallInfo[] = await client.listCalls({ listener: 'support' });
  if (calls.length) await client.hangupCall(calls[0].callId);
  client.watchCalls().on('data', (change) => console.log(change));
  client.close();
}

// The wire codec and WAV helpers.
function codec(): void {
  const decoder = new wire.Decoder({ dialect: 'extended', unknown: 'keep' });
  const bytes = wire.encode(wire.messages.dtmf('start', '5'), { dialect: 'extended', peer: 'server' });
  for (const m of decoder.push(bytes)) console.log(m.kind, m.digit, wire.kindName(m.type ?? 0, 'extended'));
  decoder.end();
  console.log(wire.controlName(4), wire.errorFlagNames(3));
  const { sampleRate, pcm } = wav.parseWav(readFileSync('prompt.wav'));
  console.log(wav.buildWav(pcm, sampleRate).length);
}

async function misuses(call: BridgeCall): Promise<void> {
  // @ts-expect-error: audio is PCM bytes or samples, not text
  await call.play('hello');
  // @ts-expect-error: a call has no transfer
  await call.transfer('100');
  // @ts-expect-error: the call never emits its start; call.started has it
  call.on('started', () => {});
  // @ts-expect-error: a DTMF digit is a string
  call.on('dtmf', (d: { digit: number }) => console.log(d));
  // @ts-expect-error: the option is afterPlayout
  await call.hangup({ afterPlayback: true });
  // @ts-expect-error: mark resolves to the resolution, not a CommandResult
  const result: CommandResult = await call.mark('m');
  // @ts-expect-error: not a reject reason
  call.reject({ reason: 'BUSY' });
  // @ts-expect-error: calls come from the SDK
  new BridgeCall();
  // @ts-expect-error: a server needs onCall
  new BackendServer({ media: {} });
  // @ts-expect-error: a token is a string
  new BridgeWorker('127.0.0.1:50051', { onCall: converse, token: 42 });
  // @ts-expect-error: grpc-js types 'grpc.keepalive_time_ms' as a number
  new BridgeWorker('127.0.0.1:50051', { onCall: converse, channelOptions: { 'grpc.keepalive_time_ms': true } });
  // @ts-expect-error: not a dialect
  new wire.Decoder({ dialect: 'sip' });
  console.log(result);
}

export { converse, push, pull, codec, misuses };
