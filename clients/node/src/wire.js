'use strict';
// AudioSocket wire helper: message kinds, dialect rules, a streaming decoder
// and an encoder. Useful for testing your own AudioSocket tools, and used by
// this SDK's tests to play Asterisk's part of a call byte by byte.
//
// A message is a plain object { type, kind, ...fields }:
//   { kind: 'hangup' }
//   { kind: 'uuid', uuid: '40325ec2-5efd-4bd3-805f-53576e581d13' }
//   { kind: 'dtmf', state: 'start'|'stop', digit: '5', durationMs: 0 }   (extended 0x02)
//   { kind: 'dtmf_digit', digit: '5' }                                   (asterisk 0x03)
//   { kind: 'control', code: 4 }                                         (extended 0x03)
//   { kind: 'audio', rate: 8000, payload: Buffer }                       (0x10-0x18)
//   { kind: 'error', payload: Buffer }                                   (0xff)
//   { kind: 'unknown', type: 0x42, payload: Buffer }

const KIND_HANGUP = 0x00;
const KIND_UUID = 0x01;
const KIND_DTMF = 0x02;
const KIND_DIGIT_OR_CONTROL = 0x03;
const KIND_AUDIO_FIRST = 0x10;
const KIND_AUDIO_LAST = 0x18;
const KIND_ERROR = 0xff;
const MAX_PAYLOAD = 65535;

const AUDIO_RATES = [8000, 12000, 16000, 24000, 32000, 44100, 48000, 96000, 192000];

// AST_CONTROL_* names by code (index); '' where the code is not one.
const CONTROL_NAMES = [
  '', 'hangup', 'ring', 'ringing', 'answer', 'busy', 'take_off_hook', 'off_hook', 'congestion',
  'flash', 'wink', 'option', 'radio_key', 'radio_unkey', 'progress', 'proceeding', 'hold',
  'unhold', 'video_update', 't38', 'source_update', 'transfer', 'connected_line', 'redirecting',
  't38_parameters', 'call_completion', 'source_change', 'read_action', 'advice_of_charge',
  'end_of_queue', 'incomplete', 'malicious_call_id', 'update_rtp_peer', 'private_cause_code',
  'masquerade_notify', 'stream_topology_request_change', 'stream_topology_changed',
  'stream_topology_source_changed',
];

const ERROR_CALLER_HANGUP = 0x01;
const ERROR_FRAME_FORWARDING = 0x02;
const ERROR_MEMORY = 0x04;

class WireError extends Error {
  // code: too_large, unknown_kind, bad_length, empty_audio, odd_audio,
  // bad_dtmf_state, bad_dtmf_digit, truncated; offset: the stream offset of
  // the failing message.
  constructor(code, offset, message) {
    super(`${message} (${code} at offset ${offset})`);
    this.code = code;
    this.offset = offset;
  }
}

function isDtmfDigit(c) {
  return typeof c === 'string' && c.length === 1 && /[0-9*#A-D]/.test(c);
}

function isAudioKind(type) {
  return type >= KIND_AUDIO_FIRST && type <= KIND_AUDIO_LAST;
}

function isKnownKind(type, dialect) {
  if (type === KIND_HANGUP || type === KIND_UUID || type === KIND_DIGIT_OR_CONTROL || type === KIND_ERROR) return true;
  if (type === KIND_DTMF) return dialect === 'extended';
  return isAudioKind(type);
}

function hex2(n) {
  return n.toString(16).padStart(2, '0');
}

// The kind's name in the dialect, as the golden vectors write it.
function kindName(type, dialect) {
  if (!isKnownKind(type, dialect)) return `unknown(0x${hex2(type)})`;
  switch (type) {
    case KIND_HANGUP: return 'hangup';
    case KIND_UUID: return 'uuid';
    case KIND_DTMF: return 'dtmf';
    case KIND_DIGIT_OR_CONTROL: return dialect === 'asterisk' ? 'dtmf_digit' : 'control';
    case KIND_ERROR: return 'error';
    default: return 'audio';
  }
}

function controlName(code) {
  const name = CONTROL_NAMES[code];
  return name ? name : `unknown(${code})`;
}

// Names of the bits of an error's first payload byte.
function errorFlagNames(flags) {
  const out = [];
  if (flags & ERROR_CALLER_HANGUP) out.push('caller_hangup');
  if (flags & ERROR_FRAME_FORWARDING) out.push('frame_forwarding');
  if (flags & ERROR_MEMORY) out.push('memory');
  const rest = flags & ~(ERROR_CALLER_HANGUP | ERROR_FRAME_FORWARDING | ERROR_MEMORY) & 0xff;
  if (rest) out.push(`0x${hex2(rest)}`);
  return out;
}

function rateOfKind(type) {
  return isAudioKind(type) ? AUDIO_RATES[type - KIND_AUDIO_FIRST] : undefined;
}

function kindOfRate(rate) {
  const i = AUDIO_RATES.indexOf(rate);
  return i < 0 ? undefined : KIND_AUDIO_FIRST + i;
}

function uuidToString(bytes) {
  const h = Buffer.from(bytes).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function uuidToBytes(text) {
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(text)) {
    throw new Error(`"${text}" is not a UUID (8-4-4-4-12 hex)`);
  }
  return Buffer.from(text.replace(/-/g, ''), 'hex');
}

// A streaming decoder: push() bytes as they arrive, get whole messages back.
// Options: dialect ('asterisk' | 'extended'), unknown ('reject' | 'skip' |
// 'keep'), maxPayload (default 65535), bytesPerSample (2, or 1 for G.711).
class Decoder {
  constructor({ dialect = 'asterisk', unknown = 'reject', maxPayload = MAX_PAYLOAD, bytesPerSample = 2 } = {}) {
    if (dialect !== 'asterisk' && dialect !== 'extended') throw new Error(`unknown dialect ${dialect}`);
    this.dialect = dialect;
    this.unknown = unknown;
    this.maxPayload = maxPayload;
    this.bytesPerSample = bytesPerSample;
    this.buffer = Buffer.alloc(0);
    this.offset = 0; // stream offset of buffer[0]
    this.failed = null;
  }

  // Returns the messages completed by these bytes; throws WireError on
  // malformed input (and on every later call).
  push(bytes) {
    if (this.failed) throw this.failed;
    this.buffer = this.buffer.length ? Buffer.concat([this.buffer, bytes]) : Buffer.from(bytes);
    const out = [];
    for (;;) {
      if (this.buffer.length < 3) break;
      const type = this.buffer[0];
      const length = this.buffer.readUInt16BE(1);
      this._checkHeader(type, length);
      if (this.buffer.length < 3 + length) break;
      const payload = Buffer.from(this.buffer.subarray(3, 3 + length));
      const message = this._parse(type, payload);
      this.buffer = this.buffer.subarray(3 + length);
      this.offset += 3 + length;
      if (message) out.push(message);
    }
    return out;
  }

  // Throws WireError('truncated') when the input ended inside a message.
  end() {
    if (this.failed) throw this.failed;
    if (this.buffer.length) this._fail('truncated', 'the input ends inside a message');
  }

  _fail(code, what) {
    this.failed = new WireError(code, this.offset, what);
    throw this.failed;
  }

  _checkHeader(type, length) {
    const name = kindName(type, this.dialect);
    if (length > this.maxPayload) this._fail('too_large', `${name} payload of ${length} bytes exceeds ${this.maxPayload}`);
    if (!isKnownKind(type, this.dialect)) {
      if (this.unknown === 'reject') this._fail('unknown_kind', `kind 0x${hex2(type)} is not defined in the ${this.dialect} dialect`);
      return;
    }
    const expect = (want) => {
      if (length !== want) this._fail('bad_length', `${name} needs ${want} payload bytes, got ${length}`);
    };
    switch (type) {
      case KIND_HANGUP: return expect(0);
      case KIND_UUID: return expect(16);
      case KIND_DTMF: return expect(6);
      case KIND_DIGIT_OR_CONTROL: return expect(1);
      case KIND_ERROR: return undefined;
      default:
        if (length === 0) this._fail('empty_audio', 'audio payload is empty');
        if (length % this.bytesPerSample !== 0) this._fail('odd_audio', `audio of ${length} bytes is not whole samples`);
        return undefined;
    }
  }

  _parse(type, payload) {
    if (!isKnownKind(type, this.dialect)) {
      if (this.unknown === 'skip') return null;
      return { type, kind: 'unknown', payload };
    }
    switch (type) {
      case KIND_HANGUP: return { type, kind: 'hangup' };
      case KIND_UUID: return { type, kind: 'uuid', uuid: uuidToString(payload) };
      case KIND_DTMF: {
        const state = payload[0];
        if (state > 1) this._fail('bad_dtmf_state', `dtmf state ${state} is neither 0 (stop) nor 1 (start)`);
        const digit = String.fromCharCode(payload[1]);
        if (!isDtmfDigit(digit)) this._fail('bad_dtmf_digit', `byte 0x${hex2(payload[1])} is not a DTMF digit`);
        return { type, kind: 'dtmf', state: state === 1 ? 'start' : 'stop', digit, durationMs: payload.readUInt32LE(2) };
      }
      case KIND_DIGIT_OR_CONTROL: {
        if (this.dialect === 'extended') return { type, kind: 'control', code: payload[0] };
        const digit = String.fromCharCode(payload[0]);
        if (!isDtmfDigit(digit)) this._fail('bad_dtmf_digit', `byte 0x${hex2(payload[0])} is not a DTMF digit`);
        return { type, kind: 'dtmf_digit', digit };
      }
      case KIND_ERROR: return { type, kind: 'error', payload };
      default: return { type, kind: 'audio', rate: rateOfKind(type), payload };
    }
  }
}

// Decodes a whole byte string; throws WireError (with .messages: those
// decoded before the fault).
function decodeAll(bytes, options) {
  const decoder = new Decoder(options);
  const out = [];
  try {
    out.push(...decoder.push(bytes));
    decoder.end();
  } catch (e) {
    if (e instanceof WireError) {
      // Messages before the failing one were returned by push() only when it
      // completed; re-run to collect them.
      e.messages = collectBefore(bytes, options, e.offset);
    }
    throw e;
  }
  return out;
}

function collectBefore(bytes, options, offset) {
  if (offset === 0) return [];
  return new Decoder(options).push(bytes.subarray(0, offset));
}

class RefusedError extends Error {}

// Whether `message` may be sent in `dialect` to `peer` ('server': Asterisk
// sends it; 'asterisk': a server sends it to Asterisk). Throws RefusedError.
function checkAllowed(message, dialect, peer) {
  const kind = message.kind;
  if (kind === 'hangup' || kind === 'audio') return;
  if (kind === 'unknown') {
    if (isKnownKind(message.type, dialect)) throw new RefusedError(`kind 0x${hex2(message.type)} is ${kindName(message.type, dialect)} in the ${dialect} dialect, not unknown`);
    if (peer === 'asterisk') throw new RefusedError('Asterisk hangs up on unknown kinds');
    return;
  }
  if (dialect === 'asterisk') {
    if (kind === 'dtmf') throw new RefusedError('dtmf (0x02) exists only in the extended dialect');
    if (kind === 'control') throw new RefusedError('control signals exist only in the extended dialect');
    if (peer === 'asterisk') {
      throw new RefusedError(`${kind} to stock Asterisk: it hangs up on any kind but audio and hangup` +
        (kind === 'dtmf_digit' ? '; send DTMF as in-band tones' : ''));
    }
    return;
  }
  if (kind === 'dtmf_digit') throw new RefusedError('in the extended dialect 0x03 is a control signal; send DTMF as dtmf (0x02)');
}

// Encodes one message for `dialect` and `peer` (default: 'asterisk', i.e. a
// server writing to Asterisk). Throws RefusedError or Error (malformed).
function encode(message, { dialect = 'asterisk', peer = 'asterisk' } = {}) {
  checkAllowed(message, dialect, peer);
  let type;
  let payload;
  switch (message.kind) {
    case 'hangup': type = KIND_HANGUP; payload = Buffer.alloc(0); break;
    case 'uuid': type = KIND_UUID; payload = uuidToBytes(message.uuid); break;
    case 'dtmf': {
      if (!isDtmfDigit(message.digit)) throw new Error(`"${message.digit}" is not a DTMF digit`);
      type = KIND_DTMF;
      payload = Buffer.alloc(6);
      payload[0] = message.state === 'start' ? 1 : 0;
      payload[1] = message.digit.charCodeAt(0);
      payload.writeUInt32LE(message.durationMs || 0, 2);
      break;
    }
    case 'dtmf_digit':
      if (!isDtmfDigit(message.digit)) throw new Error(`"${message.digit}" is not a DTMF digit`);
      type = KIND_DIGIT_OR_CONTROL; payload = Buffer.from(message.digit, 'latin1'); break;
    case 'control': type = KIND_DIGIT_OR_CONTROL; payload = Buffer.from([message.code & 0xff]); break;
    case 'audio': {
      type = kindOfRate(message.rate === undefined ? 8000 : message.rate);
      if (type === undefined) throw new Error(`no audio kind for ${message.rate} Hz`);
      payload = Buffer.from(message.payload);
      if (payload.length === 0) throw new Error('audio payload is empty');
      if (payload.length % 2) throw new Error('16-bit audio needs an even number of bytes');
      break;
    }
    case 'error': type = KIND_ERROR; payload = Buffer.from(message.payload || []); break;
    case 'unknown': type = message.type; payload = Buffer.from(message.payload || []); break;
    default: throw new Error(`unknown message kind ${message.kind}`);
  }
  if (payload.length > MAX_PAYLOAD) throw new Error(`payload of ${payload.length} bytes is over ${MAX_PAYLOAD}`);
  const header = Buffer.alloc(3);
  header[0] = type;
  header.writeUInt16BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

// Shorthands for a scripted Asterisk.
const messages = {
  hangup: () => ({ kind: 'hangup' }),
  uuid: (uuid) => ({ kind: 'uuid', uuid }),
  audio: (pcm, rate = 8000) => ({ kind: 'audio', rate, payload: Buffer.from(pcm.buffer ? Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength) : pcm) }),
  dtmfDigit: (digit) => ({ kind: 'dtmf_digit', digit }),
  dtmf: (state, digit, durationMs = 0) => ({ kind: 'dtmf', state, digit, durationMs }),
  control: (code) => ({ kind: 'control', code }),
  error: (flags) => ({ kind: 'error', payload: Buffer.from([flags]) }),
};

module.exports = {
  KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_DIGIT_OR_CONTROL, KIND_AUDIO_FIRST, KIND_AUDIO_LAST, KIND_ERROR,
  MAX_PAYLOAD, AUDIO_RATES, CONTROL_NAMES,
  WireError, RefusedError, Decoder, decodeAll, encode, checkAllowed,
  isDtmfDigit, isKnownKind, kindName, controlName, errorFlagNames, rateOfKind, kindOfRate,
  uuidToString, uuidToBytes, messages,
};
