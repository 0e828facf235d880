"""Pull mode: claim calls from the bridge's BridgeService as a worker."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import socket
import time
from typing import AsyncIterator, Awaitable, Callable, Optional, Sequence

import grpc

from .call import Call, Handler, _audio_buffer, _PullLink
from .v1 import bridge_pb2 as pb
from .v1 import bridge_pb2_grpc as pb_grpc

log = logging.getLogger("audiosocket_bridge")

# gRPC codes retrying cannot fix: the token (UNAUTHENTICATED,
# PERMISSION_DENIED), a bridge in push mode (FAILED_PRECONDITION), not a
# bridge (UNIMPLEMENTED), a refused request (INVALID_ARGUMENT).
PERMANENT_CODES = frozenset({
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.INVALID_ARGUMENT,
})  # fmt: skip

Lookup = Callable[[str], Awaitable[Sequence[str]]]


class ClaimEnded(Exception):
    """The claim's stream ended before a call started (.ended says why, when known)."""

    def __init__(self, message: str, ended: Optional[pb.CallEnded] = None):
        super().__init__(message)
        self.ended = ended


class BridgeError(ClaimEnded):
    """The bridge answered a claim with a gRPC error: .code (grpc.StatusCode),
    .details, .address; .permanent when retrying cannot fix it (see
    PERMANENT_CODES). work() raises the permanent ones."""

    def __init__(self, code: grpc.StatusCode, details: str, address: str = ""):
        where = f"bridge {address}: " if address else ""
        hint = ""
        if code == grpc.StatusCode.UNAUTHENTICATED:
            hint = " (pass the bridge's token: BridgeClient(..., token=...))"
        super().__init__(f"{where}{code.name}: {details}{hint}")
        self.code = code
        self.details = details
        self.address = address

    @property
    def permanent(self) -> bool:
        return self.code in PERMANENT_CODES


def _parse_target(target: str) -> list[tuple[str, str]]:
    """(kind, value): ("resolve", "host:port") or ("raw", grpc target)."""
    if target.startswith(("ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:", "xds:")):
        return [("raw", target)]
    entries = []
    for part in target.split(","):
        part = part.strip()
        if part.startswith("dns:"):
            part = part[4:]
            if part.startswith("//"):
                part = part[2:].split("/", 1)[1] if "/" in part[2:] else ""
        if not part:
            continue
        if ":" not in part:
            raise ValueError(f"bridge target {part!r}: want host:port")
        entries.append(("resolve", part))
    if not entries:
        raise ValueError(f"bridge target {target!r}: no address")
    return entries


def _split_host_port(host_port: str) -> tuple[str, str]:
    host, port = host_port.rsplit(":", 1)
    return host.strip("[]"), port


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _grpc_address(ip: str, port: str) -> str:
    return f"ipv6:[{ip}]:{port}" if ":" in ip else f"ipv4:{ip}:{port}"


async def _system_lookup(host: str) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


class _Address:
    """Claims on one bridge address: its channel, idle claim tasks and failure log."""

    def __init__(self, key: str, channel: grpc.aio.Channel):
        self.key = key
        self.channel = channel
        self.stub = pb_grpc.BridgeServiceStub(channel)
        self.removed = False
        self.idle: set[asyncio.Task] = set()
        self.loops: list[asyncio.Task] = []
        self.failing = 0
        self.last_log = 0.0

    def failed(self, error: BaseException) -> None:
        self.failing += 1
        now = time.monotonic()
        if self.failing == 1 or now - self.last_log >= 60:
            log.warning("bridge %s: cannot claim calls, retrying (%d failures): %s", self.key, self.failing, error)
            self.last_log = now

    def recovered(self) -> None:
        if self.failing:
            log.info("bridge %s: claiming calls again after %d failures", self.key, self.failing)
            self.failing = 0


class BridgeClient:
    """A connection to the bridge's gRPC port.

        async with BridgeClient("127.0.0.1:50051", token=...) as client:
            await client.work(handler)      # run handler per call, forever
            call = await client.claim()     # or: wait for one call

    target is "host:port" or "dns:///host:port" (a name whose addresses are
    the bridge replicas, e.g. a headless Service), or a comma-separated list
    of them; other gRPC targets ("ipv4:...", "unix:...") are used as they
    are. token is the bridge's --auth_token_file token, sent as
    "authorization: Bearer <token>" on every RPC; credentials
    (grpc.ssl_channel_credentials(...)) turn on TLS, otherwise the channel is
    plaintext. claim(), list_calls() and hangup_call() use the first entry of
    the target; work() claims on every address.

    audio_buffer is the seconds of caller audio each claimed Call keeps for a
    handler that reads its events too slowly (default 1, like the bridge's
    --backend_queue_ms); beyond it the oldest AudioChunk is dropped and
    counted (Call.dropped_audio). Other events are never dropped. ValueError
    unless it is positive.
    """

    def __init__(self, target: str, channel: Optional[grpc.aio.Channel] = None, *,
                 token: Optional[str] = None, credentials: Optional[grpc.ChannelCredentials] = None,
                 resolve_interval: float = 15.0, backoff: tuple[float, float] = (0.25, 15.0),
                 lookup: Optional[Lookup] = None, audio_buffer: float = 1.0):
        self._audio_buffer = _audio_buffer(audio_buffer)
        self._entries = _parse_target(target)
        self._credentials = credentials
        self._metadata = (("authorization", f"Bearer {token}"),) if token else None
        self._resolve_interval = resolve_interval
        self._backoff = backoff
        self._lookup = lookup or _system_lookup
        kind, first = self._entries[0]
        self.channel = channel or self._channel(first if kind == "raw" else f"dns:///{first}")
        self.stub = pb_grpc.BridgeServiceStub(self.channel)

    def _channel(self, target: str, authority: str = "") -> grpc.aio.Channel:
        options = [("grpc.default_authority", authority)] if authority else None
        if self._credentials is not None:
            return grpc.aio.secure_channel(target, self._credentials, options=options)
        return grpc.aio.insecure_channel(target, options=options)

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
        ends first (the call ended), BridgeError (a ClaimEnded) when the bridge
        refused the claim or could not be reached."""
        return await self._claim_on(self.stub, "", listener, call_id, media)

    async def _claim_on(self, stub, address: str, listener: str, call_id: str,
                        media: Optional[pb.MediaOptions]) -> Call:
        claim = pb.ClaimCall(media=media)
        if call_id:
            claim.call_id = call_id
        else:
            claim.listener = listener
        stream = stub.ClaimCall(metadata=self._metadata)
        link = _PullLink(stream)
        written = False
        try:
            await link.send_message(pb.ClaimCallRequest(claim=claim))
            written = True
            event = await link.recv()
        except asyncio.CancelledError:
            stream.cancel()
            raise
        except Exception as e:
            error = await self._status_error(stream, address, e)
            if not written and error.code == grpc.StatusCode.INTERNAL:
                # The bridge refused the stream as it opened and our write
                # raced with that: grpc then reports its own INTERNAL error
                # ("Internal error from Core") instead of the bridge's status.
                error = await self._probe(stub, address) or error
            raise error from None
        if event is None:
            error = await self._status_error(stream, address, None)
            if error is not None:
                raise error
            raise ClaimEnded("the bridge finished the claim stream before a call started")
        if event.HasField("ended"):
            stream.cancel()
            raise ClaimEnded(f"the call ended before it started: {event.ended.detail}", event.ended)
        if not event.HasField("started"):
            stream.cancel()
            raise ClaimEnded(f"expected CallStarted, got {event.WhichOneof('event')}")
        call = Call(event.started, link, self._audio_buffer)
        call._stream = stream
        call._start()
        return call

    async def _probe(self, stub, address: str) -> Optional[BridgeError]:
        """The bridge's status for a claim stream it refuses at once, from a
        stream we do not write to (so no write races with the refusal); None
        when the bridge keeps that stream open (it would take a claim)."""
        probe = stub.ClaimCall(metadata=self._metadata)
        try:
            await asyncio.wait_for(probe.read(), 2.0)
        except grpc.aio.AioRpcError as e:
            return BridgeError(e.code(), e.details() or "", address)
        except (asyncio.TimeoutError, Exception):
            pass
        finally:
            probe.cancel()
        return None

    @staticmethod
    async def _status_error(stream, address: str, error: Optional[BaseException]) -> Optional[BridgeError]:
        try:
            code = await asyncio.wait_for(stream.code(), 5.0)
            details = await stream.details()
        except Exception:
            code, details = None, ""
        if code is None or code == grpc.StatusCode.OK:
            if error is None:
                return None
            if isinstance(error, grpc.aio.AioRpcError):
                code, details = error.code(), error.details()
            else:
                code, details = grpc.StatusCode.UNKNOWN, str(error)
        return BridgeError(code, details or "", address)

    # ------------------------------------------------------------ work

    async def _resolve(self, previous: dict[int, list[tuple[str, str, str]]], failing: set[str]):
        """[(key, grpc target, authority)] for every address; an entry whose
        lookup fails keeps its previous addresses."""
        out = []
        for i, (kind, value) in enumerate(self._entries):
            if kind == "raw":
                out.append((value, value, ""))
                continue
            host, port = _split_host_port(value)
            if _is_ip(host):
                out.append((f"{host}:{port}", _grpc_address(host, port), ""))
                continue
            try:
                ips = list(await asyncio.wait_for(self._lookup(host), 10.0))
                if not ips:
                    raise OSError("no address")
            except (OSError, asyncio.TimeoutError) as e:
                if value not in failing:
                    log.warning("cannot resolve %s, keeping the %d addresses known: %s",
                                value, len(previous.get(i, [])), e)
                    failing.add(value)
                out.extend(previous.get(i, []))
                continue
            if value in failing:
                log.info("%s resolves again", value)
                failing.discard(value)
            specs = [(f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}", _grpc_address(ip, port), value)
                     for ip in sorted(set(ips))]
            previous[i] = specs
            out.extend(specs)
        return out

    def _delay(self, attempt: int) -> float:
        low, high = self._backoff
        d = min(high, low * 2 ** (attempt - 1))
        return d / 2 + random.uniform(0, d / 2)

    async def work(self, handler: Handler, workers: int = 4, listener: str = "",
                   media: Optional[pb.MediaOptions] = None) -> None:
        """Answers calls until cancelled: keeps `workers` claims open on every
        address of the target (each address a DNS name resolves to, one per
        bridge replica, and each entry of a comma-separated list), runs
        handler(call) for each call claimed, and claims again. Resolves the
        target again every resolve_interval seconds: new replicas get
        claims, idle claims on addresses that are gone are closed (their
        calls go on).

        Raises BridgeError when the bridge refuses the worker for a reason
        retrying cannot fix (no or wrong token, a bridge in push mode, ...),
        after the calls in progress ended. Other errors (a replica down or
        restarting) are retried with exponential backoff and jitter, logged
        once when an address starts failing, at most once a minute while it
        fails, and once when it recovers."""
        addresses: dict[str, _Address] = {}
        previous: dict[int, list] = {}
        failing: set[str] = set()
        failure: asyncio.Future = asyncio.get_running_loop().create_future()
        active: set[asyncio.Task] = set()

        async def run_call(call: Call) -> None:
            try:
                await handler(call)
            except Exception:
                log.exception("call %s: handler failed", call.call_id)
            finally:
                await call._finish()

        async def loop(address: _Address) -> None:
            attempt = 0
            while not address.removed and not failure.done():
                claim = asyncio.ensure_future(self._claim_on(address.stub, address.key, listener, "", media))
                address.idle.add(claim)
                try:
                    call = await claim
                except asyncio.CancelledError:
                    if address.removed or failure.done():
                        return
                    raise
                except BridgeError as e:
                    if e.permanent:
                        if not failure.done():
                            failure.set_exception(e)
                        return
                    attempt += 1
                    address.failed(e)
                    await asyncio.sleep(self._delay(attempt))
                    continue
                except ClaimEnded:
                    continue  # the claimed call ended first: claim again
                finally:
                    address.idle.discard(claim)
                attempt = 0
                address.recovered()
                task = asyncio.ensure_future(run_call(call))
                active.add(task)
                try:
                    await asyncio.shield(task)  # removing the address does not end the call
                finally:
                    active.discard(task)

        def start(key: str, target: str, authority: str) -> None:
            address = _Address(key, self._channel(target, authority))
            addresses[key] = address
            address.loops = [asyncio.ensure_future(loop(address)) for _ in range(max(workers, 1))]

        async def retire(address: _Address) -> None:
            address.removed = True
            for claim in list(address.idle):
                claim.cancel()
            await asyncio.gather(*address.loops, return_exceptions=True)
            await address.channel.close()

        retiring: set[asyncio.Task] = set()
        try:
            while True:
                specs = await self._resolve(previous, failing)
                wanted = {key: (target, authority) for key, target, authority in specs}
                for key in [k for k in addresses if k not in wanted]:
                    log.info("bridge %s: address gone, closing its idle claims", key)
                    retiring.add(asyncio.ensure_future(retire(addresses.pop(key))))
                for key, (target, authority) in wanted.items():
                    if key not in addresses:
                        start(key, target, authority)
                try:
                    await asyncio.wait_for(asyncio.shield(failure), self._resolve_interval)
                except asyncio.TimeoutError:
                    continue
                break
        finally:
            for address in addresses.values():
                address.removed = True
                for claim in list(address.idle):
                    claim.cancel()
            if failure.done():
                # Stopping on a permanent error: let the calls in progress end.
                await asyncio.gather(*active, return_exceptions=True)
            tasks = [t for a in addresses.values() for t in a.loops] + list(retiring)
            for task in tasks:
                if not failure.done():
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for address in addresses.values():
                await address.channel.close()
        error = failure.exception()
        log.error("stopping: %s", error)
        raise error

    async def list_calls(self, listener: str = "") -> list[pb.CallInfo]:
        response = await self.stub.ListCalls(pb.ListCallsRequest(listener=listener), metadata=self._metadata)
        return list(response.calls)

    async def hangup_call(self, call_id: str) -> None:
        """Ends a call (reason HANGUP_REQUESTED); grpc NOT_FOUND if unknown."""
        await self.stub.HangupCall(pb.HangupCallRequest(call_id=call_id), metadata=self._metadata)

    async def watch_calls(self, listener: str = "") -> AsyncIterator[pb.WatchCallsResponse]:
        """Started/ended notices, starting with the calls that exist now."""
        async for change in self.stub.WatchCalls(pb.WatchCallsRequest(listener=listener), metadata=self._metadata):
            yield change
