"""Example backend: echoes the caller's audio, logs DTMF, plays a WAV when a
digit is pressed, and hangs up on '#'. Works in both modes:

    .venv/bin/python examples/echo_backend.py --push 127.0.0.1:50061    # bridge --backend=ipv4:127.0.0.1:50061
    .venv/bin/python examples/echo_backend.py --pull 127.0.0.1:50051    # bridge --mode=pull --grpc_listen=...:50051

--wav FILE picks the sound (16-bit mono PCM); without it a short beep is
generated. Logs one line per event on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import struct
import sys
import tempfile
import wave

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from audiosocket_bridge import BridgeClient, Call, CommandError, pb, serve  # noqa: E402


def log(*parts) -> None:
    print(*parts, flush=True)


def make_beep_wav(path: str, rate: int = 8000, seconds: float = 0.5, hz: float = 880) -> None:
    """Writes a beep: `seconds` of a sine at `hz`, 16-bit mono."""
    n = int(rate * seconds)
    samples = [int(8000 * math.sin(2 * math.pi * hz * i / rate)) for i in range(n)]
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(struct.pack(f"<{n}h", *samples))


def read_wav(path: str) -> tuple[bytes, int]:
    """PCM bytes and rate of a 16-bit mono WAV."""
    with wave.open(path, "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise SystemExit(f"{path}: need 16-bit mono PCM")
        return w.readframes(w.getnframes()), w.getframerate()


async def handle(call: Call, wav: bytes, wav_rate: int) -> None:
    log(f"call {call.call_id} started listener={call.listener} dialect={call.dialect} rate={call.sample_rate_hz}")
    played = 0
    async for event in call:
        if isinstance(event, pb.AudioChunk):
            await call.play(event.pcm, response_id="echo")  # after the end: a CALL_ENDED result
        elif isinstance(event, pb.DtmfEvent):
            if event.phase == pb.DTMF_PHASE_BEGIN:
                continue  # log each digit once, at its end
            log(f"call {call.call_id} dtmf digit={event.digit} phase={pb.DtmfPhase.Name(event.phase)}")
            if event.digit == "#":
                await call.hangup()
                log(f"call {call.call_id} hangup sent")
                ended = await call.wait_ended()
                log(f"call {call.call_id} ended reason={pb.CallEndReason.Name(ended.reason)}")
                return
            else:
                played += 1
                rate = 0 if wav_rate == call.sample_rate_hz else wav_rate
                try:
                    await call.play(wav, response_id=f"wav-{played}", sample_rate_hz=rate)
                    log(f"call {call.call_id} wav queued response=wav-{played} bytes={len(wav)}")
                except CommandError as e:
                    log(f"call {call.call_id} wav refused: {e}")
        elif isinstance(event, pb.CallEnded):
            log(f"call {call.call_id} ended reason={pb.CallEndReason.Name(event.reason)}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--push", metavar="HOST:PORT", help="serve CallHandlerService here (port 0: any)")
    mode.add_argument("--pull", metavar="HOST:PORT", help="claim calls from the bridge's gRPC port")
    parser.add_argument("--wav", help="16-bit mono WAV to play on a digit (default: a generated beep)")
    parser.add_argument("--workers", type=int, default=4, help="pull mode: concurrent calls per bridge address")
    args = parser.parse_args()

    path = args.wav
    if path is None:
        path = os.path.join(tempfile.mkdtemp(prefix="echo-backend-"), "beep.wav")
        make_beep_wav(path)
    wav, wav_rate = read_wav(path)

    async def handler(call: Call) -> None:
        await handle(call, wav, wav_rate)

    if args.push:
        server = await serve(handler, args.push)
        log(f"listening {server.host}:{server.port} (bridge flag: --backend={server.target})")
        await server.wait()
    else:
        async with BridgeClient(args.pull) as client:
            log(f"claiming calls from {args.pull}")
            await client.work(handler, workers=args.workers)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
