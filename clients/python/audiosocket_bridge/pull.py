"""Pull mode: claim calls from the bridge's Bridge service as a worker."""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Optional

import grpc

from .call import Call, Handler, _PullLink
from .v1 import bridge_pb2 as pb
from .v1 import bridge_pb2_grpc as pb_grpc

log = logging.getLogger("audiosocket_bridge")


class ClaimEnded(Exception):
    """The claim's stream ended before a call started (.ended says why, when known)."""

    def __init__(self, message: str, ended: Optional[pb.CallEnded] = None):
        super().__init__(message)
        self.ended = ended


class BridgeClient:
    """A connection to the bridge's gRPC port.

        async with BridgeClient("127.0.0.1:50051") as client:
            call = await client.claim()          # waits for the next call
            await client.work(handler, workers=4)  # or: run handler per call, forever
    """

    def __init__(self, target: str, channel: Optional[grpc.aio.Channel] = None):
        self.channel = channel or grpc.aio.insecure_channel(target)
        self.stub = pb_grpc.BridgeStub(self.channel)

    async def __aenter__(self) -> "BridgeClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        await self.channel.close()

    async def claim(
        self, listener: str = "", call_id: str = "", media: Optional[pb.MediaOptions] = None
    ) -> Call:
        """Opens a worker slot and waits for a call: the next on `listener`
        (any when empty), or the call `call_id`. Raises ClaimEnded if the stream
        ends first (e.g. the call ended, or the bridge refused the claim)."""
        claim = pb.ClaimCall(media=media)
        if call_id:
            claim.call_id = call_id
        else:
            claim.listener = listener
        stream = self.stub.ClaimCall()
        link = _PullLink(stream)
        try:
            await link.send(pb.CallCommand(claim=claim))
            event = await link.recv()
        except grpc.aio.AioRpcError as e:
            raise ClaimEnded(f"claim failed: {e.code().name}: {e.details()}") from e
        except asyncio.CancelledError:
            stream.cancel()
            raise
        if event is None:
            raise ClaimEnded("the bridge finished the claim stream before a call started")
        if event.HasField("ended"):
            stream.cancel()
            raise ClaimEnded(f"the call ended before it started: {event.ended.detail}", event.ended)
        if not event.HasField("started"):
            stream.cancel()
            raise ClaimEnded(f"expected CallStarted, got {event.WhichOneof('event')}")
        call = Call(event.started, link)
        call._stream = stream
        call._start()
        return call

    async def work(self, handler: Handler, workers: int = 1, listener: str = "",
                   media: Optional[pb.MediaOptions] = None) -> None:
        """Runs `workers` claim loops: each claims a call, runs handler(call),
        and claims the next. Runs until cancelled."""

        async def loop() -> None:
            while True:
                try:
                    call = await self.claim(listener=listener, media=media)
                except ClaimEnded as e:
                    log.warning("%s", e)
                    await asyncio.sleep(0.2)
                    continue
                try:
                    await handler(call)
                except Exception:
                    log.exception("call %s: handler failed", call.call_id)
                finally:
                    await call._finish()

        await asyncio.gather(*(loop() for _ in range(workers)))

    async def list_calls(self, listener: str = "") -> list[pb.CallInfo]:
        response = await self.stub.ListCalls(pb.ListCallsRequest(listener=listener))
        return list(response.calls)

    async def hangup_call(self, call_id: str) -> None:
        """Ends a call (reason HANGUP_REQUESTED); grpc NOT_FOUND if unknown."""
        await self.stub.HangupCall(pb.HangupCallRequest(call_id=call_id))

    async def watch_calls(self, listener: str = "") -> AsyncIterator[pb.WatchCallsResponse]:
        """Started/ended notices, starting with the calls that exist now."""
        async for change in self.stub.WatchCalls(pb.WatchCallsRequest(listener=listener)):
            yield change
