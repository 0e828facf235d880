"""Test support: the real bridge binary as a subprocess, and a scripted Asterisk."""

from __future__ import annotations

import asyncio
import json
import os
import struct
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from audiosocket_bridge import wire

REPO = Path(__file__).resolve().parents[3]
BRIDGE_BIN = Path(os.environ.get("BRIDGE_BIN", REPO / "bazel-bin/server/audiosocket-bridge"))
CALL_BIN = Path(os.environ.get("AUDIOSOCKET_CALL_BIN", REPO / "bazel-bin/tools/audiosocket-call/audiosocket-call"))
WIRE_VECTORS = REPO / "tests/testdata/wire"
WAIT = 15.0  # generous: a loaded 2-core machine


def _optional_flags() -> list[str]:
    """Flags that newer bridges have: turn off the metrics endpoint (its fixed
    default port would collide between bridges running side by side)."""
    try:
        help_text = subprocess.run([str(BRIDGE_BIN), "--helpfull"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return ["--metrics_listen="] if "--metrics_listen" in help_text.stdout + help_text.stderr else []


OPTIONAL_FLAGS = _optional_flags()


class BridgeProcess:
    """audiosocket-bridge on loopback with ephemeral ports; reads its JSON log."""

    def __init__(self, *flags: str, listen: str = "127.0.0.1:0"):
        args = [str(BRIDGE_BIN), f"--listen={listen}", "--grpc_listen=127.0.0.1:0",
                "--first_audio_wait=100ms", *OPTIONAL_FLAGS, *flags]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        line = self.wait_for("listening")
        if line is None:
            self.stop()
            raise RuntimeError("the bridge did not start:\n" + self.output())
        listening = json.loads(line)
        self.audiosocket_port = int(listening["audiosocket"].rsplit(":", 1)[1])
        self.grpc_port = int(listening["grpc_port"])

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, event: str, *substrings: str, timeout: float = WAIT) -> Optional[str]:
        """The first log line whose "event" is `event` and that has every substring."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if f'"event":"{event}"' in line and all(s in line for s in substrings):
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, 0.2))

    def output(self) -> str:
        with self._cond:
            return "\n".join(self.lines[-50:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def numbered_frame(n: int, samples: int = 160) -> bytes:
    """A 20 ms frame whose samples all differ from other frames' (n*1000 + i)."""
    return struct.pack(f"<{samples}h", *(((n * 997 + i * 7) % 30000) - 15000 or 1 for i in range(samples)))


class ScriptedAsterisk:
    """Plays Asterisk's side of one call with the SDK's wire codec."""

    def __init__(self, dialect: str = wire.ASTERISK):
        self.dialect = dialect
        self.decoder = wire.Decoder(dialect)
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None
        self.received: list[wire.Message] = []  # everything read so far
        self.closed = False

    async def connect(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)

    async def send(self, message: wire.Message) -> None:
        self.writer.write(wire.encode(message, self.dialect, wire.PEER_SERVER))
        await self.writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self, timeout: float = WAIT) -> Optional[wire.Message]:
        """The next message from the bridge; None when the socket closed."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            message = self.decoder.next()
            if message is not None:
                self.received.append(message)
                return message
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise asyncio.TimeoutError("no message from the bridge")
            data = await asyncio.wait_for(self.reader.read(65536), remaining)
            if not data:
                self.closed = True
                return None
            self.decoder.feed(data)

    async def read_for(self, seconds: float) -> list[wire.Message]:
        out = []
        deadline = asyncio.get_running_loop().time() + seconds
        while (remaining := deadline - asyncio.get_running_loop().time()) > 0:
            try:
                message = await self.read(remaining)
            except asyncio.TimeoutError:
                break
            if message is None:
                break
            out.append(message)
        return out

    async def wait_closed(self, timeout: float = WAIT) -> bool:
        deadline = asyncio.get_running_loop().time() + timeout
        while not self.closed:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            try:
                await self.read(remaining)
            except asyncio.TimeoutError:
                return False
        return True

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def run_audiosocket_call(*flags: str, timeout: float = 60) -> dict:
    """Runs audiosocket-call and returns its JSON summary."""
    proc = subprocess.run([str(CALL_BIN), *flags], capture_output=True, text=True, timeout=timeout)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise AssertionError(f"audiosocket-call printed no summary (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    summary = json.loads(lines[-1])
    summary["_exit"] = proc.returncode
    summary["_stderr"] = proc.stderr
    return summary
