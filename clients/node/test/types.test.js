'use strict';
// index.d.ts under the TypeScript compiler (tsc --strict, test/types/tsconfig.json):
// test/types/usage.ts, and the README's two quick starts as a TypeScript user
// writes them, so a declaration that does not match the JavaScript API, or a
// quick start that does not type-check, fails here.
const { it } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { readmeBlock } = require('./support');

const TYPES = path.join(__dirname, 'types');
const TSC = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');

// The README's js block with `needle`, its require of the SDK made an import:
// with require the SDK would be `any` to tsc and nothing would be checked.
function quickStartAsTs(needle) {
  const js = readmeBlock(needle);
  const ts = js.replace(/^const (\{[^}]*\}) = require\(('audiosocket-bridge-client')\);$/m, 'import $1 from $2;');
  assert.notEqual(ts, js, `the ${needle} quick start requires the SDK as const { ... } = require('audiosocket-bridge-client')`);
  return ts;
}

it('index.d.ts type-checks usage.ts and the README quick starts (tsc --strict)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-sdk-types-'));
  try {
    fs.writeFileSync(path.join(dir, 'readme-push.ts'), quickStartAsTs('new BackendServer'));
    fs.writeFileSync(path.join(dir, 'readme-pull.ts'), quickStartAsTs('new BridgeWorker'));
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      extends: path.join(TYPES, 'tsconfig.json'),
      files: [path.join(TYPES, 'usage.ts'), 'readme-push.ts', 'readme-pull.ts'],
    }));
    const tsc = spawnSync(process.execPath, [TSC, '--project', dir], { encoding: 'utf8' });
    assert.ifError(tsc.error);
    assert.equal(tsc.status, 0, `tsc found errors:\n${tsc.stdout}${tsc.stderr}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
