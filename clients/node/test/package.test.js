'use strict';
// The SDK as a user gets it: `npm pack`, the tarball installed into a fresh
// project, and the README's quick starts saved there and run with `node`
// (only the port numbers changed). Each answers two concurrent calls.
const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { BackendServer } = require('../src');
const { Bridge, readmeBlock, runCall, withTimeout, WAIT } = require('./support');

const SDK = path.join(__dirname, '..');
let project;

function freePort() {
  const net = require('node:net');
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}

// Runs `node file` in the project; resolves once stdout has `ready`.
function start(file, ready) {
  const proc = spawn(process.execPath, [file], { cwd: project, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  let stderr = '';
  proc.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  const seen = new Promise((resolve, reject) => {
    readline.createInterface({ input: proc.stdout }).on('line', (l) => {
      lines.push(l);
      if (l.includes(ready)) resolve();
    });
    exited.then((code) => reject(new Error(`${file} exited ${code}: ${stderr}`)));
  });
  return { proc, lines, exited, seen: withTimeout(seen, WAIT, `${file} to print ${ready}`), stderr: () => stderr,
    stop: async () => { if (proc.exitCode === null) { proc.kill('SIGKILL'); await exited; } } };
}

async function twoConcurrentCalls(port) {
  const { summary, stderr } = await runCall([`--target=127.0.0.1:${port}`, '--calls=2', '--source=tone:440',
    '--dtmf=#@4s', '--end=wait', '--duration=12s']);
  assert.ok(summary, stderr);
  assert.deepEqual(summary.ended_counts, { remote_hangup: 2 }, JSON.stringify(summary));
  assert.ok(summary.rtt_ms && summary.rtt_ms.count > 0, 'echo heard');
}

describe('the npm package', () => {
  before(() => {
    project = fs.mkdtempSync(path.join(os.tmpdir(), 'node-sdk-project-'));
    const packed = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', project], { cwd: SDK, encoding: 'utf8' }));
    const files = packed[0].files.map((f) => f.path);
    for (const f of ['index.d.ts', 'src/index.js', 'proto/audiosocket/bridge/v1/bridge.proto']) assert.ok(files.includes(f), `${f} packed`);
    assert.ok(!fs.existsSync(path.join(SDK, 'proto')), 'the packing copy of the proto is removed');
    execFileSync('npm', ['init', '-y'], { cwd: project, stdio: 'ignore' });
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', path.join(project, packed[0].filename)],
      { cwd: project, stdio: 'inherit' });
  });

  after(() => {
    if (project) fs.rmSync(project, { recursive: true, force: true });
  });

  it('declares main, types and exports', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(project, 'node_modules', 'audiosocket-bridge-client', 'package.json'), 'utf8'));
    assert.equal(pkg.types, 'index.d.ts');
    assert.equal(pkg.exports['.'].types, './index.d.ts');
    const sdk = require(require.resolve('audiosocket-bridge-client', { paths: [project] }));
    for (const name of ['BackendServer', 'BridgeClient', 'BridgeWorker', 'BridgeCall', 'CommandError', 'wire', 'wav']) {
      assert.ok(sdk[name], name);
    }
    const dts = fs.readFileSync(path.join(project, 'node_modules', 'audiosocket-bridge-client', 'index.d.ts'), 'utf8');
    for (const name of ['class BackendServer', 'class BridgeWorker', 'class BridgeCall', 'mark(name: string): Promise<MarkResolution>']) {
      assert.ok(dts.includes(name), name);
    }
  });

  it('push quick start answers two concurrent calls', async () => {
    const port = await freePort();
    fs.writeFileSync(path.join(project, 'push.js'), readmeBlock('new BackendServer').replaceAll('50052', String(port)));
    const bridge = await Bridge.start(['--listen=127.0.0.1:0', `--backend=ipv4:127.0.0.1:${port}`]);
    const backend = start('push.js', `listening on ${port}`);
    try {
      await backend.seen;
      await twoConcurrentCalls(bridge.audiosocketPort);
    } finally {
      await backend.stop();
      await bridge.stop();
    }
  });

  it('pull quick start answers two concurrent calls', async () => {
    const bridge = await Bridge.start(['--listen=127.0.0.1:0', '--mode=pull']);
    fs.writeFileSync(path.join(project, 'pull.js'), readmeBlock('new BridgeWorker').replaceAll('127.0.0.1:50051', `127.0.0.1:${bridge.grpcPort}`));
    const backend = start('pull.js', 'claiming');
    try {
      await backend.seen;
      await twoConcurrentCalls(bridge.audiosocketPort);
      const deadline = Date.now() + WAIT;
      while (backend.lines.filter((l) => l.includes('CALL_END_REASON_BACKEND_HUNG_UP')).length < 2) {
        assert.ok(Date.now() < deadline, backend.lines.join('\n'));
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await backend.stop();
      await bridge.stop();
    }
  });

  it('pull quick start against a push-mode bridge exits 1 with the error, no unhandled rejection', async () => {
    const server = new BackendServer({ onCall: () => {} });
    const port = await server.listen('127.0.0.1:0');
    const bridge = await Bridge.start(['--listen=127.0.0.1:0', `--backend=ipv4:127.0.0.1:${port}`]);
    fs.writeFileSync(path.join(project, 'pull.js'), readmeBlock('new BridgeWorker').replaceAll('127.0.0.1:50051', `127.0.0.1:${bridge.grpcPort}`));
    const backend = start('pull.js', 'claiming');
    try {
      const code = await withTimeout(backend.exited, WAIT, 'pull.js to exit');
      assert.equal(code, 1, backend.stderr());
      assert.match(backend.stderr(), /worker stopped: .*FAILED_PRECONDITION.*push mode/);
      assert.doesNotMatch(backend.stderr(), /Unhandled|UnhandledPromiseRejection/i);
    } finally {
      await backend.stop();
      await server.close();
      await bridge.stop();
    }
  });
});
