"""The example backend (examples/echo_backend.py) between the real bridge and
audiosocket-call, in push and pull mode and both dialects."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path

import pytest

from support import WAIT, BridgeProcess, run_audiosocket_call

EXAMPLE = Path(__file__).resolve().parents[1] / "examples/echo_backend.py"


class Example:
    def __init__(self, *args: str, wav: Path):
        self.proc = subprocess.Popen([sys.executable, str(EXAMPLE), *args, "--wav", str(wav)],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = WAIT) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if re.search(pattern, line):
                    return line
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def make_wav(path: Path) -> bytes:
    """A distinctive 0.5 s sound at 8 kHz; returns its PCM."""
    pcm = b"".join(((i * 37) % 20000 - 10000).to_bytes(2, "little", signed=True) for i in range(4000))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(pcm)
    return pcm


@pytest.mark.parametrize("dialect", ["asterisk", "extended"])
@pytest.mark.parametrize("mode", ["push", "pull"])
def test_example_backend(mode: str, dialect: str, tmp_path: Path):
    wav = tmp_path / "prompt.wav"
    prompt = make_wav(wav)
    listen = "127.0.0.1:0" + (",dialect=extended" if dialect == "extended" else "")
    example = bridge = None
    try:
        if mode == "push":
            example = Example("--push", "127.0.0.1:0", wav=wav)
            port = example.wait_line(r"^listening ").split()[1].rsplit(":", 1)[1]
            bridge = BridgeProcess(f"--backend=ipv4:127.0.0.1:{port}", "--drain_timeout=200ms", listen=listen)
        else:
            bridge = BridgeProcess("--mode=pull", "--drain_timeout=200ms", listen=listen)
            example = Example("--pull", bridge.grpc_target, wav=wav)
            example.wait_line(r"^claiming")
            time.sleep(0.3)  # let the worker's claim reach the bridge
        record = tmp_path / "heard.wav"
        summary = run_audiosocket_call(
            f"--target=127.0.0.1:{bridge.audiosocket_port}", f"--dialect={dialect}", "--source=tone:440",
            "--dtmf=5@400ms,#@2500ms", "--end=wait", "--duration=20s", f"--record={record}")
        # '#' hung up: the bridge sent 0x00 and closed.
        assert summary["ended"] == "remote_hangup", summary
        assert summary["ok"] == 1, summary
        # Echo: frames came back byte-exact (matched to the frames sent).
        assert summary["rtt_ms"] is not None and summary["rtt_ms"]["count"] >= 20, summary
        assert summary["rtt_ambiguous"] == 0
        # DTMF logged; the WAV queued on '5' and heard by the caller unchanged.
        example.wait_line(r"dtmf digit=5 ")
        example.wait_line(r"wav queued response=wav-1")
        example.wait_line(r"dtmf digit=# ")
        example.wait_line(r"ended reason=CALL_END_REASON_BACKEND_HUNG_UP")
        with wave.open(str(record), "rb") as w:
            heard = w.readframes(w.getnframes())
        assert prompt in heard, "the WAV reached the caller byte-exact"
    finally:
        if example is not None:
            example.stop()
        if bridge is not None:
            bridge.stop()
