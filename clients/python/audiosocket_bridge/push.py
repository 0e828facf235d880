"""Push mode: serve CallHandler.HandleCall; the bridge dials it once per call."""

from __future__ import annotations

import asyncio
import logging
from typing import Callable, Optional

import grpc

from .call import Call, CommandError, Handler, _PushLink
from .v1 import bridge_pb2 as pb
from .v1 import bridge_pb2_grpc as pb_grpc

log = logging.getLogger("audiosocket_bridge")

# Decides on a CallStarted: return None to accept, or a RejectCall to refuse.
Decide = Callable[[pb.CallStarted], Optional[pb.RejectCall]]


class CallHandlerServicer(pb_grpc.CallHandlerServicer):
    """Accepts each call (unless decide() rejects it) and runs handler(call).

    Register it on your own grpc.aio.Server with
    pb_grpc.add_CallHandlerServicer_to_server, or use serve()."""

    def __init__(self, handler: Handler, media: Optional[pb.MediaOptions] = None, decide: Optional[Decide] = None):
        self._handler = handler
        self._media = media
        self._decide = decide

    async def HandleCall(self, request_iterator, context):
        link = _PushLink(context)
        first = await link.recv()
        if first is None or not first.HasField("started"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first event must be CallStarted")
        started = first.started
        if self._decide is not None:
            reject = self._decide(started)
            if reject is not None:
                await link.send(pb.CallCommand(reject=reject))
                return
        call = Call(started, link)
        call._start()
        try:
            accepted = await call._checked(pb.CallCommand(accept=pb.AcceptCall(media=self._media)))
            # CallStarted precedes the accept: its result has the effective rate.
            call._accepted_rate_hz = accepted.backend_sample_rate_hz
        except CommandError as e:
            log.warning("call %s: accept failed: %s", started.call_id, e)
            await call._finish()
            return
        try:
            await self._handler(call)
        except Exception:
            log.exception("call %s: handler failed", started.call_id)
        finally:
            await call._finish()


class PushServer:
    """A running push-mode backend: .port, .target ("ipv4:127.0.0.1:PORT"), stop()."""

    def __init__(self, server: grpc.aio.Server, host: str, port: int):
        self.server = server
        self.host = host
        self.port = port

    @property
    def target(self) -> str:
        """The value for the bridge's --backend flag."""
        return f"ipv4:{self.host}:{self.port}"

    async def stop(self, grace: float = 1.0) -> None:
        await self.server.stop(grace)

    async def wait(self) -> None:
        await self.server.wait_for_termination()


async def serve(
    handler: Handler,
    address: str = "127.0.0.1:0",
    media: Optional[pb.MediaOptions] = None,
    decide: Optional[Decide] = None,
) -> PushServer:
    """Starts a CallHandler server on address (port 0 picks one) running
    handler(call) for every call the bridge pushes; returns at once."""
    server = grpc.aio.server()
    pb_grpc.add_CallHandlerServicer_to_server(CallHandlerServicer(handler, media, decide), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    return PushServer(server, address.rsplit(":", 1)[0], port)
