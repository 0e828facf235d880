"""Push mode: serve CallHandlerService.HandleCall; the bridge dials it once per call."""

from __future__ import annotations

import asyncio
import hmac
import logging
from typing import Callable, Optional

import grpc

from .call import Call, CommandError, Handler, _audio_buffer, _PushLink
from .v1 import bridge_pb2 as pb
from .v1 import bridge_pb2_grpc as pb_grpc

log = logging.getLogger("audiosocket_bridge")

# Decides on a CallStarted: return None to accept, or a RejectCall to refuse.
Decide = Callable[[pb.CallStarted], Optional[pb.RejectCall]]


class CallHandlerServicer(pb_grpc.CallHandlerServiceServicer):
    """Accepts each call (unless decide() rejects it) and runs handler(call).

    Register it on your own grpc.aio.Server with
    pb_grpc.add_CallHandlerServiceServicer_to_server, or use serve().
    audio_buffer is as for serve()."""

    def __init__(self, handler: Handler, media: Optional[pb.MediaOptions] = None, decide: Optional[Decide] = None,
                 token: Optional[str] = None, *, audio_buffer: float = 1.0):
        self._handler = handler
        self._media = media
        self._decide = decide
        self._authorization = f"Bearer {token}".encode() if token else None
        self._audio_buffer = _audio_buffer(audio_buffer)

    def _authorized(self, context) -> bool:
        if self._authorization is None:
            return True
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                got = value.encode() if isinstance(value, str) else value
                if hmac.compare_digest(got, self._authorization):
                    return True
        return False

    async def HandleCall(self, request_iterator, context):
        if not self._authorized(context):
            log.warning("refused a push stream without the token")
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")
        link = _PushLink(context)
        first = await link.recv()
        if first is None or not first.HasField("started"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first event must be CallStarted")
        started = first.started
        if self._decide is not None:
            reject = self._decide(started)
            if reject is not None:
                await link.send_message(pb.HandleCallResponse(reject=reject))
                return
        call = Call(started, link, self._audio_buffer)
        call._start()
        try:
            accepted = await call._accept(self._media)
        except CommandError as e:
            log.warning("call %s: accept failed: %s", started.call_id, e)
            await call._finish()
            return
        if accepted.code != pb.RESULT_CODE_OK:  # the call ended first
            await call._finish()
            return
        # CallStarted precedes the accept: its result has the effective rate.
        call._accepted_rate_hz = accepted.backend_sample_rate_hz
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
    *,
    token: Optional[str] = None,
    credentials: Optional[grpc.ServerCredentials] = None,
    audio_buffer: float = 1.0,
    compression: Optional[grpc.Compression] = None,
) -> PushServer:
    """Starts a CallHandlerService server on address (port 0 picks one) running
    handler(call) for every call the bridge pushes; returns at once.

    token: the bridge's --auth_token_file token; streams without
    "authorization: Bearer <token>" are refused (UNAUTHENTICATED).
    credentials (grpc.ssl_server_credentials(...)): serve TLS, verified by
    the bridge's --backend_tls_ca_file; otherwise plaintext.
    audio_buffer: the seconds of caller audio each Call keeps for a handler
    that reads its events too slowly (default 1, like the bridge's
    --backend_queue_ms); beyond it the oldest AudioChunk is dropped and
    counted (Call.dropped_audio). Other events are never dropped.
    ValueError unless it is positive.
    compression (e.g. grpc.Compression.Gzip): compress what the handlers
    send; the bridge reads gzip and deflate. Speech PCM barely shrinks, so
    this is for deployments that compress every service."""
    servicer = CallHandlerServicer(handler, media, decide, token, audio_buffer=audio_buffer)  # checks it before serving
    server = grpc.aio.server(compression=compression)
    pb_grpc.add_CallHandlerServiceServicer_to_server(servicer, server)
    if credentials is not None:
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"cannot listen on {address}")
    await server.start()
    return PushServer(server, address.rsplit(":", 1)[0], port)
