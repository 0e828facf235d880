"""What the SDK promises beyond the protocol: the end of a call as a normal
event, mark() waiting, work() across replicas and its errors, tokens, the
package."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from audiosocket_bridge import BridgeClient, BridgeError, Call, pb, serve, wire

from support import WAIT, BridgeProcess, ScriptedAsterisk, numbered_frame

SDK = Path(__file__).resolve().parents[1]


async def place_call(port: int, frames: int = 1) -> tuple[ScriptedAsterisk, str]:
    asterisk = ScriptedAsterisk()
    await asterisk.connect(port)
    call_id = str(uuid.uuid4())
    await asterisk.send(wire.Uuid(call_id))
    for i in range(frames):
        await asterisk.send(wire.Audio(8000, numbered_frame(i)))
    return asterisk, call_id


class Answering:
    """A handler that records the calls it gets and hangs up."""

    def __init__(self):
        self.ids: set[str] = set()

    async def __call__(self, call: Call) -> None:
        self.ids.add(call.call_id)
        await call.hangup()


async def answered(handler: Answering, port: int) -> None:
    asterisk, call_id = await place_call(port)
    assert await asterisk.wait_closed(), f"call on port {port}: the socket stayed open"
    assert call_id in handler.ids, f"call on port {port} was not answered by the worker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def stop_work(task: asyncio.Task) -> None:
    task.cancel()
    try:
        await asyncio.wait_for(task, WAIT)
    except (asyncio.CancelledError, BridgeError):
        pass


@pytest.mark.parametrize("mode", ["push", "pull"])
async def test_playing_after_the_end_is_a_normal_event(mode, caplog):
    # The handler hangs up on '#' and keeps looping (and playing) without
    # `break`: no exception, and CallEnded is still its last event.
    seen: list = []
    results: list = []
    finished = asyncio.Event()

    async def handler(call: Call) -> None:
        try:
            async for event in call:
                seen.append(event)
                if isinstance(event, pb.AudioChunk):
                    results.append((await call.play(event.pcm)).code)
                elif isinstance(event, pb.DtmfEvent) and event.digit == "#":
                    await call.hangup()
                    results.append((await call.play(b"\x01\x00" * 160)).code)
        finally:
            finished.set()

    bridge = server = client = work = None
    try:
        if mode == "push":
            server = await serve(handler)
            bridge = BridgeProcess(f"--backend={server.target}", "--drain_timeout=200ms")
        else:
            bridge = BridgeProcess("--mode=pull", "--drain_timeout=200ms")
            client = BridgeClient(bridge.grpc_target)
            work = asyncio.create_task(client.work(handler))
            await asyncio.sleep(0.5)
        asterisk, _ = await place_call(bridge.audiosocket_port)
        for i in range(1, 10):
            await asterisk.send(wire.Audio(8000, numbered_frame(i)))
        await asterisk.send(wire.DtmfDigit("#"))
        for i in range(10, 20):
            await asterisk.send(wire.Audio(8000, numbered_frame(i)))
        await asyncio.wait_for(finished.wait(), WAIT)
        assert isinstance(seen[-1], pb.CallEnded) and seen[-1].reason == pb.CALL_END_REASON_BACKEND_HUNG_UP
        assert pb.RESULT_CODE_CALL_ENDED in results
        assert set(results) <= {pb.RESULT_CODE_OK, pb.RESULT_CODE_CALL_ENDED}
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
        asterisk.close()
    finally:
        if work is not None:
            await stop_work(work)
        if client is not None:
            await client.close()
        if bridge is not None:
            bridge.stop()
        if server is not None:
            await server.stop(0.5)


async def test_hangup_after_the_backend_hung_up_answers_ok():
    # The handler's own hang-up ended the call; hanging up again (as the
    # SDK does when a handler returns before CallEnded reached it) answers
    # OK for the hang-up that ended it.
    answers: list = []
    finished = asyncio.Event()

    async def handler(call: Call) -> None:
        try:
            answers.append(await call.hangup())
            await call.wait_ended(WAIT)
            answers.append(await call.hangup())
        finally:
            finished.set()

    server = await serve(handler)
    bridge = BridgeProcess(f"--backend={server.target}")
    try:
        asterisk, _ = await place_call(bridge.audiosocket_port)
        await asyncio.wait_for(finished.wait(), WAIT)
        assert [a.code for a in answers] == [pb.RESULT_CODE_OK, pb.RESULT_CODE_OK]
        assert answers[1].command == pb.COMMAND_KIND_HANGUP
        asterisk.close()
    finally:
        bridge.stop()
        await server.stop(0.5)


async def test_work_against_a_push_mode_bridge_raises(caplog):
    async def handler(call):
        pass

    server = await serve(handler)
    bridge = BridgeProcess(f"--backend={server.target}", "--drain_timeout=200ms")
    try:
        async with BridgeClient(bridge.grpc_target) as client:
            with pytest.raises(BridgeError) as info:
                await asyncio.wait_for(client.work(handler), WAIT)
        assert info.value.code.name == "FAILED_PRECONDITION" and info.value.permanent
        assert "push mode" in str(info.value) and "INTERNAL" not in str(info.value)
        assert bridge.grpc_target in str(info.value)
        assert "INTERNAL" not in caplog.text, caplog.text
    finally:
        bridge.stop()
        await server.stop(0.5)


async def test_work_needs_the_token(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    bridge = BridgeProcess("--mode=pull", "--drain_timeout=200ms", f"--auth_token_file={token}")
    try:
        handler = Answering()
        async with BridgeClient(bridge.grpc_target) as client:
            with pytest.raises(BridgeError) as info:
                await asyncio.wait_for(client.work(handler), WAIT)
            assert info.value.code.name == "UNAUTHENTICATED"
        async with BridgeClient(bridge.grpc_target, token="s3cret") as client:
            work = asyncio.create_task(client.work(handler))
            await asyncio.sleep(0.5)
            await answered(handler, bridge.audiosocket_port)
            assert len(await client.list_calls()) == 0
            await stop_work(work)
    finally:
        bridge.stop()


async def test_work_retries_until_the_bridge_is_up(caplog):
    caplog.set_level(logging.INFO, logger="audiosocket_bridge")
    port = free_port()
    handler = Answering()
    client = BridgeClient(f"127.0.0.1:{port}", backoff=(0.05, 0.4))
    work = asyncio.create_task(client.work(handler))
    bridge = None
    try:
        await asyncio.sleep(2)  # nothing listens: many retries
        assert not work.done()
        bridge = BridgeProcess("--mode=pull", "--drain_timeout=200ms", f"--grpc_listen=127.0.0.1:{port}")
        await asyncio.sleep(1.5)  # the next retry (at most 0.4 s away) claims
        await answered(handler, bridge.audiosocket_port)
        assert caplog.text.count("cannot claim calls") == 1, caplog.text
        assert "claiming calls again" in caplog.text
    finally:
        await stop_work(work)
        await client.close()
        if bridge is not None:
            bridge.stop()


async def test_work_takes_calls_concurrently_by_default():
    bridge = BridgeProcess("--mode=pull", "--drain_timeout=200ms")
    calls: asyncio.Queue = asyncio.Queue()
    release = asyncio.Event()

    async def handler(call: Call) -> None:
        await calls.put(call)
        await release.wait()

    try:
        async with BridgeClient(bridge.grpc_target) as client:
            work = asyncio.create_task(client.work(handler))
            await asyncio.sleep(0.5)
            callers = [await place_call(bridge.audiosocket_port) for _ in range(2)]
            first = await asyncio.wait_for(calls.get(), WAIT)
            second = await asyncio.wait_for(calls.get(), WAIT)
            assert first.call_id != second.call_id
            assert {first.call_id, second.call_id} == {call_id for _, call_id in callers}
            release.set()
            await stop_work(work)
    finally:
        bridge.stop()


async def test_work_across_three_bridges_listed():
    bridges = [BridgeProcess("--mode=pull", "--drain_timeout=200ms", "--claim_timeout=5s") for _ in range(3)]
    handler = Answering()
    try:
        async with BridgeClient(",".join(b.grpc_target for b in bridges)) as client:
            work = asyncio.create_task(client.work(handler, workers=2))
            await asyncio.sleep(1)
            for b in bridges:
                await answered(handler, b.audiosocket_port)
            await stop_work(work)
    finally:
        for b in bridges:
            b.stop()


async def test_work_follows_a_name_whose_addresses_change():
    # Three replicas behind one name and port (three loopback addresses).
    port = free_port()
    bridges = [BridgeProcess("--mode=pull", "--drain_timeout=200ms", "--claim_timeout=5s",
                             f"--grpc_listen=127.0.0.{i}:{port}") for i in (1, 2, 3)]
    answer = ["127.0.0.1", "127.0.0.2"]

    async def lookup(host: str) -> list[str]:
        assert host == "bridges.test"
        return list(answer)

    handler = Answering()
    try:
        async with BridgeClient(f"dns:///bridges.test:{port}", lookup=lookup, resolve_interval=0.2) as client:
            work = asyncio.create_task(client.work(handler, workers=2))
            await asyncio.sleep(1)
            await answered(handler, bridges[0].audiosocket_port)
            await answered(handler, bridges[1].audiosocket_port)
            answer[:] = ["127.0.0.2", "127.0.0.3"]  # the third joins, the first leaves
            await asyncio.sleep(1.5)
            await answered(handler, bridges[2].audiosocket_port)
            await answered(handler, bridges[1].audiosocket_port)
            # The departed replica's claims were closed: its call waits unclaimed.
            asterisk, call_id = await place_call(bridges[0].audiosocket_port)
            await asyncio.sleep(0.5)
            async with BridgeClient(bridges[0].grpc_target) as first:
                states = {c.call_id: c.state for c in await first.list_calls()}
            assert states.get(call_id) == pb.CALL_STATE_WAITING
            asterisk.close()
            await stop_work(work)
    finally:
        for b in bridges:
            b.stop()


async def test_push_server_checks_the_token(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("s3cret\n")
    bad.write_text("wrong\n")
    handler = Answering()
    server = await serve(handler, token="s3cret")
    bridges = []
    try:
        bridges.append(BridgeProcess(f"--backend={server.target}", "--drain_timeout=200ms", f"--auth_token_file={good}"))
        await answered(handler, bridges[0].audiosocket_port)
        bridges.append(BridgeProcess(f"--backend={server.target}", "--drain_timeout=200ms", "--accept_timeout=1s",
                                     f"--auth_token_file={bad}"))
        asterisk, call_id = await place_call(bridges[1].audiosocket_port)
        await asterisk.wait_closed()
        assert call_id not in handler.ids
    finally:
        for b in bridges:
            b.stop()
        await server.stop(0.5)


def test_install_ships_py_typed_and_leaves_no_untracked_files(tmp_path):
    def untracked() -> set[str]:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "--", "."],
                             cwd=SDK, capture_output=True, text=True, check=True).stdout
        return {line[3:] for line in out.splitlines() if line.startswith("??")}

    before = untracked()
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(SDK)], check=True, capture_output=True)
    assert (target / "audiosocket_bridge/py.typed").exists()
    assert (target / "audiosocket_bridge/v1/bridge_pb2.pyi").exists()
    assert untracked() == before
