"""A call's unread events, without a bridge: caller audio waiting for a slow
reader is bounded by duration (the oldest chunk goes, counted), other events
and command results are never held back, and the bound is configurable in
both modes."""

from __future__ import annotations

import asyncio
import math

import pytest

from audiosocket_bridge import BridgeClient, Call, CallHandlerServicer, pb, serve

STARTED = pb.CallStarted(call_id="c-1", listener="main", call_sample_rate_hz=8000, backend_sample_rate_hz=8000)


def chunk(n: int, rate: int = 8000, ms: int = 20) -> pb.AudioChunk:
    samples = rate * ms // 1000
    return pb.AudioChunk(pcm=b"\x01\x00" * samples, sample_rate_hz=rate, sequence_number=n,
                         offset_samples=n * samples)


class FakeStream:
    """The RPC stream both links use: read() gives what the test queued (the
    request or response message around each event), write() records."""

    def __init__(self, wrap=pb.HandleCallRequest):
        self.wrap = wrap
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.written: list = []

    def feed(self, **event) -> None:
        self.incoming.put_nowait(self.wrap(event=pb.CallEvent(**event)))

    async def read(self):
        return await self.incoming.get()

    async def write(self, message) -> None:
        self.written.append(message)

    def invocation_metadata(self):
        return ()

    async def done_writing(self) -> None:
        pass

    def cancel(self) -> None:
        pass


class FakeLink:
    """A link that records commands; the test answers them with _dispatch."""

    def __init__(self):
        self.sent: list[pb.CallCommand] = []

    async def send(self, command: pb.CallCommand) -> None:
        self.sent.append(command)

    async def close(self) -> None:
        pass


def dispatch(call: Call, **event) -> None:
    call._dispatch(pb.CallEvent(**event))


async def drain(call: Call) -> list:
    return [event async for event in call]


async def test_unread_audio_beyond_a_second_drops_the_oldest_chunks():
    call = Call(STARTED, FakeLink())
    others = []
    for n in range(100):  # 2 s of 20 ms chunks, with other events between them
        dispatch(call, audio=chunk(n))
        if n % 10 == 5:
            others.append(pb.DtmfEvent(digit=str(n // 10), phase=pb.DTMF_PHASE_END_ONLY))
            dispatch(call, dtmf=others[-1])
        if n == 42:
            others.append(pb.ControlEvent(type=pb.CONTROL_TYPE_RINGING, raw_code=3))
            dispatch(call, control=others[-1])
            others.append(pb.MarkResolved(name="m", resolution=pb.MARK_RESOLUTION_PLAYED))
            dispatch(call, mark=others[-1])
            others.append(pb.PlayoutEvent())
            dispatch(call, playout=others[-1])
    ended = pb.CallEnded(reason=pb.CALL_END_REASON_CALLER_HUNG_UP)
    dispatch(call, ended=ended)

    assert call.dropped_audio == 50
    events = await drain(call)
    audio = [e.sequence_number for e in events if isinstance(e, pb.AudioChunk)]
    assert audio == list(range(50, 100))  # the newest second
    assert [e for e in events if not isinstance(e, pb.AudioChunk)] == others + [ended]
    # Every event keeps its place among the chunks that stayed.
    digits = [(e.digit, prev.sequence_number) for prev, e in zip(events, events[1:])
              if isinstance(e, pb.DtmfEvent) and isinstance(prev, pb.AudioChunk)]
    assert digits == [(str(n // 10), n) for n in range(55, 100, 10)]
    assert await call.next_event(1) is None
    assert await drain(call) == []


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
async def test_a_configured_audio_buffer_is_honoured_at_any_rate(rate):
    call = Call(STARTED, FakeLink(), audio_buffer=0.1)
    for n in range(12):
        dispatch(call, audio=chunk(n, rate))
    assert call.dropped_audio == 7  # 100 ms is five 20 ms chunks
    assert [e.sequence_number for e in [await call.next_event(1) for _ in range(5)]] == [7, 8, 9, 10, 11]


async def test_reading_makes_room_for_more_audio():
    call = Call(STARTED, FakeLink(), audio_buffer=0.1)
    for n in range(50):
        dispatch(call, audio=chunk(n))
        assert (await call.next_event(1)).sequence_number == n
    for n in range(50, 55):
        dispatch(call, audio=chunk(n))
    assert call.dropped_audio == 0


async def test_the_newest_chunk_stays_even_when_longer_than_the_bound():
    call = Call(STARTED, FakeLink(), audio_buffer=0.005)
    dispatch(call, audio=chunk(0))
    dispatch(call, dtmf=pb.DtmfEvent(digit="1"))
    dispatch(call, audio=chunk(1, ms=60))
    assert call.dropped_audio == 1
    dispatch(call, ended=pb.CallEnded())
    events = await drain(call)
    assert [type(e) for e in events] == [pb.DtmfEvent, pb.AudioChunk, pb.CallEnded]
    assert events[1].sequence_number == 1


async def test_command_results_and_marks_do_not_wait_for_the_reader():
    link = FakeLink()
    call = Call(STARTED, link, audio_buffer=0.1)
    play = asyncio.create_task(call.play(b"\x00\x00" * 160))
    mark = asyncio.create_task(call.mark("heard"))
    await asyncio.sleep(0)
    assert [c.command_id for c in link.sent] == ["c1", "c2"]
    for n in range(200):  # nobody reads
        dispatch(call, audio=chunk(n))
    dispatch(call, result=pb.CommandResult(command_id="c1", code=pb.RESULT_CODE_OK))
    dispatch(call, result=pb.CommandResult(command_id="c2", code=pb.RESULT_CODE_OK))
    dispatch(call, mark=pb.MarkResolved(name="heard", resolution=pb.MARK_RESOLUTION_PLAYED))
    for n in range(200, 210):
        dispatch(call, audio=chunk(n))
    assert (await asyncio.wait_for(play, 1)).code == pb.RESULT_CODE_OK
    assert await asyncio.wait_for(mark, 1) == pb.MARK_RESOLUTION_PLAYED
    dispatch(call, ended=pb.CallEnded())
    events = await drain(call)
    # The answers to the SDK's own commands are returned, not queued; the
    # MarkResolved event is kept though its chunks around it went.
    assert [type(e) for e in events] == [pb.MarkResolved] + [pb.AudioChunk] * 5 + [pb.CallEnded]
    assert call.dropped_audio == 205


@pytest.mark.parametrize("bad", [0, -1, 0.0, math.nan, math.inf])
async def test_audio_buffer_must_be_positive(bad):
    async def handler(call):
        pass

    with pytest.raises(ValueError, match="audio_buffer"):
        Call(STARTED, FakeLink(), audio_buffer=bad)
    with pytest.raises(ValueError, match="audio_buffer"):
        CallHandlerServicer(handler, audio_buffer=bad)
    with pytest.raises(ValueError, match="audio_buffer"):
        await serve(handler, audio_buffer=bad)
    with pytest.raises(ValueError, match="audio_buffer"):
        BridgeClient("127.0.0.1:1", audio_buffer=bad)


async def test_push_calls_take_the_servicers_audio_buffer():
    stream = FakeStream(pb.HandleCallRequest)
    stream.feed(started=STARTED)
    stream.feed(result=pb.CommandResult(command_id="c1", code=pb.RESULT_CODE_OK, backend_sample_rate_hz=8000))
    for n in range(20):
        stream.feed(audio=chunk(n))
    stream.feed(ended=pb.CallEnded(reason=pb.CALL_END_REASON_CALLER_HUNG_UP))
    seen = {}

    async def handler(call: Call) -> None:
        await call.wait_ended(1)  # reads nothing until the call is over
        seen["dropped"] = call.dropped_audio
        seen["audio"] = [e.sequence_number for e in await drain(call) if isinstance(e, pb.AudioChunk)]

    await asyncio.wait_for(CallHandlerServicer(handler, audio_buffer=0.2).HandleCall(None, stream), 5)
    assert stream.written[0].HasField("accept")
    assert seen == {"dropped": 10, "audio": list(range(10, 20))}


async def test_pull_calls_take_the_clients_audio_buffer():
    stream = FakeStream(pb.ClaimCallResponse)
    stream.feed(started=STARTED)
    for n in range(20):
        stream.feed(audio=chunk(n))
    stream.feed(ended=pb.CallEnded(reason=pb.CALL_END_REASON_CALLER_HUNG_UP))

    class Stub:
        def ClaimCall(self, metadata=None):
            return stream

    async with BridgeClient("127.0.0.1:1", audio_buffer=0.06) as client:
        client.stub = Stub()
        call = await asyncio.wait_for(client.claim(), 5)
        await call.wait_ended(1)
        assert call.dropped_audio == 17
        assert [e.sequence_number for e in await drain(call) if isinstance(e, pb.AudioChunk)] == [17, 18, 19]
        await call._finish()
