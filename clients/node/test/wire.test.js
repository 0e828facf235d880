'use strict';
// The wire helper against every golden vector in tests/testdata/wire: decode
// the bytes and expect the messages (or the error at its offset); build the
// messages from their fields and expect the bytes (or the refusal).
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const wire = require('../src/wire');

const VECTORS = process.env.WIRE_VECTORS || path.join(__dirname, '..', '..', '..', 'tests', 'testdata', 'wire');

function stripComment(line) {
  for (let i = 0; i < line.length; i++) {
    if (line[i] === '#' && (i === 0 || line[i - 1] === ' ' || line[i - 1] === '\t')) return line.slice(0, i);
  }
  return line;
}

function parseVectors(file) {
  const out = [];
  let current = null;
  for (const raw of fs.readFileSync(file, 'utf8').split('\n')) {
    const line = stripComment(raw).trim();
    if (!line) continue;
    const colon = line.indexOf(':');
    assert.ok(colon > 0, `${file}: bad line "${raw}"`);
    const key = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (key === 'vector') {
      current = { name: value, hex: [], messages: [], file: path.basename(file) };
      out.push(current);
      continue;
    }
    assert.ok(current, `${file}: "${key}" before any vector`);
    if (key === 'hex') current.hex.push(...value.split(/\s+/));
    else if (key === 'message') current.messages.push(value);
    else current[key] = value;
  }
  return out;
}

function fields(description) {
  const out = {};
  for (const pair of description.split(' ')) {
    const eq = pair.indexOf('=');
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

// A decoded message in the vectors' notation.
function describe(message, dialect, bytesPerSample) {
  const type = message.kind === 'unknown' ? message.type : message.type;
  const length = message.kind === 'audio' || message.kind === 'error' || message.kind === 'unknown'
    ? message.payload.length
    : { hangup: 0, uuid: 16, dtmf: 6, dtmf_digit: 1, control: 1 }[message.kind];
  let text = `type=0x${type.toString(16).padStart(2, '0')} kind=${wire.kindName(type, dialect)} length=${length}`;
  switch (message.kind) {
    case 'uuid': text += ` uuid=${message.uuid}`; break;
    case 'dtmf': text += ` state=${message.state} digit=${message.digit} duration_ms=${message.durationMs}`; break;
    case 'dtmf_digit': text += ` digit=${message.digit}`; break;
    case 'control': text += ` code=${message.code} control=${wire.controlName(message.code)}`; break;
    case 'audio': text += ` rate=${message.rate} samples=${length / bytesPerSample}`; break;
    case 'error':
      text += ` payload=${message.payload.toString('hex')} flags=${wire.errorFlagNames(message.payload.length ? message.payload[0] : 0).join('|')}`;
      break;
    case 'unknown': text += ` payload=${message.payload.toString('hex')}`; break;
    default: break;
  }
  return text;
}

// Builds the message a description names; audio takes its samples from the
// vector's bytes at `at` (the message's stream offset).
function build(description, bytes, at) {
  const f = fields(description);
  const length = Number(f.length);
  const kind = f.kind;
  if (kind.startsWith('unknown(')) return { kind: 'unknown', type: parseInt(f.type, 16), payload: Buffer.from(f.payload, 'hex') };
  switch (kind) {
    case 'hangup': return wire.messages.hangup();
    case 'uuid': return wire.messages.uuid(f.uuid);
    case 'dtmf': return wire.messages.dtmf(f.state, f.digit, Number(f.duration_ms));
    case 'dtmf_digit': return wire.messages.dtmfDigit(f.digit);
    case 'control': return wire.messages.control(Number(f.code));
    case 'audio': return { kind: 'audio', rate: Number(f.rate), payload: bytes.subarray(at + 3, at + 3 + length) };
    case 'error': return { kind: 'error', payload: Buffer.from(f.payload, 'hex') };
    default: throw new Error(`unknown kind ${kind}`);
  }
}

const files = fs.readdirSync(VECTORS).filter((f) => f.endsWith('.txt')).sort();
test('golden vector files are present', () => {
  assert.deepEqual(files, ['asterisk.txt', 'extended.txt', 'malformed.txt']);
});

for (const file of files) {
  for (const v of parseVectors(path.join(VECTORS, file))) {
    const bytes = Buffer.from(v.hex.join(''), 'hex');
    const options = {
      dialect: v.dialect,
      unknown: v.policy || 'reject',
      maxPayload: v.max_payload === undefined ? wire.MAX_PAYLOAD : Number(v.max_payload),
      bytesPerSample: v.bytes_per_sample === undefined ? 2 : Number(v.bytes_per_sample),
    };
    test(`decode ${file} ${v.name}`, () => {
      assert.ok(['asterisk', 'extended'].includes(v.dialect));
      assert.ok(['server', 'asterisk'].includes(v.peer));
      let decoded;
      if (v.error) {
        const [code, offsetField] = v.error.split(' ');
        const offset = Number(offsetField.split('=')[1]);
        let caught;
        try {
          wire.decodeAll(bytes, options);
        } catch (e) {
          caught = e;
        }
        assert.ok(caught instanceof wire.WireError, `expected ${code}, decoded without error`);
        assert.equal(caught.code, code);
        assert.equal(caught.offset, offset);
        decoded = caught.messages;
        // Fed one byte at a time, the streaming decoder fails the same way.
        const streaming = new wire.Decoder(options);
        let fault;
        try {
          for (const b of bytes) streaming.push(Buffer.from([b]));
          streaming.end();
        } catch (e) {
          fault = e;
        }
        assert.equal(fault && fault.code, code);
        assert.equal(fault.offset, offset);
      } else {
        decoded = wire.decodeAll(bytes, options);
        const streaming = new wire.Decoder(options);
        const oneByOne = [];
        for (const b of bytes) oneByOne.push(...streaming.push(Buffer.from([b])));
        streaming.end();
        assert.deepEqual(oneByOne.map((m) => describe(m, v.dialect, options.bytesPerSample)),
          decoded.map((m) => describe(m, v.dialect, options.bytesPerSample)));
      }
      assert.deepEqual(decoded.map((m) => describe(m, v.dialect, options.bytesPerSample)), v.messages);
    });
    if (v.encode) {
      test(`encode ${file} ${v.name}`, () => {
        let at = 0;
        const built = v.messages.map((d) => {
          const m = build(d, bytes, at);
          at += 3 + Number(fields(d).length);
          return m;
        });
        if (v.encode === 'same') {
          const encoded = Buffer.concat(built.map((m) => wire.encode(m, { dialect: v.dialect, peer: v.peer })));
          assert.equal(encoded.toString('hex'), bytes.toString('hex'));
        } else {
          assert.equal(v.encode, 'refused');
          assert.equal(built.length, 1);
          assert.throws(() => wire.encode(built[0], { dialect: v.dialect, peer: v.peer }), wire.RefusedError);
        }
      });
    }
  }
}
