"""The quick start: echoes the caller; on '#' waits until the caller has
heard the echo so far, then hangs up.

    .venv/bin/python quickstart.py push 127.0.0.1:50061   # the bridge runs with --backend=ipv4:127.0.0.1:50061
    .venv/bin/python quickstart.py pull 127.0.0.1:50051   # the bridge runs in pull mode (no --backend)
"""

import asyncio
import sys

from audiosocket_bridge import BridgeClient, pb, serve


async def handler(call):                      # call.call_id, call.sample_rate_hz, ...
    async for event in call:                  # AudioChunk, DtmfEvent, ..., CallEnded last
        if isinstance(event, pb.AudioChunk):
            await call.play(event.pcm)        # once the call ended: a result with code RESULT_CODE_CALL_ENDED
        elif isinstance(event, pb.DtmfEvent) and event.digit == "#":
            await call.mark("bye")            # waits until the caller heard everything queued so far
            await call.hangup()
        elif isinstance(event, pb.CallEnded):
            print(f"call {call.call_id} ended: {pb.CallEndReason.Name(event.reason)}", flush=True)


async def main(mode, address):
    if mode == "push":
        server = await serve(handler, address)       # token=..., credentials=grpc.ssl_server_credentials(...)
        await server.wait()
    else:
        async with BridgeClient(address) as client:  # token=..., credentials=grpc.ssl_channel_credentials(...)
            await client.work(handler)               # 4 calls at once per bridge replica


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
