'use strict';
// Helpers shared by the push server, the client and the worker.
const grpc = require('@grpc/grpc-js');

// Waits for a stream's first event, which must be CallStarted.
function firstEvent(stream, unwrap) {
  return new Promise((resolve, reject) => {
    const onData = (message) => {
      cleanup();
      const event = unwrap(message);
      if (event && event.event === 'started') resolve(event.started);
      else reject(new Error(`expected CallStarted first, got ${event ? event.event : 'nothing'}`));
    };
    const onError = (err) => {
      cleanup();
      reject(err);
    };
    const onEnd = () => {
      cleanup();
      reject(new Error('the stream ended before CallStarted'));
    };
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('error', onError);
      stream.off('end', onEnd);
    };
    stream.on('data', onData);
    stream.on('error', onError);
    stream.on('end', onEnd);
  });
}

// Feeds a stream's remaining events to the call.
function attach(call, stream, unwrap) {
  stream.on('data', (message) => {
    const event = unwrap(message);
    if (event && event.event) call._receive(event);
  });
  stream.on('error', (err) => call._lost(`stream failed: ${err.message}`));
  stream.on('end', () => call._lost('the stream ended without CallEnded'));
  stream.on('close', () => call._lost('the stream closed without CallEnded'));
}

// Metadata carrying `authorization: Bearer TOKEN` (none without a token).
function bearer(token) {
  const md = new grpc.Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return md;
}

module.exports = { firstEvent, attach, bearer };
