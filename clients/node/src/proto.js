'use strict';
// Loads the audiosocket.bridge.v1 API at run time with @grpc/proto-loader,
// from the package's own proto/ folder (copied there by `npm pack`), else
// from the repository's proto/ folder (an install of the SDK's folder).
// AUDIOSOCKET_BRIDGE_PROTO_DIR overrides both.
const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const PROTO_FILE = 'audiosocket/bridge/v1/bridge.proto';
const PROTO_DIR = process.env.AUDIOSOCKET_BRIDGE_PROTO_DIR
  || [path.join(__dirname, '..', 'proto'), path.join(__dirname, '..', '..', '..', 'proto')]
    .find((dir) => fs.existsSync(path.join(dir, PROTO_FILE)))
  || path.join(__dirname, '..', '..', '..', 'proto');

// Messages are plain objects: field names in lowerCamelCase, enums as their
// names ('RESULT_CODE_OK'), bytes as Buffers, 64-bit integers as Numbers,
// defaults filled in, and the name of the set oneof member in `event` /
// `command`.
const LOADER_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let cached;
function load() {
  if (!cached) {
    const definition = protoLoader.loadSync(PROTO_FILE, LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(definition).audiosocket.bridge.v1;
  }
  return cached;
}

module.exports = { load, PROTO_DIR, PROTO_FILE };
