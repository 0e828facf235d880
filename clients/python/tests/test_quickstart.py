"""The README's quick start, as written: the README holds
examples/quickstart.py verbatim; it runs with the SDK importable as after
the README's install, in both modes, and fails clearly against a push-mode
bridge."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support import BridgeProcess, run_audiosocket_call

SDK = Path(__file__).resolve().parents[1]
QUICKSTART = SDK / "examples/quickstart.py"


def test_readme_holds_the_quick_start():
    readme = (SDK / "README.md").read_text()
    assert "```python\n" + QUICKSTART.read_text() + "```\n" in readme


def run_quickstart(*args: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(SDK))  # as installed into the venv
    return subprocess.Popen([sys.executable, str(QUICKSTART), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


@pytest.mark.parametrize("mode", ["push", "pull"])
def test_quick_start(mode: str):
    bridge = quickstart = None
    try:
        if mode == "push":
            import socket
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = s.getsockname()[1]
            quickstart = run_quickstart("push", f"127.0.0.1:{port}")
            time.sleep(1.5)
            bridge = BridgeProcess(f"--backend=ipv4:127.0.0.1:{port}", "--drain_timeout=200ms")
        else:
            bridge = BridgeProcess("--mode=pull", "--drain_timeout=200ms")
            quickstart = run_quickstart("pull", bridge.grpc_target)
            time.sleep(1.5)
        summary = run_audiosocket_call(f"--target=127.0.0.1:{bridge.audiosocket_port}", "--source=tone:440",
                                       "--dtmf=#@4s", "--end=wait", "--duration=20s")
        assert summary["ended"] == "remote_hangup" and summary["ok"] == 1, summary
        assert summary["rtt_ms"] is not None and summary["rtt_ms"]["count"] >= 20, summary
        time.sleep(0.5)
    finally:
        out = stop(quickstart) if quickstart is not None else ""
        if bridge is not None:
            bridge.stop()
    assert "ended: CALL_END_REASON_BACKEND_HUNG_UP" in out, out
    assert "Traceback" not in out.split("KeyboardInterrupt")[0], out


def test_quick_start_against_a_push_mode_bridge_fails_clearly():
    bridge = BridgeProcess("--backend=ipv4:127.0.0.1:1", "--drain_timeout=200ms")
    try:
        proc = run_quickstart("pull", bridge.grpc_target)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail("the worker kept retrying against a push-mode bridge")
        assert proc.returncode != 0
        assert "BridgeError" in out and "FAILED_PRECONDITION" in out and "push mode" in out, out
        assert "INTERNAL" not in out, out
    finally:
        bridge.stop()
