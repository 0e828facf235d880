"""The SDK against the real bridge binary, in push and pull mode, with a
scripted Asterisk built on the SDK's wire codec."""

from __future__ import annotations

import asyncio
import struct

import grpc
import pytest

from audiosocket_bridge import BridgeClient, Call, ClaimEnded, CommandError, pb, serve, wire

from support import WAIT, BridgeProcess, ScriptedAsterisk, numbered_frame

UUID = "40325ec2-5efd-4bd3-805f-53576e581d13"


class Backend:
    """The test's backend in one mode; next_call() returns the SDK's Call."""

    def __init__(self, mode: str):
        self.mode = mode
        self.bridge: BridgeProcess | None = None
        self.server = None
        self.client: BridgeClient | None = None
        self.calls: asyncio.Queue[Call] = asyncio.Queue()
        self._claim: asyncio.Task | None = None

    async def start(self, *flags: str, listen: str = "127.0.0.1:0",
                    compression: grpc.Compression | None = None) -> BridgeProcess:
        flags = (*flags, "--drain_timeout=200ms")
        if self.mode == "push":
            async def handler(call: Call) -> None:
                await self.calls.put(call)
                await call.wait_ended()

            self.server = await serve(handler, "127.0.0.1:0", compression=compression)
            self.bridge = BridgeProcess(f"--backend={self.server.target}", *flags, listen=listen)
        else:
            self.bridge = BridgeProcess("--mode=pull", *flags, listen=listen)
            channel = None
            if compression is not None:
                channel = grpc.aio.insecure_channel(self.bridge.grpc_target, compression=compression)
            self.client = BridgeClient(self.bridge.grpc_target, channel)
            self._claim = asyncio.create_task(self.client.claim())
        return self.bridge

    async def next_call(self) -> Call:
        if self.mode == "push":
            return await asyncio.wait_for(self.calls.get(), WAIT)
        return await asyncio.wait_for(self._claim, WAIT)

    async def close(self) -> None:
        if self._claim is not None and not self._claim.done():
            self._claim.cancel()
        if self.bridge is not None:
            self.bridge.stop()
        if self.server is not None:
            await self.server.stop(0.5)
        if self.client is not None:
            await self.client.close()


@pytest.fixture(params=["push", "pull"])
async def backend(request):
    b = Backend(request.param)
    yield b
    await b.close()


async def connect(backend: Backend, dialect: str = wire.ASTERISK) -> tuple[ScriptedAsterisk, Call]:
    asterisk = ScriptedAsterisk(dialect)
    await asterisk.connect(backend.bridge.audiosocket_port)
    await asterisk.send(wire.Uuid(UUID))
    await asterisk.send(wire.Audio(8000, numbered_frame(0)))
    return asterisk, await backend.next_call()


async def next_of(call: Call, kind, timeout: float = WAIT):
    """The next event of type `kind`, skipping others."""
    async def find():
        async for event in call:
            if isinstance(event, kind):
                return event
        raise AssertionError(f"the call ended before a {kind.__name__}: {call.ended}")

    return await asyncio.wait_for(find(), timeout)


def samples(pcm: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


async def test_call_metadata(backend):
    await backend.start()
    asterisk, call = await connect(backend)
    assert call.call_id == UUID
    assert call.listener == "default"
    assert call.dialect == "asterisk"
    assert call.sample_rate_hz == 8000
    assert call.started.call_sample_rate_hz == 8000
    assert call.started.peer_address.startswith("127.0.0.1:")
    asterisk.close()


async def test_audio_arrives_in_order_with_offsets(backend):
    await backend.start()
    asterisk, call = await connect(backend)
    for i in range(1, 10):
        await asterisk.send(wire.Audio(8000, numbered_frame(i)))
    for i in range(10):
        chunk = await next_of(call, pb.AudioChunk)
        assert (chunk.sequence_number, chunk.offset_samples, chunk.sample_rate_hz) == (i, i * 160, 8000)
        assert chunk.pcm == numbered_frame(i)
    asterisk.close()


async def test_echo_is_byte_exact(backend):
    await backend.start()
    asterisk, call = await connect(backend)
    sent = numbered_frame(0)
    for i in range(1, 25):
        sent += numbered_frame(i)
        await asterisk.send(wire.Audio(8000, numbered_frame(i)))
    for _ in range(25):
        chunk = await next_of(call, pb.AudioChunk)
        result = await call.play(chunk.pcm, response_id="echo")
        assert result.code == pb.RESULT_CODE_OK
    heard = b""
    while len(heard) < len(sent):
        message = await asterisk.read()
        assert message is not None, "the bridge closed the socket"
        if not isinstance(message, wire.Audio):
            continue
        assert message.rate == 8000 and len(message.payload) == 320, "20 ms frames at 8 kHz"
        if not heard and message.payload == bytes(320):
            continue  # leading silence
        heard += message.payload
    assert heard[: len(sent)] == sent
    asterisk.close()


@pytest.mark.parametrize("mode", ["push", "pull"])
async def test_a_backend_that_compresses_its_messages_is_served(mode):
    """grpcio's gzip on the worker's channel or the push backend's server
    (some deployments set it for every service): the bridge reads the
    compressed stream as gRPC's own servers and clients do. (grpcio's server
    compresses only what the bridge lists in grpc-accept-encoding.)"""
    backend = Backend(mode)
    try:
        await backend.start(compression=grpc.Compression.Gzip)
        asterisk, call = await connect(backend)
        chunk = await next_of(call, pb.AudioChunk)
        assert chunk.pcm == numbered_frame(0)
        # A square wave: compresses to a fraction, so grpcio does send it compressed.
        prompt = (struct.pack("<h", 8000) * 40 + struct.pack("<h", -8000) * 40) * 20
        result = await call.play(prompt, response_id="prompt")
        assert result.code == pb.RESULT_CODE_OK
        heard = b""
        while len(heard) < len(prompt):
            message = await asyncio.wait_for(asterisk.read(), WAIT)
            assert message is not None, "the bridge closed the socket"
            if not isinstance(message, wire.Audio) or (not heard and message.payload == bytes(320)):
                continue
            heard += message.payload
        assert heard[: len(prompt)] == prompt
        asterisk.close()
    finally:
        await backend.close()


async def test_asterisk_dtmf_digit_reaches_the_backend(backend):
    await backend.start()
    asterisk, call = await connect(backend)
    await asterisk.send(wire.DtmfDigit("7"))
    dtmf = await next_of(call, pb.DtmfEvent)
    assert dtmf.digit == "7"
    assert dtmf.phase == pb.DTMF_PHASE_END_ONLY
    assert dtmf.source == pb.DTMF_SOURCE_SIGNALLED
    assert dtmf.offset_samples == 160
    asterisk.close()


async def test_extended_dtmf_begin_and_end(backend):
    await backend.start(listen="127.0.0.1:0,dialect=extended,name=ext")
    asterisk, call = await connect(backend, wire.EXTENDED)
    assert call.dialect == "extended" and call.listener == "ext"
    await asterisk.send(wire.Dtmf(True, "#"))
    await asterisk.send(wire.Dtmf(False, "#", 120))
    begin = await next_of(call, pb.DtmfEvent)
    end = await next_of(call, pb.DtmfEvent)
    assert (begin.digit, begin.phase) == ("#", pb.DTMF_PHASE_BEGIN)
    assert (end.digit, end.phase, end.duration_ms) == ("#", pb.DTMF_PHASE_END, 120)
    asterisk.close()


async def test_extended_send_dtmf_reaches_the_caller_as_start_stop(backend):
    await backend.start(listen="127.0.0.1:0,dialect=extended")
    asterisk, call = await connect(backend, wire.EXTENDED)
    sending = asyncio.create_task(call.send_dtmf("12", tone_ms=80, gap_ms=60))
    seen = []
    while len(seen) < 4:
        message = await asterisk.read()
        assert message is not None
        if isinstance(message, wire.Dtmf):
            seen.append(message)
    assert seen == [
        wire.Dtmf(True, "1", 0), wire.Dtmf(False, "1", 80),
        wire.Dtmf(True, "2", 0), wire.Dtmf(False, "2", 80),
    ]  # fmt: skip
    result = await asyncio.wait_for(sending, WAIT)
    assert result.code == pb.RESULT_CODE_OK and result.command == pb.COMMAND_KIND_SEND_DTMF
    asterisk.close()


async def test_extended_control_both_ways(backend):
    await backend.start(listen="127.0.0.1:0,dialect=extended")
    asterisk, call = await connect(backend, wire.EXTENDED)
    await asterisk.send(wire.Control(16))
    control = await next_of(call, pb.ControlEvent)
    assert (control.type, control.raw_code) == (pb.CONTROL_TYPE_HOLD, 16)
    await call.send_control(pb.CONTROL_TYPE_ANSWER)
    while not isinstance(message := await asterisk.read(), wire.Control):
        assert message is not None
    assert message.code == 4 and message.name == "answer"
    asterisk.close()


async def test_asterisk_dialect_refuses_control(backend):
    await backend.start()
    asterisk, call = await connect(backend)
    with pytest.raises(CommandError) as info:
        await call.send_control(pb.CONTROL_TYPE_ANSWER)
    assert info.value.code == pb.RESULT_CODE_UNSUPPORTED
    assert "extended" in str(info.value)
    asterisk.close()


async def test_invalid_play_raises_and_keeps_the_call(backend):
    await backend.start()
    asterisk, call = await connect(backend)
    with pytest.raises(CommandError) as info:
        await call.play(b"\x00\x00\x00")
    assert info.value.code == pb.RESULT_CODE_INVALID_ARGUMENT
    assert (await call.play(b"\x09\x00" * 160)).code == pb.RESULT_CODE_OK
    asterisk.close()


async def test_mark_waits_until_the_caller_heard_it(backend):
    # Awaited without reading events (as inside a handler's loop); the event follows too.
    await backend.start()
    asterisk, call = await connect(backend)

    async def caller_hears() -> int:
        heard = 0
        while heard < 8000:
            message = await asterisk.read()
            assert message is not None
            if isinstance(message, wire.Audio):
                heard += samples(message.payload).count(1000)
        return heard

    hearing = asyncio.create_task(caller_hears())
    start = asyncio.get_running_loop().time()
    await call.play(struct.pack("<h", 1000) * 8000, "r1")  # 1 s
    assert await asyncio.wait_for(call.mark("m1"), WAIT) == pb.MARK_RESOLUTION_PLAYED
    assert asyncio.get_running_loop().time() - start >= 0.9, "resolved before 1 s of audio could play"
    assert await asyncio.wait_for(hearing, WAIT) == 8000
    mark = await next_of(call, pb.MarkResolved)
    assert (mark.name, mark.resolution) == ("m1", pb.MARK_RESOLUTION_PLAYED)
    asterisk.close()


async def test_clear_accounts_played_and_discarded_per_response(backend):
    await backend.start()
    asterisk, call = await connect(backend)
    await call.play(struct.pack("<h", 500) * 16000, "r1")  # 2 s
    mark = asyncio.create_task(call.mark("after-r1"))  # resolves when the clear removes it
    await asyncio.sleep(0)  # the mark goes out before r2
    await call.play(struct.pack("<h", 700) * 8000, "r2")  # 1 s
    heard_r1 = 0
    while heard_r1 < 8 * 160:
        message = await asterisk.read()
        assert message is not None
        if isinstance(message, wire.Audio):
            heard_r1 += samples(message.payload).count(500)
    cleared = await call.clear()
    assert isinstance(cleared, pb.ClearResult)
    r1, r2 = cleared.responses
    assert r1.response_id == "r1" and r1.played_ms + r1.discarded_ms == 2000 and r1.played_ms >= 160
    assert (r2.response_id, r2.played_ms, r2.discarded_ms) == ("r2", 0, 1000)
    assert cleared.discarded_ms == r1.discarded_ms + 1000
    assert await asyncio.wait_for(mark, WAIT) == pb.MARK_RESOLUTION_CLEARED
    # The mark the clear discarded resolves after the ClearResult.
    mark = await next_of(call, pb.MarkResolved)
    assert (mark.name, mark.resolution) == ("after-r1", pb.MARK_RESOLUTION_CLEARED)
    # What the caller heard matches the account exactly.
    for message in await asterisk.read_for(0.5):
        if isinstance(message, wire.Audio):
            heard_r1 += samples(message.payload).count(500)
            assert 700 not in samples(message.payload), "r2 was cleared before it started"
    assert heard_r1 == r1.played_ms * 8
    asterisk.close()


async def test_clear_of_one_response_keeps_the_others(backend):
    await backend.start()
    asterisk, call = await connect(backend)
    await call.play(struct.pack("<h", 500) * 1600, "keep")
    await call.play(struct.pack("<h", 700) * 1600, "drop")
    cleared = await call.clear("drop")
    assert [(r.response_id, r.discarded_ms) for r in cleared.responses] == [("drop", 200)]
    kept = 0
    for message in await asterisk.read_for(0.6):
        if isinstance(message, wire.Audio):
            kept += samples(message.payload).count(500)
            assert 700 not in samples(message.payload)
    assert kept == 1600
    asterisk.close()


async def test_backend_hangup(backend):
    await backend.start()
    asterisk, call = await connect(backend)
    result = await call.hangup()
    assert result.code == pb.RESULT_CODE_OK
    ended = await call.wait_ended(WAIT)
    assert ended.reason == pb.CALL_END_REASON_BACKEND_HUNG_UP
    assert await asterisk.wait_closed()
    assert any(isinstance(m, wire.Hangup) for m in asterisk.received), "0x00 before the close"


async def test_hangup_after_playout_plays_queued_audio_first(backend):
    await backend.start()
    asterisk, call = await connect(backend)
    await call.play(struct.pack("<h", 321) * 1600, "bye")
    await call.hangup(after_playout=True)
    assert await asterisk.wait_closed()
    audio = b"".join(m.payload for m in asterisk.received if isinstance(m, wire.Audio))
    assert samples(audio).count(321) == 1600
    assert isinstance(asterisk.received[-1], wire.Hangup)
    assert (await call.wait_ended(WAIT)).reason == pb.CALL_END_REASON_BACKEND_HUNG_UP


async def test_caller_hangup_ends_the_event_stream(backend):
    await backend.start()
    asterisk, call = await connect(backend)
    await asterisk.send(wire.Hangup())
    events = []

    async def drain():
        async for event in call:
            events.append(event)

    await asyncio.wait_for(drain(), WAIT)
    assert isinstance(events[-1], pb.CallEnded)
    assert events[-1].reason == pb.CALL_END_REASON_CALLER_HUNG_UP
    # The end is a normal event: later commands answer CALL_ENDED, no exception.
    result = await call.play(b"\x00\x00")
    assert result.code == pb.RESULT_CODE_CALL_ENDED and result.command == pb.COMMAND_KIND_PLAY
    assert await call.mark("late") == pb.MARK_RESOLUTION_CALL_ENDED
    asterisk.close()


async def test_list_and_hangup_call_over_grpc():
    b = Backend("pull")
    try:
        await b.start()
        asterisk, call = await connect(b)
        calls = await b.client.list_calls()
        assert [(c.call_id, c.state) for c in calls] == [(UUID, pb.CALL_STATE_CONNECTED)]
        await b.client.hangup_call(UUID)
        assert (await call.wait_ended(WAIT)).reason == pb.CALL_END_REASON_HANGUP_REQUESTED
        assert await asterisk.wait_closed()
    finally:
        await b.close()


async def test_claim_by_listener_and_claim_timeout():
    bridge = BridgeProcess("--mode=pull", "--drain_timeout=200ms", "--claim_timeout=500ms",
                           listen="127.0.0.1:0,name=a")
    try:
        async with BridgeClient(bridge.grpc_target) as client:
            claim = asyncio.create_task(client.claim(listener="b"))  # nothing arrives on "b"
            asterisk = ScriptedAsterisk()
            await asterisk.connect(bridge.audiosocket_port)
            await asterisk.send(wire.Uuid(UUID))
            assert await asterisk.wait_closed()
            assert bridge.wait_for("call_ended", "CLAIM_TIMEOUT") is not None
            assert not claim.done()
            claim.cancel()
    finally:
        bridge.stop()


async def test_push_accept_at_another_rate_sets_the_calls_rate():
    # CallStarted precedes the accept, so it announces the call's rate; the
    # accept's result confirms the rate the handler asked for.
    calls: asyncio.Queue[Call] = asyncio.Queue()

    async def handler(call: Call) -> None:
        await calls.put(call)
        await call.wait_ended()

    server = await serve(handler, "127.0.0.1:0", media=pb.MediaOptions(sample_rate_hz=16000))
    bridge = BridgeProcess(f"--backend={server.target}", "--drain_timeout=200ms")
    try:
        asterisk = ScriptedAsterisk(wire.ASTERISK)
        await asterisk.connect(bridge.audiosocket_port)
        await asterisk.send(wire.Uuid(UUID))
        await asterisk.send(wire.Audio(8000, numbered_frame(0)))
        call = await asyncio.wait_for(calls.get(), WAIT)
        assert call.started.backend_sample_rate_hz == 8000
        assert call.sample_rate_hz == 16000
        chunk = await next_of(call, pb.AudioChunk)
        assert chunk.sample_rate_hz == 16000
        asterisk.close()
    finally:
        bridge.stop()
        await server.stop(0.5)
