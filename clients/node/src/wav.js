'use strict';
// Minimal WAV (RIFF, 16-bit PCM mono) reading and writing, and a tone
// generator, for examples and tests.

// Parses a WAV file's bytes: { sampleRate, channels, bitsPerSample, pcm }.
function parseWav(bytes) {
  if (bytes.length < 12 || bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WAVE') {
    throw new Error('not a RIFF/WAVE file');
  }
  let format = null;
  let at = 12;
  while (at + 8 <= bytes.length) {
    const id = bytes.toString('latin1', at, at + 4);
    const size = bytes.readUInt32LE(at + 4);
    const body = bytes.subarray(at + 8, Math.min(bytes.length, at + 8 + size));
    if (id === 'fmt ') {
      format = {
        audioFormat: body.readUInt16LE(0),
        channels: body.readUInt16LE(2),
        sampleRate: body.readUInt32LE(4),
        bitsPerSample: body.readUInt16LE(14),
      };
    } else if (id === 'data') {
      if (!format) throw new Error('WAV data before fmt');
      if (format.audioFormat !== 1 || format.bitsPerSample !== 16) throw new Error('only 16-bit PCM WAV is supported');
      return { sampleRate: format.sampleRate, channels: format.channels, bitsPerSample: 16, pcm: Buffer.from(body) };
    }
    at += 8 + size + (size & 1);
  }
  throw new Error('WAV has no data chunk');
}

// WAV bytes for 16-bit mono PCM.
function buildWav(pcm, sampleRate) {
  const header = Buffer.alloc(44);
  header.write('RIFF', 0, 'latin1');
  header.writeUInt32LE(36 + pcm.length, 4);
  header.write('WAVE', 8, 'latin1');
  header.write('fmt ', 12, 'latin1');
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20);
  header.writeUInt16LE(1, 22);
  header.writeUInt32LE(sampleRate, 24);
  header.writeUInt32LE(sampleRate * 2, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write('data', 36, 'latin1');
  header.writeUInt32LE(pcm.length, 40);
  return Buffer.concat([header, pcm]);
}

// A sine tone as LINEAR16 bytes.
function tone(frequencyHz, durationMs, sampleRate = 8000, amplitude = 8000) {
  const samples = Math.round((sampleRate * durationMs) / 1000);
  const pcm = Buffer.alloc(samples * 2);
  for (let i = 0; i < samples; i++) {
    pcm.writeInt16LE(Math.round(amplitude * Math.sin((2 * Math.PI * frequencyHz * i) / sampleRate)), i * 2);
  }
  return pcm;
}

module.exports = { parseWav, buildWav, tone };
