// Types for the audiosocket-bridge Node SDK. Messages are the proto's
// (audiosocket.bridge.v1) as plain objects: lowerCamelCase fields, enums as
// their names, bytes as Buffers, 64-bit integers as numbers.
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';

export { grpc };

export type Dialect = 'DIALECT_UNSPECIFIED' | 'DIALECT_ASTERISK' | 'DIALECT_EXTENDED';
export type AudioEncoding = 'AUDIO_ENCODING_UNSPECIFIED' | 'AUDIO_ENCODING_LINEAR16' | 'AUDIO_ENCODING_MULAW' | 'AUDIO_ENCODING_ALAW';
export type ResultCode =
  | 'RESULT_CODE_UNSPECIFIED' | 'RESULT_CODE_OK' | 'RESULT_CODE_INVALID_ARGUMENT' | 'RESULT_CODE_FAILED_PRECONDITION'
  | 'RESULT_CODE_UNSUPPORTED' | 'RESULT_CODE_RESOURCE_EXHAUSTED' | 'RESULT_CODE_CALL_ENDED' | 'RESULT_CODE_CANCELLED';
export type MarkResolution = 'MARK_RESOLUTION_UNSPECIFIED' | 'MARK_RESOLUTION_PLAYED' | 'MARK_RESOLUTION_CLEARED' | 'MARK_RESOLUTION_CALL_ENDED';
export type DtmfPhase = 'DTMF_PHASE_UNSPECIFIED' | 'DTMF_PHASE_BEGIN' | 'DTMF_PHASE_END' | 'DTMF_PHASE_END_ONLY';
export type DtmfSource = 'DTMF_SOURCE_UNSPECIFIED' | 'DTMF_SOURCE_SIGNALLED' | 'DTMF_SOURCE_INBAND';
export type PlayoutEventType =
  | 'PLAYOUT_EVENT_TYPE_UNSPECIFIED' | 'PLAYOUT_EVENT_TYPE_HIGH_WATERMARK' | 'PLAYOUT_EVENT_TYPE_LOW_WATERMARK'
  | 'PLAYOUT_EVENT_TYPE_UNDERRUN' | 'PLAYOUT_EVENT_TYPE_DRAINED';
export type CallEndReason =
  | 'CALL_END_REASON_UNSPECIFIED' | 'CALL_END_REASON_CALLER_HUNG_UP' | 'CALL_END_REASON_ASTERISK_ERROR'
  | 'CALL_END_REASON_BACKEND_HUNG_UP' | 'CALL_END_REASON_BACKEND_LOST' | 'CALL_END_REASON_PROTOCOL_ERROR'
  | 'CALL_END_REASON_ACCEPT_TIMEOUT' | 'CALL_END_REASON_CLAIM_TIMEOUT' | 'CALL_END_REASON_ALL_BACKENDS_REJECTED'
  | 'CALL_END_REASON_SHUTDOWN' | 'CALL_END_REASON_HANGUP_REQUESTED' | 'CALL_END_REASON_CALLER_UNRESPONSIVE'
  | 'CALL_END_REASON_CALLER_IDLE';
export type RejectReason = 'REJECT_REASON_UNSPECIFIED' | 'REJECT_REASON_BUSY' | 'REJECT_REASON_DECLINED';
/** A ControlType name, e.g. 'CONTROL_TYPE_ANSWER'. */
export type ControlType = string;

export interface Timestamp { seconds: number; nanos: number }
export interface CallStarted {
  callId: string; listener: string; dialect: Dialect; peerAddress: string;
  callSampleRateHz: number; backendSampleRateHz: number; callEncoding: AudioEncoding; startTime: Timestamp | null;
}
export interface AudioChunk { pcm: Buffer; sampleRateHz: number; sequenceNumber: number; offsetSamples: number }
export interface DtmfEvent { digit: string; phase: DtmfPhase; durationMs: number; source: DtmfSource; offsetSamples: number }
export interface ControlEvent { type: ControlType; rawCode: number }
export interface AsteriskError { flags: number; callerHangup: boolean; frameForwarding: boolean; memory: boolean; payload: Buffer }
export type CommandKind =
  | 'COMMAND_KIND_UNSPECIFIED' | 'COMMAND_KIND_ACCEPT' | 'COMMAND_KIND_REJECT' | 'COMMAND_KIND_CLAIM' | 'COMMAND_KIND_PLAY'
  | 'COMMAND_KIND_MARK' | 'COMMAND_KIND_CLEAR' | 'COMMAND_KIND_SEND_DTMF' | 'COMMAND_KIND_SEND_CONTROL' | 'COMMAND_KIND_HANGUP';
export interface CommandResult {
  commandId: string; code: ResultCode; message: string; command: CommandKind; backendSampleRateHz?: number;
  /** Added by the SDK: code === 'RESULT_CODE_OK'. */
  ok: boolean;
}
export interface MarkResolved { name: string; resolution: MarkResolution }
export interface ResponsePlayout { responseId: string; playedMs: number; discardedMs: number }
export interface ClearResult { commandId: string; responses: ResponsePlayout[]; discardedMs: number }
export interface PlayoutEvent { type: PlayoutEventType; bufferedMs: number; underruns: number; responseId: string }
export interface CallStats {
  framesFromCaller: number; framesToCaller: number; bytesFromCaller: number; bytesToCaller: number;
  inboundDroppedMs: number; playoutUnderruns: number; silenceFrames: number;
}
export interface CallEnded { reason: CallEndReason; detail: string; asteriskError: AsteriskError | null; stats: CallStats | null }

/** One event as the async iterator yields it; `event` names the member that is set. */
export type CallEvent =
  | { event: 'audio'; audio: AudioChunk }
  | { event: 'dtmf'; dtmf: DtmfEvent }
  | { event: 'control'; control: ControlEvent }
  | { event: 'result'; result: CommandResult }
  | { event: 'mark'; mark: MarkResolved }
  | { event: 'cleared'; cleared: ClearResult }
  | { event: 'playout'; playout: PlayoutEvent }
  | { event: 'ended'; ended: CallEnded };

export interface MediaOptions { sampleRateHz?: number; detectInbandDtmf?: boolean }
export type Pcm = Buffer | Int16Array | ArrayBufferView | ArrayBuffer;

/** A command the bridge refused (mark, clear). */
export class CommandError extends Error {
  constructor(result: CommandResult);
  result: CommandResult;
  code: ResultCode;
}

export interface BridgeCallEvents {
  audio: [AudioChunk]; dtmf: [DtmfEvent]; control: [ControlEvent];
  result: [CommandResult]; mark: [MarkResolved]; cleared: [ClearResult]; playout: [PlayoutEvent]; ended: [CallEnded];
}

/**
 * One call in either mode. Events are emitted a tick after they arrive. Once
 * the call ended, commands resolve with RESULT_CODE_CALL_ENDED, marks with
 * MARK_RESOLUTION_CALL_ENDED and clears with an empty ClearResult.
 */
export class BridgeCall extends EventEmitter implements AsyncIterable<CallEvent> {
  /** Calls come from BackendServer, BridgeClient.claim() and BridgeWorker. */
  private constructor();
  readonly mode: 'push' | 'pull';
  readonly started: CallStarted;
  readonly callId: string;
  readonly listener: string;
  readonly dialect: Dialect;
  readonly peerAddress: string;
  readonly callSampleRateHz: number;
  /** The backend rate: pull, from CallStarted; push, the rate the accept's result confirmed. */
  readonly sampleRateHz: number;
  readonly encoding: AudioEncoding;
  readonly startTime: Date | null;
  readonly isEnded: boolean;
  readonly endedEvent: CallEnded | null;
  /** Push: the stream's request headers (e.g. authorization). */
  readonly metadata?: grpc.Metadata;
  /** Resolves with CallEnded (a synthetic one, reason UNSPECIFIED, if the stream failed without it). */
  readonly done: Promise<CallEnded>;

  on<K extends keyof BridgeCallEvents>(event: K, listener: (...args: BridgeCallEvents[K]) => void): this;
  once<K extends keyof BridgeCallEvents>(event: K, listener: (...args: BridgeCallEvents[K]) => void): this;
  off<K extends keyof BridgeCallEvents>(event: K, listener: (...args: BridgeCallEvents[K]) => void): this;

  play(pcm: Pcm, options?: { responseId?: string; sampleRateHz?: number }): Promise<CommandResult>;
  /** Resolves when the caller heard everything queued before the mark (or it was cleared, or the call ended). */
  mark(name: string): Promise<MarkResolution>;
  clear(options?: { responseId?: string }): Promise<ClearResult>;
  sendDtmf(digits: string, options?: { toneMs?: number; gapMs?: number }): Promise<CommandResult>;
  sendControl(type: ControlType | number): Promise<CommandResult>;
  hangup(options?: { afterPlayout?: boolean }): Promise<CommandResult>;
  /** Push, from onCall: accept with these media options. */
  accept(media?: MediaOptions): Promise<CommandResult>;
  /** Push, from onCall: refuse the call. */
  reject(options?: { reason?: RejectReason; detail?: string }): void;
  /** Any CallCommand as a plain object, e.g. { mark: { name: 'm' } }. */
  send(command: Record<string, unknown>): Promise<CommandResult>;
  events(): AsyncIterableIterator<CallEvent>;
  [Symbol.asyncIterator](): AsyncIterableIterator<CallEvent>;
}

/**
 * Options besides onCall and media go to the grpc.Server (e.g.
 * 'grpc.keepalive_time_ms', interceptors). grpc-js's server sends its messages
 * uncompressed whatever they say.
 */
export interface BackendServerOptions extends grpc.ServerOptions {
  onCall: (call: BridgeCall) => unknown | Promise<unknown>;
  media?: MediaOptions;
}

/** Push mode: serves CallHandlerService; the bridge dials it once per call. */
export class BackendServer {
  constructor(options: BackendServerOptions);
  readonly server: grpc.Server;
  port?: number;
  listen(address?: string, credentials?: grpc.ServerCredentials): Promise<number>;
  close(): Promise<void>;
}

export interface ClientOptions extends grpc.ChannelOptions {
  /** Sent as `authorization: Bearer TOKEN` on every RPC. */
  token?: string;
}

export interface CallInfo {
  callId: string; listener: string; dialect: Dialect; peerAddress: string; callSampleRateHz: number; state: string; startTime: Timestamp | null;
}

export type ClaimPromise = Promise<BridgeCall> & { cancel(): void };

/** Pull mode, one bridge address. */
export class BridgeClient {
  constructor(target: string, credentials?: grpc.ChannelCredentials, options?: ClientOptions);
  claim(options?: { callId?: string; listener?: string; media?: MediaOptions }): ClaimPromise;
  listCalls(options?: { listener?: string }): Promise<CallInfo[]>;
  hangupCall(callId: string): Promise<void>;
  watchCalls(options?: { listener?: string }): grpc.ClientReadableStream<unknown>;
  close(): void;
}

export interface ResolvedAddress { host: string; address: string; port: number; key?: string }

export interface WorkerOptions {
  /** Runs once per call (may be async); a throw hangs the call up. */
  onCall: (call: BridgeCall) => unknown | Promise<unknown>;
  /** Calls each bridge address may hand this worker at once (4). */
  claimsPerAddress?: number;
  /** How often the target is resolved again, in ms (30000). */
  reresolveMs?: number;
  credentials?: grpc.ChannelCredentials;
  token?: string;
  listener?: string;
  media?: MediaOptions;
  resolver?: (target: string) => Promise<ResolvedAddress[]>;
  backoffMinMs?: number;
  backoffMaxMs?: number;
  log?: (level: 'debug' | 'warn' | 'error', message: string) => void;
  /**
   * grpc-js options for the channel to every address (e.g.
   * 'grpc.default_compression_algorithm': 2 gzips what the worker sends,
   * 'grpc.keepalive_time_ms'); they win over the TLS name options the worker
   * sets for a resolved name.
   */
  channelOptions?: grpc.ChannelOptions;
}

/** An error that stops a worker: `code` is the gRPC status. */
export interface StatusError extends Error { code: number; details?: string }

/** Pull mode across replicas: claims on every address of the target. */
export class BridgeWorker {
  constructor(target: string, options: WorkerOptions);
  /** Resolves on close(); rejects with the permanent error that stopped the worker. */
  readonly done: Promise<void>;
  start(): this;
  addresses(): string[];
  close(): void;
}

/** 'host:port' or a comma-separated list; each host to all its addresses. */
export function resolveAll(target: string): Promise<ResolvedAddress[]>;
/** UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED, FAILED_PRECONDITION, INVALID_ARGUMENT. */
export function isPermanent(err: unknown): boolean;
export function loadProto(): any;

export interface WireMessage {
  kind: 'hangup' | 'uuid' | 'dtmf_digit' | 'dtmf' | 'control' | 'audio' | 'error' | 'unknown';
  type?: number; uuid?: string; digit?: string; state?: 'start' | 'stop'; durationMs?: number;
  code?: number; rate?: number; payload?: Buffer;
}
export const wire: {
  Decoder: new (options?: { dialect?: 'asterisk' | 'extended'; unknown?: 'reject' | 'skip' | 'keep'; maxPayload?: number; bytesPerSample?: 1 | 2 }) => {
    push(bytes: Buffer): WireMessage[];
    end(): void;
  };
  encode(message: WireMessage, options?: { dialect?: 'asterisk' | 'extended'; peer?: 'asterisk' | 'server' }): Buffer;
  kindName(type: number, dialect?: string): string;
  controlName(code: number): string;
  errorFlagNames(flags: number): string[];
  messages: Record<string, (...args: any[]) => WireMessage>;
  [name: string]: unknown;
};
export const wav: {
  parseWav(bytes: Buffer): { sampleRate: number; channels: number; bitsPerSample: number; pcm: Buffer };
  buildWav(pcm: Buffer, sampleRate: number): Buffer;
  tone(frequencyHz: number, durationMs: number, sampleRate?: number, amplitude?: number): Buffer;
};
