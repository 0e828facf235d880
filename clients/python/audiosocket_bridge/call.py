"""One call: its metadata, its events as an async iterator, and its commands."""

from __future__ import annotations

import asyncio
import collections
import itertools
import math
from typing import AsyncIterator, Awaitable, Callable, Optional, Union

import grpc

from .v1 import bridge_pb2 as pb

# What iterating a Call yields: the CallEvent payloads, as protobuf messages.
Event = Union[
    pb.AudioChunk,
    pb.DtmfEvent,
    pb.ControlEvent,
    pb.CommandResult,
    pb.MarkResolved,
    pb.ClearResult,
    pb.PlayoutEvent,
    pb.CallEnded,
]


class CommandError(Exception):
    """A command's CommandResult was not OK. .result is the CommandResult."""

    def __init__(self, result: pb.CommandResult):
        self.result = result
        self.code = result.code
        super().__init__(
            f"{_command_name(result.command)} {result.command_id}: "
            f"{pb.ResultCode.Name(result.code)}: {result.message}"
        )


def _command_name(kind: int) -> str:
    """The command's name as in CallCommand ("play", "send_dtmf", ...), or "command"."""
    if kind == pb.COMMAND_KIND_UNSPECIFIED:
        return "command"
    try:
        return pb.CommandKind.Name(kind).removeprefix("COMMAND_KIND_").lower()
    except ValueError:  # a kind newer than this SDK
        return "command"


def _command_kind(command: pb.CallCommand) -> int:
    """The CommandKind of the command a CallCommand carries."""
    which = command.WhichOneof("command")
    return pb.CommandKind.Value("COMMAND_KIND_" + which.upper()) if which else pb.COMMAND_KIND_UNSPECIFIED


def _audio_buffer(seconds: float) -> float:
    """An audio_buffer option, checked: a positive, finite number of seconds."""
    if not 0 < seconds < math.inf:
        raise ValueError(f"audio_buffer must be a positive number of seconds, not {seconds!r}")
    return float(seconds)


def _audio_ns(chunk: pb.AudioChunk) -> int:
    """How long the chunk plays, in nanoseconds (LINEAR16: 2 bytes a sample)."""
    if not chunk.sample_rate_hz:
        return 0
    return len(chunk.pcm) // 2 * 1_000_000_000 // chunk.sample_rate_hz


class _Events:
    """A call's events waiting for the reader.

    Caller audio in it is bounded by duration: past the bound the oldest
    AudioChunk goes, as the bridge does for a slow backend, so a handler that
    stops reading (awaiting a long command, say) loses audio rather than
    memory. Other events stay: they are few, and losing one changes what the
    call means. None, put after CallEnded, is never taken out, so every later
    get() returns it."""

    def __init__(self, audio_buffer: float):
        self._items: collections.deque = collections.deque()
        self._bound_ns = round(audio_buffer * 1_000_000_000)
        self._audio_ns = 0  # of the AudioChunks in _items; integers, so no drift
        self.dropped_audio = 0
        self._added = asyncio.Event()

    def put(self, event: Optional[Event]) -> None:
        self._items.append(event)
        if isinstance(event, pb.AudioChunk):
            self._audio_ns += _audio_ns(event)
            while self._audio_ns > self._bound_ns:
                oldest = next(i for i, e in enumerate(self._items) if isinstance(e, pb.AudioChunk))
                if oldest == len(self._items) - 1:
                    break  # the newest chunk stays, even one longer than the bound
                self._audio_ns -= _audio_ns(self._items[oldest])
                del self._items[oldest]
                self.dropped_audio += 1
        self._added.set()

    async def get(self) -> Optional[Event]:
        while not self._items:
            self._added.clear()
            await self._added.wait()
        if self._items[0] is None:
            return None
        event = self._items.popleft()
        if isinstance(event, pb.AudioChunk):
            self._audio_ns -= _audio_ns(event)
        return event


class _Link:
    """The two ends a Call talks through: push (server stream) or pull (client stream)."""

    async def send(self, command: pb.CallCommand) -> None: ...
    async def send_message(self, message) -> None: ...  # HandleCallResponse (push) or ClaimCallRequest (pull)
    async def recv(self) -> Optional[pb.CallEvent]: ...  # None at the end of the stream
    async def close(self) -> None: ...


class _StreamLink(_Link):
    """A Call's RPC stream; send() wraps each command in the RPC's message type."""

    def __init__(self, stream, wrap):
        self._stream = stream  # the push servicer's context or the pull call: both read and write
        self._wrap = wrap

    async def send(self, command):
        await self.send_message(self._wrap(command=command))

    async def send_message(self, message):
        await self._stream.write(message)

    async def recv(self):
        message = await self._stream.read()
        if message is grpc.aio.EOF:
            return None
        return message.event

    async def close(self):
        pass  # push: returning from the handler finishes the RPC


class _PushLink(_StreamLink):
    def __init__(self, context: grpc.aio.ServicerContext):
        super().__init__(context, pb.HandleCallResponse)


class _PullLink(_StreamLink):
    def __init__(self, stream):
        super().__init__(stream, pb.ClaimCallRequest)

    async def close(self):
        try:
            await self._stream.done_writing()
        except Exception:  # already finished
            pass


class Call:
    """A call the backend holds (accepted in push mode, claimed in pull mode).

    Metadata: .started (the CallStarted message) and shortcuts .call_id,
    .listener, .dialect, .sample_rate_hz. Events: ``async for event in call``
    yields AudioChunk, DtmfEvent, ControlEvent, MarkResolved, PlayoutEvent,
    AsteriskError, ... and finally CallEnded, then stops. Answers to this
    object's own commands are returned by the command methods, not yielded.

    Caller audio waiting to be read is bounded (audio_buffer seconds of it,
    1 by default, like the bridge's --backend_queue_ms; set it with serve()
    or BridgeClient): when the reader falls behind, the oldest AudioChunk is
    dropped (a gap in offset_samples, counted by .dropped_audio), as the
    bridge does for a slow backend. Other events are never dropped, and
    command results never wait for the reader.

    Every command method sends the command with a fresh command_id, waits for
    its answer and returns it (CommandResult, or ClearResult for clear); it
    raises CommandError when the answer is not OK. The end of a call is a
    normal event, not an exception: once the call has ended (the caller hung
    up, or the handler did and keeps playing) every command returns a
    CommandResult with code RESULT_CODE_CALL_ENDED, and CallEnded is still
    the last event of the iteration. An exception from a command means the
    stream to the bridge broke (the transport's error).
    """

    def __init__(self, started: pb.CallStarted, link: _Link, audio_buffer: float = 1.0):
        self.started = started
        self.ended: Optional[pb.CallEnded] = None
        self._link = link
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future] = {}
        self._events = _Events(_audio_buffer(audio_buffer))
        self._send_lock = asyncio.Lock()
        self._done = asyncio.Event()
        self._reader: Optional[asyncio.Task] = None
        self._lost: Optional[BaseException] = None  # the stream failed without CallEnded
        self._marks: dict[str, collections.deque] = {}  # name -> futures of waiting mark() calls
        # Push: the rate the accept's result confirmed (0 until then).
        self._accepted_rate_hz = 0

    # -------------------------------------------------------------- metadata

    @property
    def call_id(self) -> str:
        return self.started.call_id

    @property
    def listener(self) -> str:
        return self.started.listener

    @property
    def dialect(self) -> str:
        """ "asterisk" or "extended"."""
        return "extended" if self.started.dialect == pb.DIALECT_EXTENDED else "asterisk"

    @property
    def sample_rate_hz(self) -> int:
        """The rate of audio exchanged with this backend (in push mode, as the
        accept's result confirmed it)."""
        return (
            self._accepted_rate_hz or self.started.backend_sample_rate_hz or self.started.call_sample_rate_hz
        )

    @property
    def dropped_audio(self) -> int:
        """How many AudioChunks were dropped because the events were not read
        in time."""
        return self._events.dropped_audio

    def __repr__(self) -> str:
        return f"Call({self.call_id}, listener={self.listener!r}, {self.dialect}, {self.sample_rate_hz} Hz)"

    # -------------------------------------------------------------- events

    def _start(self) -> None:
        self._reader = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self) -> None:
        try:
            while True:
                event = await self._link.recv()
                if event is None:
                    break
                self._dispatch(event)
                if self.ended is not None:
                    break
        except (grpc.aio.AioRpcError, asyncio.CancelledError) as e:
            if self.ended is None:
                detail = e.details() if isinstance(e, grpc.aio.AioRpcError) else "cancelled"
                self._end(pb.CallEnded(reason=pb.CALL_END_REASON_BACKEND_LOST, detail=f"stream failed: {detail}"),
                          lost=e if isinstance(e, grpc.aio.AioRpcError) else ConnectionError(detail))
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            if self.ended is None:
                self._end(pb.CallEnded(reason=pb.CALL_END_REASON_BACKEND_LOST, detail="the stream ended without CallEnded"))

    def _dispatch(self, event: pb.CallEvent) -> None:
        which = event.WhichOneof("event")
        if which is None:
            return
        payload = getattr(event, which)
        if which == "result" and payload.command_id in self._pending:
            future = self._pending.pop(payload.command_id)
            if not future.done():
                future.set_result(payload)
            return
        if which == "cleared" and payload.command_id in self._pending:
            future = self._pending.pop(payload.command_id)
            if not future.done():
                future.set_result(payload)
            return
        if which == "ended":
            self._end(payload)
            return
        if which == "mark":
            waiting = self._marks.get(payload.name)
            if waiting:
                future = waiting.popleft()
                if not waiting:
                    del self._marks[payload.name]
                if not future.done():
                    future.set_result(payload.resolution)
        self._events.put(payload)

    def _end(self, ended: pb.CallEnded, lost: Optional[BaseException] = None) -> None:
        self.ended = ended
        self._lost = lost
        for command_id, future in self._pending.items():
            if future.done():
                continue
            if lost is not None:
                future.set_exception(lost)
            else:
                future.set_result(
                    pb.CommandResult(
                        command_id=command_id,
                        code=pb.RESULT_CODE_CALL_ENDED,
                        message=f"the call ended ({pb.CallEndReason.Name(ended.reason)}) before an answer",
                        command=getattr(future, "command", pb.COMMAND_KIND_UNSPECIFIED),
                    )
                )
        self._pending.clear()
        for waiting in self._marks.values():
            for future in waiting:
                if not future.done():
                    future.set_result(pb.MARK_RESOLUTION_CALL_ENDED)
        self._marks.clear()
        self._events.put(ended)
        self._events.put(None)
        self._done.set()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    async def next_event(self, timeout: Optional[float] = None) -> Optional[Event]:
        """The next event (None after CallEnded); asyncio.TimeoutError after timeout."""
        return await asyncio.wait_for(self._events.get(), timeout)

    async def wait_ended(self, timeout: Optional[float] = None) -> pb.CallEnded:
        """Waits for CallEnded (without consuming events) and returns it."""
        await asyncio.wait_for(self._done.wait(), timeout)
        return self.ended

    # -------------------------------------------------------------- commands

    def _ended_result(self, command_id: str, which: int) -> pb.CommandResult:
        reason = pb.CallEndReason.Name(self.ended.reason) if self.ended is not None else "?"
        return pb.CommandResult(command_id=command_id, code=pb.RESULT_CODE_CALL_ENDED,
                                message=f"the call has ended ({reason})", command=which)

    async def send(self, command: pb.CallCommand) -> Union[pb.CommandResult, pb.ClearResult]:
        """Sends any CallCommand with a fresh command_id and returns its answer
        without raising on a failed code (RESULT_CODE_CALL_ENDED once the call
        has ended). Raises only when the stream to the bridge broke."""
        async def write(command_id: str) -> None:
            command.command_id = command_id
            await self._link.send(command)

        return await self._exchange(_command_kind(command), write)

    async def _exchange(self, which: int, write: Callable[[str], Awaitable[None]]) -> Union[pb.CommandResult, pb.ClearResult]:
        """Sends one command with a fresh command_id (write(command_id) sets
        it and writes the message) and returns its answer, as send() does."""
        command_id = f"c{next(self._ids)}"
        if self.ended is not None:
            return self._ended_result(command_id, which)
        future = asyncio.get_running_loop().create_future()
        future.command = which
        self._pending[command_id] = future
        try:
            async with self._send_lock:
                await write(command_id)
        except Exception as e:
            # The stream is over: the reader tells whether the bridge ended
            # the call (a normal end) or the stream broke.
            self._pending.pop(command_id, None)
            try:
                await asyncio.wait_for(self._done.wait(), 5.0)
            except asyncio.TimeoutError:
                raise e from None
            if self._lost is not None:
                raise self._lost from e
            return self._ended_result(command_id, which)
        return await future

    async def _checked(self, command: pb.CallCommand):
        return self._raise_failed(await self.send(command))

    async def _accept(self, media: Optional[pb.MediaOptions]) -> pb.CommandResult:
        """Push: sends AcceptCall (not a CallCommand: it has its own
        command_id) and returns its result."""

        async def write(command_id: str) -> None:
            await self._link.send_message(pb.HandleCallResponse(accept=pb.AcceptCall(media=media, command_id=command_id)))

        return self._raise_failed(await self._exchange(pb.COMMAND_KIND_ACCEPT, write))

    @staticmethod
    def _raise_failed(answer):
        if isinstance(answer, pb.CommandResult) and answer.code not in (pb.RESULT_CODE_OK, pb.RESULT_CODE_CALL_ENDED):
            raise CommandError(answer)
        return answer

    async def play(self, pcm: bytes, response_id: str = "", sample_rate_hz: int = 0) -> pb.CommandResult:
        """Queues LINEAR16 audio for the caller (any length, even bytes)."""
        return await self._checked(
            pb.CallCommand(play=pb.PlayAudio(pcm=pcm, response_id=response_id, sample_rate_hz=sample_rate_hz))
        )

    async def mark(self, name: str) -> int:
        """Queues a mark after the audio queued so far and waits until the
        caller has heard up to it. Returns the pb.MarkResolution:
        MARK_RESOLUTION_PLAYED, MARK_RESOLUTION_CLEARED (a clear removed it) or
        MARK_RESOLUTION_CALL_ENDED (also at once on a call that has ended).
        The MarkResolved event is delivered too. Safe to await inside the
        handler (the resolution does not wait for events to be read); while
        it waits, unread audio beyond the audio buffer is dropped, so to keep
        reading events meanwhile, run it as a task."""
        if self.ended is not None:
            return pb.MARK_RESOLUTION_CALL_ENDED
        future = asyncio.get_running_loop().create_future()
        self._marks.setdefault(name, collections.deque()).append(future)  # before sending: it may resolve quickly
        try:
            answer = await self._checked(pb.CallCommand(mark=pb.Mark(name=name)))
        except CommandError:
            waiting = self._marks.get(name)
            if waiting is not None and future in waiting:
                waiting.remove(future)  # refused: no resolution will come
                if not waiting:
                    del self._marks[name]
            raise
        if answer.code == pb.RESULT_CODE_CALL_ENDED:
            return pb.MARK_RESOLUTION_CALL_ENDED
        # Shielded: a cancelled wait leaves the future queued, so the next
        # resolution of this name still pairs with this mark.
        return await asyncio.shield(future)

    async def clear(self, response_id: str = "") -> pb.ClearResult:
        """Discards queued audio (one response's, or all); returns what was played
        and discarded per response. MarkResolved(CLEARED) events follow."""
        return await self._checked(pb.CallCommand(clear=pb.ClearAudio(response_id=response_id)))

    async def send_dtmf(self, digits: str, tone_ms: int = 0, gap_ms: int = 0) -> pb.CommandResult:
        """DTMF toward the caller; returns when the last tone has played."""
        return await self._checked(pb.CallCommand(send_dtmf=pb.SendDtmf(digits=digits, tone_ms=tone_ms, gap_ms=gap_ms)))

    async def send_control(self, control_type: int = 0, raw_code: int = 0) -> pb.CommandResult:
        """A control signal toward Asterisk (extended dialect only)."""
        return await self._checked(pb.CallCommand(send_control=pb.SendControl(type=control_type, raw_code=raw_code)))

    async def hangup(self, after_playout: bool = False) -> pb.CommandResult:
        """Ends the call (after the queued audio when after_playout). Returns OK
        once the bridge answered or the call ended because of it, a
        RESULT_CODE_CALL_ENDED result when it had ended otherwise."""
        answer = await self._checked(pb.CallCommand(hangup=pb.Hangup(after_playout=after_playout)))
        if answer.code == pb.RESULT_CODE_CALL_ENDED and self.ended is not None:
            if self.ended.reason == pb.CALL_END_REASON_BACKEND_HUNG_UP:
                return pb.CommandResult(command_id=answer.command_id, code=pb.RESULT_CODE_OK,
                                        command=pb.COMMAND_KIND_HANGUP)
        return answer

    # -------------------------------------------------------------- ending

    async def _finish(self, timeout: float = 5.0) -> None:
        """After the handler: hang up if the call is still up, then close."""
        if self.ended is None:
            try:
                await asyncio.wait_for(self.hangup(), timeout)
            except (CommandError, asyncio.TimeoutError, grpc.aio.AioRpcError, ConnectionError):
                pass
            try:
                await asyncio.wait_for(self._done.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        await self._link.close()
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass


Handler = Callable[[Call], Awaitable[None]]
