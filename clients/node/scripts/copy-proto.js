'use strict';
// `npm pack` runs this: before packing (prepack) it copies the API's .proto
// from the repository into the package, so a packed tarball works outside
// the repository; after packing (postpack, --remove) it deletes the copy, so
// the checkout keeps loading the repository's proto/.
const fs = require('node:fs');
const path = require('node:path');

const FILE = path.join('audiosocket', 'bridge', 'v1', 'bridge.proto');
const from = path.join(__dirname, '..', '..', '..', 'proto', FILE);
const dir = path.join(__dirname, '..', 'proto');
if (process.argv.includes('--remove')) {
  fs.rmSync(dir, { recursive: true, force: true });
} else {
  fs.mkdirSync(path.dirname(path.join(dir, FILE)), { recursive: true });
  fs.copyFileSync(from, path.join(dir, FILE));
}
