#!/usr/bin/env python3
"""The bridge benchmark's driver (bench/bridge/run.sh builds, then calls this).

For each step (system, workload, calls, rate, repeat) it starts fresh
processes, loopback only:
  - bridge-push:  audiosocket-bridge --mode=push -> echo-backend (push),
  - bridge-push-grpc: the same on gRPC C++'s client (--push_transport=grpc),
  - bridge-pull:  audiosocket-bridge --mode=pull <- echo-backend (ClaimCall slots),
  - bridge-pull-grpc: the same on gRPC C++'s server (--server_transport=grpc),
  - any bridge system with "@WINDOW" (bridge-pull@0): --io_round_window=WINDOW,
  - bridge-push-unix: bridge-push with echo-backend on a Unix domain socket
                  instead of loopback TCP (a backend beside the bridge, as a
                  pod's sidecar would be),
  - gorelay-push: bench/bridge/gorelay (a plain Go relay) -> echo-backend (push),
  - baseline:     audiosocket-echo --mode=echo (AudioSocket echo, no gRPC),
  - baseline-paced: audiosocket-echo --mode=paced (each call's audio sent back
                  one message per 20 ms on the bridge's tick slots, with the
                  bridge's default round window): what pacing alone costs,
with the system under test pinned to core 0 (taskset) and the emulator
(audiosocket-call) and backend pinned to core 1. Workloads (echo-backend
--workload): echo (every chunk played back) and voice_agent (prompts faster
than real time, marks, barge-in clears; the baseline still echoes). The
systems of one point run back to back, in an order rotated per repeat, so
each ratio (x baseline, x paced, x gorelay) comes from the same repeat of the same
point. It measures the server's CPU (utime + stime from /proc/PID/stat), RSS
(VmRSS minus the idle value), context switches (/proc) and system calls
(perf stat, raw_syscalls:sys_enter) over the steady window, reads the
emulator's JSON summary, the backend's line, the bridge's /metrics or the Go
relay's counters, and writes results.csv, results.json, summary.json and
summary.md (medians and spread over repeats) into --out. Every step is
bounded in time.

With --caller=asterisk, stock Asterisk places the calls instead of the
emulator (asterisk_caller.py), on the emulator's core: through its
AudioSocket() application or (--asterisk_path=channel) its AudioSocket
channel driver, one thread per call either way. Asterisk reports no jitter
or frame counts, so those columns stay empty and the step holds on the
server's counters.
"""

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request

from asterisk_caller import AsteriskCaller, established_connections

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def ctx_switches(pid):
    total = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if "ctxt_switches" in line:
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


class SyscallCounter:
    """System calls of PID (threads alive at start) over a window, by perf
    stat on raw_syscalls:sys_enter; count() is None when perf is not there
    or refuses."""

    def __init__(self, enabled, pid, seconds, path, prefix):
        self.proc, self.path = None, path
        if not enabled:
            return
        try:
            self.proc = subprocess.Popen(
                prefix + ["taskset", "-c", "1", "perf", "stat", "-x,", "-o", path,
                          "-e", "raw_syscalls:sys_enter", "-p", str(pid),
                          "--timeout", str(max(1, int(seconds * 1000)))],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            self.proc = None

    def count(self):
        if self.proc is None:
            return None
        try:
            self.proc.wait(timeout=10)
            with open(self.path) as f:
                for line in f:
                    fields = line.strip().split(",")
                    if len(fields) > 2 and fields[2] == "raw_syscalls:sys_enter":
                        return int(fields[0]) if fields[0].isdigit() else None
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()
        return None


def steal_ms(core):
    """Time the hypervisor ran something else while `core` had work (the
    steal column of /proc/stat), in ms so far."""
    with open("/proc/stat") as f:
        for line in f:
            fields = line.split()
            if fields[0] == f"cpu{core}":
                return int(fields[8]) * 1000 // CLK_TCK
    return 0


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def busy_cpu_pct(seconds):
    """Whole-machine CPU busy percent (all cores, 200 = both) over `seconds`."""

    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]

    t0, i0 = read()
    time.sleep(seconds)
    t1, i1 = read()
    return 200.0 * (1 - (i1 - i0) / max(1, t1 - t0))


def wait_for(path, pattern, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path) as f:
                m = re.search(pattern, f.read())
            if m:
                return m
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {pattern!r} in {path}")


# The bridge's default --io_round_window (server/config/config.h), which
# the paced baseline uses too.
BRIDGE_ROUND_WINDOW = "1ms"
MUTEX_WAITS = "audiosocket_bridge_mutex_waits_total"
TICK_LATENESS = "audiosocket_bridge_playout_tick_lateness_seconds"
LOOP_ROUNDS = "audiosocket_bridge_loop_round_seconds"


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        values[name] = float(value)
    return values


def histogram_quantile(metrics, name, q):
    """Upper bound (seconds) of the bucket holding quantile q (1: the highest
    bucket holding any observation)."""
    buckets = []
    for key, value in metrics.items():
        m = re.fullmatch(name + r'_bucket\{le="([^"]+)"\}', key)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            buckets.append((le, value))
    buckets.sort()
    if not buckets or buckets[-1][1] == 0:
        return None
    rank = q * buckets[-1][1]
    for le, count in buckets:
        if count >= rank:
            return le
    return None


class Step:
    def __init__(self, args, system, calls, rate, workload="echo", repeat=0, order=0,
                 asterisk=None):
        self.args, self.system, self.calls, self.rate = args, system, calls, rate
        self.asterisk = asterisk  # an AsteriskCaller, or None for the emulator
        self.workload, self.repeat, self.order = workload, repeat, order
        self.dir = os.path.join(args.out, f"{system}-{workload}-{calls}-{rate // 1000}k-r{repeat}")
        os.makedirs(self.dir, exist_ok=True)
        self.procs = []
        # Short and outside --out: a socket path has at most 107 bytes.
        self.socket_path = f"/tmp/bridge-bench-{os.getpid()}.sock"

    def prefix(self):
        if self.args.rt:
            return ["chrt", "--rr", "10"]
        return ["nice", "-n", str(self.args.nice)] if self.args.nice else []

    def server_prefix(self):
        # --server_fifo: the machine's other work (a sandbox's agent, kernel
        # threads) cannot preempt the server on its core.
        return ["chrt", "--fifo", "30"] if self.args.server_fifo else None

    def start(self, name, argv, core, prefix=None):
        out = open(os.path.join(self.dir, name + ".out"), "w")
        err = open(os.path.join(self.dir, name + ".err"), "w")
        prefix = self.prefix() if prefix is None else prefix
        p = subprocess.Popen(prefix + ["taskset", "-c", str(core)] + argv, stdout=out, stderr=err)
        self.procs.append(p)
        return p

    def path(self, name):
        return os.path.join(self.dir, name)

    def stop_all(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGINT if p is not self.procs[0] else signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        # echo-backend's loop transport exits without removing its socket.
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)

    def run(self):
        a, b = self.args, self.args.bin
        row = {"system": self.system, "workload": self.workload, "calls": self.calls,
               "rate_hz": self.rate, "repeat": self.repeat, "order": self.order}
        row["load_before"] = loadavg()
        row["busy_before_pct"] = round(busy_cpu_pct(1.0), 1)
        metrics_port = None
        try:
            server_pid, backend, relay = None, None, None
            backend_argv = [f"{b}/bench/echo_backend/echo-backend", f"--workload={self.workload}",
                            f"--transport={a.backend_transport}"]
            backend_argv += a.backend_args.split()
            if not self.system.startswith("baseline"):
                row["backend_transport"] = a.backend_transport
            if self.system in ("baseline", "baseline-paced"):
                echo_mode = (["--mode=paced", f"--round_window={BRIDGE_ROUND_WINDOW}"]
                             if self.system == "baseline-paced" else ["--mode=echo"])
                srv = self.start("server", [f"{b}/bench/echo_server/audiosocket-echo",
                                            "--listen=127.0.0.1:0"] + echo_mode, 0,
                                 self.server_prefix())
                target = wait_for(self.path("server.err"), r'"address":"([^"]+)"').group(1)
                server_pid = srv.pid
            elif self.system == "gorelay-push":
                if self.rate != 8000:
                    raise RuntimeError("gorelay handles 8 kHz only")
                backend = self.start("backend", backend_argv + ["--mode=push",
                                                                "--listen=127.0.0.1:0"],
                                     a.backend_core)
                port = wait_for(self.path("backend.err"), r'"port":(\d+)').group(1)
                srv = self.start("server", [a.gorelay, "--listen=127.0.0.1:0",
                                            f"--backend=127.0.0.1:{port}"], 0,
                                 self.server_prefix())
                # Stopped first (SIGTERM), so that its counters are printed.
                self.procs.remove(srv)
                self.procs.insert(0, srv)
                m = wait_for(self.path("server.err"), r'"audiosocket":"([^"]+)","gomaxprocs":(\d+)')
                target, row["gomaxprocs"] = m.group(1), int(m.group(2))
                server_pid, relay = srv.pid, srv
            else:
                # "bridge-pull@500us": the bridge with --io_round_window=500us.
                name, _, window = self.system.partition("@")
                mode = name.split("-")[1]
                bridge_args = [f"{b}/server/audiosocket-bridge", "--listen=127.0.0.1:0",
                               "--grpc_listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
                               f"--mode={mode}", "--drain_timeout=2s",
                               f"--io_threads={a.io_threads}"]
                if window:
                    bridge_args.append(f"--io_round_window={window}")
                if name.endswith("-grpc"):
                    # The same bridge on gRPC C++'s client or server instead
                    # of the loops' own.
                    bridge_args.append("--push_transport=grpc" if mode == "push"
                                       else "--server_transport=grpc")
                if mode == "push":
                    unix = name.endswith("-unix")
                    listen = f"unix:{self.socket_path}" if unix else "127.0.0.1:0"
                    backend = self.start("backend", backend_argv + ["--mode=push",
                                                                    f"--listen={listen}"],
                                         a.backend_core)
                    port = wait_for(self.path("backend.err"), r'"port":(\d+)').group(1)
                    bridge_args.append(f"--backend={listen}" if unix
                                       else f"--backend=ipv4:127.0.0.1:{port}")
                # The bridge is always procs[0] when it exists: stop it last
                # with SIGTERM (see stop_all); restart the list accordingly.
                srv = self.start("server", bridge_args, 0, self.server_prefix())
                self.procs.remove(srv)
                self.procs.insert(0, srv)
                m = wait_for(self.path("server.err"),
                             r'"audiosocket":"([^"]+)","grpc_port":(\d+),"metrics_port":(\d+)')
                target, grpc_port, metrics_port = m.group(1), m.group(2), int(m.group(3))
                server_pid = srv.pid
                if mode == "pull":
                    slots = self.calls + max(10, self.calls // 10)
                    backend = self.start("backend", backend_argv + [
                        "--mode=pull", f"--bridge=127.0.0.1:{grpc_port}", f"--slots={slots}"],
                        a.backend_core)
                    deadline = time.time() + 20
                    while time.time() < deadline:
                        if scrape(metrics_port).get("audiosocket_bridge_idle_pull_slots", 0) >= slots:
                            break
                        time.sleep(0.2)
                    row["pull_slots"] = slots
            time.sleep(0.5)
            rss_idle = rss_kib(server_pid)
            ramp_s = max(1.0, self.calls / a.ramp_rate)
            row["caller"] = f"asterisk-{self.asterisk.path}" if self.asterisk else "emulator"
            row["arrivals"] = None if self.asterisk else a.arrivals
            t_start = time.time()
            if self.asterisk:
                # Real Asterisk's calls last until the step hangs them up.
                self.asterisk.place(target, self.calls, a.ramp_rate)
                caller_pid, call = self.asterisk.pid, None
            else:
                def emulator(name, calls, ramp, duration_ms, prefix=None):
                    return self.start(name, [
                        f"{b}/tools/audiosocket-call/audiosocket-call", f"--target={target}",
                        f"--calls={calls}", f"--ramp={ramp}", f"--arrivals={a.arrivals}",
                        f"--duration={duration_ms}ms", f"--rate={self.rate}", "--stamp_frames",
                        f"--tick={a.caller_tick}",
                        "--log_messages=false", "--source=tone:440:-20"], 1, prefix)
                probe_calls = min(a.probe_calls, self.calls - 1)
                call = emulator("emulator", self.calls - probe_calls, a.ramp_rate,
                                a.seconds * 1000,
                                ["chrt", "--fifo", "40"] if a.caller_fifo else None)
                caller_pid = call.pid
            # Steady window: all calls up (ramp + 1 s settle) until 1 s before the first ends.
            window_start = t_start + ramp_s + 1.0
            window_end = t_start + a.seconds - 1.0
            if window_end - window_start < 3:
                raise RuntimeError("--seconds too short for the ramp")
            probe = None
            if not self.asterisk and probe_calls:
                # The probe: a few of the step's calls from a second emulator
                # that runs SCHED_FIFO on the same core, so it reads each
                # frame as it arrives even when the main emulator saturates
                # the core. Its kernel arrival times are then one per frame
                # (a frame left unread is merged with the next and takes its
                # time), and its jitter is the server's alone. Its calls start
                # once the others are up (in 0.2 s) and end with the window:
                # its figures are the steady state's, without ramps.
                probe_start = window_start - 0.5
                time.sleep(max(0.0, probe_start - time.time()))
                probe = emulator("probe", probe_calls, probe_calls * 5,
                                 int((window_end - probe_start) * 1000),
                                 ["chrt", "--fifo", "50"])
            time.sleep(max(0.0, window_start - time.time()))
            sc = SyscallCounter(a.syscalls, server_pid, window_end - time.time(),
                                self.path("perf-syscalls.txt"), self.prefix())
            x0 = ctx_switches(server_pid)
            m0 = scrape(metrics_port) if metrics_port is not None else None
            c0, w0 = cpu_ticks(server_pid), time.time()
            s0 = steal_ms(0)
            b0 = cpu_ticks(backend.pid) if backend else None
            e0 = cpu_ticks(caller_pid)
            if self.asterisk:
                # Calls that reached the server: with no emulator to say
                # which failed, its established connections.
                row["calls_connected"] = established_connections(int(target.rsplit(":", 1)[1]))
            rss_peak = 0
            while time.time() < window_end:
                rss_peak = max(rss_peak, rss_kib(server_pid))
                time.sleep(min(1.0, max(0.0, window_end - time.time())))
            c1, w1 = cpu_ticks(server_pid), time.time()
            row["steal_ms_core0"] = steal_ms(0) - s0
            x1 = ctx_switches(server_pid)
            m1 = scrape(metrics_port) if metrics_port is not None else None
            b1 = cpu_ticks(backend.pid) if backend else None
            e1 = cpu_ticks(caller_pid)
            row["load_during"] = loadavg()
            row["window_s"] = round(w1 - w0, 2)
            cpu_pct = 100.0 * (c1 - c0) / CLK_TCK / (w1 - w0)
            row["server_cpu_pct"] = round(cpu_pct, 2)
            row["cpu_pct_per_call"] = round(cpu_pct / self.calls, 4)
            # Context switches of the server per 20 ms frame received.
            row["ctx_per_frame"] = round((x1 - x0) / (w1 - w0) / (self.calls * 50), 2)
            # Lock contention in the bridge (absl::Mutex waits that slept)
            # per frame, over the same window.
            row["mutex_waits_per_frame"] = (
                round((m1[MUTEX_WAITS] - m0[MUTEX_WAITS]) / (w1 - w0) / (self.calls * 50), 4)
                if m0 is not None and MUTEX_WAITS in m0 and MUTEX_WAITS in m1 else None)
            # The bridge's own pacing: how late its playout ticks ran, over
            # the window (bucket bounds, so "at most").
            if m0 is not None:
                window = {k: v - m0.get(k, 0) for k, v in m1.items()
                          if k.startswith(TICK_LATENESS) or k.startswith(LOOP_ROUNDS)}
                for q in (0.5, 0.99):
                    v = histogram_quantile(window, TICK_LATENESS, q)
                    row[f"tick_late_p{int(q * 100)}_le_ms"] = None if v is None else v * 1000
                # The worst tick against the longest round: a tick a frame
                # late while every round was short waited for a loop that
                # was not running (another process, the hypervisor).
                v = histogram_quantile(window, TICK_LATENESS, 1.0)
                row["tick_late_max_le_ms"] = None if v is None else v * 1000
                v = histogram_quantile(window, LOOP_ROUNDS, 0.99)
                row["round_p99_le_ms"] = None if v is None else v * 1000
                v = histogram_quantile(window, LOOP_ROUNDS, 1.0)
                row["round_max_le_ms"] = None if v is None else v * 1000
            # System calls of the server per 20 ms frame received (perf's
            # window is the same, give or take its start-up).
            n = sc.count()
            row["syscalls_per_frame"] = (round(n / (w1 - w0) / (self.calls * 50), 2)
                                         if n is not None else None)
            row["backend_cpu_pct"] = (round(100.0 * (b1 - b0) / CLK_TCK / (w1 - w0), 2)
                                      if backend else None)
            row["caller_cpu_pct"] = round(100.0 * (e1 - e0) / CLK_TCK / (w1 - w0), 2)
            row["rss_idle_kib"] = rss_idle
            row["rss_kib"] = rss_peak
            row["rss_kib_per_call"] = round((rss_peak - rss_idle) / self.calls, 1)
            if self.asterisk:
                self.asterisk_results(row, metrics_port, relay, backend)
                return row
            row["emulator_cpu_pct"] = row["caller_cpu_pct"]
            summary = self.emulator_summary(call, "emulator")
            row["ok_calls"] = summary["ok"]
            row["failed_calls"] = summary["failed"]
            row["frames_sent"] = summary["frames_sent"]
            row["frames_received"] = summary["frames_received"]
            if probe is not None:
                ps = self.emulator_summary(probe, "probe")
                for k in ("ok", "failed", "frames_sent", "frames_received"):
                    row[k if k.startswith("frames") else f"{k}_calls"] += ps[k]
                row["probe_calls"] = probe_calls
                row["probe_send_jitter_p99_ms"] = ps["send_jitter_ms"]["p99"]
                arrival = ps.get("arrival_jitter_ms") or {}
                for k in ("p50", "p99", "max"):
                    row[f"probe_arrival_jitter_{k}_ms"] = (arrival.get(k) if arrival.get("count")
                                                           else None)
            for k in ("p50", "p99", "max"):
                row[f"send_jitter_{k}_ms"] = summary["send_jitter_ms"][k]
                row[f"jitter_{k}_ms"] = summary["recv_jitter_ms"][k]
                # By the kernel's receive times: the server's pacing without
                # the emulator's own delays in reading (it shares core 1).
                arrival = summary.get("arrival_jitter_ms") or {}
                row[f"arrival_jitter_{k}_ms"] = arrival.get(k) if arrival.get("count") else None
            rtt = summary.get("rtt_ms") or {}
            row["rtt_p50_ms"], row["rtt_p99_ms"] = rtt.get("p50"), rtt.get("p99")
            drift = summary.get("recv_drift_ppm") or {}
            row["drift_ppm"], row["drift_worst_call_ppm"] = drift.get("mean"), drift.get("worst_call")
            be = self.server_and_backend_counters(row, metrics_port, relay, backend)
            if be is not None:
                row["lat_p50_ms"] = be["latency_ms"]["p50"]
                row["lat_p99_ms"] = be["latency_ms"]["p99"]
                row["lat_max_ms"] = be["latency_ms"]["max"]
                # Inbound loss: frames the emulator sent that the backend never got.
                row["lost_in"] = row["frames_sent"] - be["chunks"]
            else:
                # The echo server echoes what it reads: loss is sent - received.
                row["lost_in"] = row["frames_sent"] - row["frames_received"]
            # Inbound: every frame sent must reach the backend (or the echo
            # server); bridge drops (dropped_in, gaps) are part of lost_in.
            # Outbound: frames the bridge dropped toward the emulator.
            lost = row["lost_in"] + row.get("dropped_out", 0)
            row["lost_total"] = lost
            # Late playout ticks skip frames toward the caller: not held either.
            row["held"] = held(row)
        except Exception as e:  # a failed step is reported, the run goes on
            row["error"] = str(e)
            row["held"] = False
        finally:
            if self.asterisk:
                try:
                    self.asterisk.hang_up_all()
                except (OSError, RuntimeError) as e:
                    row.setdefault("error", str(e))
                    row["held"] = False
            self.stop_all()
        return row

    def emulator_summary(self, proc, name):
        """Waits for an emulator and returns its JSON summary."""
        try:
            proc.wait(timeout=self.args.seconds + 30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise RuntimeError(f"the {name} did not finish in time")
        with open(self.path(name + ".out")) as f:
            return json.loads(f.read().strip().splitlines()[-1])

    def server_and_backend_counters(self, row, metrics_port, relay, backend):
        """Fills `row` from the bridge's /metrics, the Go relay's counters
        (stopping it) and the backend's summary line (stopping it); returns
        that summary, or None without a backend."""
        if metrics_port is not None:
            m = scrape(metrics_port)
            name = "audiosocket_bridge_inbound_to_backend_latency_seconds"
            for q in (0.5, 0.99):
                v = histogram_quantile(m, name, q)
                row[f"bridge_queue_p{int(q * 100)}_le_ms"] = None if v is None else v * 1000
            row["dropped_in"] = int(m.get('audiosocket_bridge_dropped_frames_total{direction="in"}', 0))
            row["dropped_out"] = int(m.get('audiosocket_bridge_dropped_frames_total{direction="out"}', 0))
            row["late_ticks"] = int(m.get("audiosocket_bridge_playout_late_ticks_total", 0))
            row["underruns"] = int(m.get("audiosocket_bridge_playout_underruns_total", 0))
        if relay is not None:
            relay.send_signal(signal.SIGTERM)
            relay.wait(timeout=10)
            with open(self.path("server.out")) as f:
                rs = json.loads(f.read().strip().splitlines()[-1])
            row["dropped_in"] = rs["dropped_in"]
            row["dropped_out"] = rs["dropped_out_ms"] // 20
            row["late_ticks"] = rs["late_ticks"]
            row["relay_skipped_frames"] = rs["skipped_frames"]
        if backend is None:
            return None
        backend.send_signal(signal.SIGINT)
        backend.wait(timeout=10)
        with open(self.path("backend.out")) as f:
            be = json.loads(f.read().strip().splitlines()[-1])
        row["backend_chunks"] = be["chunks"]
        row["backend_calls"] = be["calls"]
        # Events other than audio the backend got: messages beyond one per
        # frame (playout notices, results).
        row["backend_other_events"] = be.get("other_events")
        row["gap_samples"] = be["gap_samples"]
        row["gap_frames"] = be["gap_samples"] // (self.rate // 50)
        va = be.get("voice_agent")
        if va is not None:
            for k in ("prompts", "marks_sent", "marks_played", "marks_cleared",
                      "marks_call_ended", "marks_unresolved", "barged_marks_played",
                      "unbarged_marks_cleared", "clears_sent", "clear_results",
                      "command_errors"):
                row["va_" + k] = va[k]
            for name, key in (("mark_error_ms", "mark_err"), ("clear_latency_ms", "clear_lat"),
                              ("clear_played_error_ms", "clear_played_err")):
                d = va.get(name) or {}
                for q in ("p50", "p99", "min", "max"):
                    row[f"{key}_{q}_ms"] = d.get(q)
        return be

    def asterisk_results(self, row, metrics_port, relay, backend):
        """The rest of a step whose callers are real Asterisk: the server's
        and the backend's counters once the calls are hung up. Asterisk
        says nothing of jitter or of the frames it sent, so those stay
        empty; a lost frame shows as a drop or gap on the server's side."""
        self.asterisk.hang_up_all()
        row["ok_calls"] = row["calls_connected"]
        row["failed_calls"] = self.calls - row["calls_connected"]
        self.server_and_backend_counters(row, metrics_port, relay, backend)
        row["lost_total"] = (row.get("dropped_in", 0) + row.get("dropped_out", 0)
                             + row.get("gap_frames", 0))
        row["held"] = held(row)


def held(r):
    """No failed call, no lost frame, no late tick, jitter p99 < 2 ms; with
    the voice agent also every mark resolved as expected and no command
    refused."""
    if r.get("probe_calls"):
        # The probe's arrival jitter is the server's pacing; the main
        # emulator's figure at high load is mostly its own lateness. A probe
        # that measured nothing holds nothing.
        jitter = r.get("probe_arrival_jitter_p99_ms")
        jitter_ok = jitter is not None and jitter < 2.0
    else:
        # Real Asterisk reports no jitter: its rows hold on the rest.
        jitter = r.get("jitter_p99_ms")
        jitter_ok = jitter is None or jitter < 2.0
    ok = ("error" not in r and r["failed_calls"] == 0 and r["lost_total"] == 0
          and (r.get("late_ticks") or 0) == 0 and jitter_ok)
    if r.get("va_marks_sent") is not None:
        ok = ok and not (r["va_marks_unresolved"] or r["va_barged_marks_played"]
                         or r["va_unbarged_marks_cleared"] or r["va_command_errors"])
    return bool(ok)


COLUMNS = ["system", "workload", "caller", "arrivals", "repeat", "order", "calls", "rate_hz", "load_before", "busy_before_pct", "load_during", "steal_ms_core0",
           "server_cpu_pct", "cpu_pct_per_call", "x_baseline", "x_paced", "x_gorelay", "ctx_per_frame",
           "syscalls_per_frame", "mutex_waits_per_frame", "backend_cpu_pct", "emulator_cpu_pct",
           "caller_cpu_pct", "calls_connected",
           "rss_idle_kib", "rss_kib", "rss_kib_per_call", "ok_calls", "failed_calls",
           "frames_sent", "frames_received", "backend_chunks", "backend_other_events", "lost_in", "dropped_in",
           "dropped_out", "gap_frames", "late_ticks", "underruns", "lost_total",
           "send_jitter_p99_ms", "jitter_p50_ms", "jitter_p99_ms", "jitter_max_ms",
           "arrival_jitter_p50_ms", "arrival_jitter_p99_ms", "arrival_jitter_max_ms", "probe_calls",
           "probe_send_jitter_p99_ms", "probe_arrival_jitter_p50_ms", "probe_arrival_jitter_p99_ms",
           "probe_arrival_jitter_max_ms", "drift_ppm",
           "drift_worst_call_ppm", "lat_p50_ms", "lat_p99_ms", "lat_max_ms",
           "bridge_queue_p50_le_ms", "bridge_queue_p99_le_ms", "tick_late_p50_le_ms", "tick_late_p99_le_ms",
           "tick_late_max_le_ms", "round_p99_le_ms", "round_max_le_ms", "rtt_p50_ms", "rtt_p99_ms",
           "va_prompts", "va_marks_sent", "va_marks_played", "va_marks_cleared", "va_marks_call_ended",
           "va_marks_unresolved", "va_barged_marks_played", "va_unbarged_marks_cleared",
           "va_command_errors", "mark_err_p50_ms", "mark_err_p99_ms", "mark_err_min_ms",
           "mark_err_max_ms", "clear_lat_p50_ms", "clear_lat_p99_ms", "clear_played_err_p50_ms",
           "clear_played_err_max_ms", "held", "error"]

# Per point (system, workload, calls, rate): median and spread over repeats.
SUMMARY = [("cpu_pct_per_call", "CPU/call (%)", 3), ("x_baseline", "x baseline", 2),
           ("x_paced", "x paced", 2),
           ("x_gorelay", "x gorelay", 2), ("rss_kib_per_call", "RSS/call (KiB)", 0),
           ("ctx_per_frame", "ctx sw/frame", 2), ("syscalls_per_frame", "syscalls/frame", 2),
           ("mutex_waits_per_frame", "mutex waits/frame", 4),
           ("jitter_p50_ms", "jitter p50 (ms)", 2), ("jitter_p99_ms", "jitter p99 (ms)", 2),
           ("arrival_jitter_p99_ms", "arrival jitter p99 (ms)", 2),
           ("probe_arrival_jitter_p99_ms", "probe arrival jitter p99 (ms)", 2),
           ("tick_late_p99_le_ms", "tick late p99 ≤ (ms)", 2),
           ("lost_total", "lost frames", 0), ("late_ticks", "late ticks", 0),
           ("mark_err_p50_ms", "mark err p50 (ms)", 1), ("mark_err_p99_ms", "mark err p99 (ms)", 1)]


def fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def add_ratios(rows):
    """x_baseline, x_paced and x_gorelay: CPU per call over that of the
    baseline, the paced baseline and the Go relay in the same repeat of the
    same point."""
    groups = {}
    for r in rows:
        groups.setdefault((r.get("repeat", 0), r.get("workload", "echo"), r["calls"], r["rate_hz"]),
                          {})[r["system"]] = r
    for g in groups.values():
        for r in g.values():
            for ref, key in (("baseline", "x_baseline"), ("baseline-paced", "x_paced"),
                             ("gorelay-push", "x_gorelay")):
                o = g.get(ref)
                r[key] = (round(r["cpu_pct_per_call"] / o["cpu_pct_per_call"], 2)
                          if r["system"] != ref and o and "error" not in r and "error" not in o
                          and o.get("cpu_pct_per_call") else None)


def summarize(rows):
    points = {}
    for r in rows:
        points.setdefault((r.get("workload", "echo"), r["rate_hz"], r["calls"], r["system"]), []).append(r)
    out = []
    for (workload, rate, calls, system), rs in sorted(points.items()):
        ok = [r for r in rs if "error" not in r]
        p = {"system": system, "workload": workload, "calls": calls, "rate_hz": rate,
             "repeats": len(rs), "errors": len(rs) - len(ok), "held": sum(1 for r in ok if r.get("held"))}
        for key, _, _ in SUMMARY:
            v = [r[key] for r in ok if r.get(key) is not None]
            p[key] = ({"median": statistics.median(v), "min": min(v), "max": max(v)} if v else None)
        out.append(p)
    return out


def summary_markdown(points):
    lines = ["| system | workload | calls | kHz | " + " | ".join(h for _, h, _ in SUMMARY)
             + " | held / repeats |", "|" + "---|" * (len(SUMMARY) + 5)]
    for p in points:
        cells = []
        for key, _, digits in SUMMARY:
            v = p[key]
            if v is None:
                cells.append("–")
            elif p["repeats"] - p["errors"] > 1:
                cells.append(f"{v['median']:.{digits}f} [{v['min']:.{digits}f}–{v['max']:.{digits}f}]")
            else:
                cells.append(f"{v['median']:.{digits}f}")
        lines.append(f"| {p['system']} | {p['workload']} | {p['calls']} | {p['rate_hz'] // 1000} | "
                     + " | ".join(cells) + f" | {p['held']} / {p['repeats']} |")
    return "\n".join(lines) + "\n"


def write_outputs(out, rows, systems):
    """results.json, summary.*, capacity.json and the gnuplot series, from `rows`."""
    add_ratios(rows)
    with open(os.path.join(out, "results.csv"), "w") as csv:
        csv.write(",".join(COLUMNS) + "\n")
        for row in rows:
            csv.write(",".join(fmt(row.get(c)) for c in COLUMNS) + "\n")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    points = summarize(rows)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(points, f, indent=1)
    md = summary_markdown(points)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("Median [min–max] over repeats; ratios are CPU per call over the baseline's, the "
                "paced baseline's and the Go relay's in the same repeat of the same point.\n\n"
                + md)
    print(md, file=sys.stderr)
    # Capacity: largest 8 kHz echo call count held in every repeat.
    capacity = {}
    for p in points:
        if (p["rate_hz"] == 8000 and p["workload"] == "echo" and p["held"] == p["repeats"]):
            capacity[p["system"]] = max(capacity.get(p["system"], 0), p["calls"])
    with open(os.path.join(out, "capacity.json"), "w") as f:
        json.dump(capacity, f)
    print(json.dumps({"capacity": capacity}))
    # Per system and workload, 8 kHz series for gnuplot (bench/bridge/plot.gp):
    # medians over repeats, one line per number of calls.
    plot_columns = ("server_cpu_pct", "cpu_pct_per_call", "x_baseline", "x_gorelay",
                    "rss_kib_per_call", "jitter_p99_ms", "arrival_jitter_p99_ms", "lat_p99_ms")
    for system in systems:
        for workload in sorted({r.get("workload", "echo") for r in rows}):
            by_calls = {}
            for r in rows:
                if (r["system"] == system and r["rate_hz"] == 8000 and "error" not in r
                        and r.get("workload", "echo") == workload):
                    by_calls.setdefault(r["calls"], []).append(r)
            if not by_calls:
                continue
            with open(os.path.join(out, f"plot-{system}-{workload}.dat"), "w") as f:
                f.write("# calls " + " ".join(plot_columns) + " (medians over repeats)\n")
                for calls in sorted(by_calls):
                    cells = [str(calls)]
                    for c in plot_columns:
                        v = [r[c] for r in by_calls[calls] if r.get(c) is not None]
                        cells.append(fmt(float(statistics.median(v))) if v else "NaN")
                    f.write(" ".join(cells) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True, help="bazel-bin of the -c opt build")
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=int, default=25, help="length of each call")
    p.add_argument("--ramp_rate", type=int, default=500, help="calls started per second")
    p.add_argument("--arrivals", choices=("poisson", "even"), default="poisson",
                   help="emulator: how call starts are spread at --ramp_rate. poisson (random "
                        "gaps) puts each call's 20 ms frame clock at a random phase, as "
                        "independent callers and Asterisk's channels do; even (every "
                        "1/ramp_rate) gives a few phases only, so many calls' frames arrive "
                        "together and a server answers them in one wake-up")
    p.add_argument("--caller_tick", default="0",
                   help="emulator: call starts are rounded up to this grid (its --tick), so "
                        "frames due within it share the emulator's wake-up and arrive "
                        "together; 0 = none, as real callers. 250us keeps the emulator light "
                        "enough for 1,000 calls on one core")
    p.add_argument("--io_threads", type=int, default=1)
    p.add_argument("--nice", type=int, default=-10,
                   help="niceness of every benchmark process (0: none); a shared machine's "
                        "other work otherwise starves the emulator")
    p.add_argument("--steps", default="100,200,500,1000,2000", help="8 kHz call counts")
    p.add_argument("--wide", default="500", help="16 kHz call counts ('' for none)")
    p.add_argument("--systems", default="baseline,bridge-push,bridge-pull,gorelay-push")
    p.add_argument("--workloads", default="echo", help="echo,voice_agent (echo-backend --workload)")
    p.add_argument("--repeats", type=int, default=1,
                   help="run every point this many times (system order rotated each time)")
    p.add_argument("--gorelay", default="", help="the Go relay binary (run.sh builds it)")
    p.add_argument("--backend_args", default="",
                   help="extra echo-backend flags, e.g. '--prompt_every_ms=2000 --barge_every=2'")
    p.add_argument("--syscalls", type=int, default=1 if shutil.which("perf") else 0,
                   help="1: count the server's system calls with perf stat (default when perf exists)")
    p.add_argument("--rt", action="store_true",
                   help="run every benchmark process SCHED_RR (chrt --rr 10): wake-ups beat "
                        "other work; only for steps that leave the cores idle part of the time")
    p.add_argument("--caller", default="emulator", choices=("emulator", "asterisk"),
                   help="who places the calls: audiosocket-call, or stock Asterisk's "
                        "AudioSocket() application (8 kHz steps only; needs --asterisk_prefix)")
    p.add_argument("--backend_transport", default="grpc", choices=("grpc", "loop"),
                   help="echo-backend's --transport: grpc (gRPC C++'s reactors) or loop (echo "
                        "only: the bridge's own loop and HTTP/2 client or server, a load side "
                        "light enough for one core to carry 1,000 calls)")
    p.add_argument("--probe_calls", type=int, default=0,
                   help="this many of each step's calls come from a second emulator run "
                        "SCHED_FIFO on the caller's core (the probe): its arrival jitter is "
                        "the server's pacing even when the main emulator saturates that core")
    p.add_argument("--server_fifo", action="store_true",
                   help="run the server under test SCHED_FIFO on its core, so that no other "
                        "work of the machine preempts it (its pacing alone)")
    p.add_argument("--caller_fifo", action="store_true",
                   help="run the emulator SCHED_FIFO (below the probe): it sends on time as "
                        "Asterisk's own timers would, and the backend beside it takes the "
                        "delays when their core is full")
    p.add_argument("--backend_core", type=int, default=1, choices=(0, 1),
                   help="the backend's core: 1 (beside the caller, the default) or 0 (beside "
                        "the server under test, whose CPU is still counted alone; it leaves "
                        "core 1 to a caller that needs all of it, e.g. Asterisk at 300 calls)")
    p.add_argument("--asterisk_path", default="app", choices=("app", "channel"),
                   help="with --caller=asterisk: the AudioSocket() application on a Local "
                        "channel (app), or the AudioSocket channel driver's own channel (channel)")
    p.add_argument("--asterisk_prefix", default="",
                   help="an Asterisk install (run.sh builds one with tests/asterisk/build-asterisk.sh)")
    p.add_argument("--from_results", default="",
                   help="DIR1,DIR2,...: run nothing; merge their results.json into --out "
                        "(table, capacity, plot series)")
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    if a.from_results:
        rows = []
        for d in a.from_results.split(","):
            with open(os.path.join(d, "results.json")) as f:
                rows += json.load(f)
        rows.sort(key=lambda r: (r.get("workload", "echo"), r["rate_hz"], r["calls"]))
        for r in rows:  # the held rule of this version
            r["held"] = "error" not in r and held(r)
        write_outputs(a.out, rows, a.systems.split(","))
        return
    if a.nice:
        # With kernel.sched_autogroup_enabled, CPU is shared between sessions
        # first and nice only counts inside a session: run.sh starts this
        # driver in its own session (setsid) and its autogroup gets the nice.
        try:
            with open("/proc/self/autogroup", "w") as f:
                f.write(str(a.nice))
        except OSError as e:
            print(f"# cannot set the autogroup nice: {e}", file=sys.stderr)
    systems = a.systems.split(",")
    if a.backend_transport == "loop" and "voice_agent" in a.workloads.split(","):
        p.error("--backend_transport=loop serves the echo workload only")
    if "gorelay-push" in systems and not os.access(a.gorelay, os.X_OK):
        p.error("gorelay-push needs --gorelay=PATH (run.sh builds it)")
    plan = [(n, 8000) for n in map(int, a.steps.split(","))]
    plan += [(n, 16000) for n in map(int, filter(None, a.wide.split(",")))]
    if a.caller == "asterisk":
        if not a.asterisk_prefix:
            p.error("--caller=asterisk needs --asterisk_prefix=DIR (run.sh builds it)")
        # Its AudioSocket() application sends 8 kHz signed linear only.
        plan = [(n, r) for n, r in plan if r == 8000]
    rows = []
    asterisk = None
    try:
        if a.caller == "asterisk":
            prefix = ["nice", "-n", str(a.nice)] if a.nice and not a.rt else (
                ["chrt", "--rr", "10"] if a.rt else [])
            asterisk = AsteriskCaller(a.asterisk_prefix, a.out, 1, prefix, a.asterisk_path)
        run_plan(a, systems, plan, rows, asterisk)
    finally:
        if asterisk is not None:
            asterisk.stop()
    write_outputs(a.out, rows, a.systems.split(","))


def run_plan(a, systems, plan, rows, asterisk):
    with open(os.path.join(a.out, "results.csv"), "w") as csv:
        csv.write(",".join(COLUMNS) + "\n")
        for repeat in range(a.repeats):
            # Rotate the order of the systems each repeat: none is always first.
            order = systems[repeat % len(systems):] + systems[:repeat % len(systems)]
            for workload in a.workloads.split(","):
                for calls, rate in plan:
                    for i, system in enumerate(order):
                        if system == "gorelay-push" and rate != 8000:
                            continue  # the Go relay is 8 kHz only
                        t = time.time()
                        row = Step(a, system, calls, rate, workload, repeat, i, asterisk).run()
                        rows.append(row)
                        csv.write(",".join(fmt(row.get(c)) for c in COLUMNS) + "\n")
                        csv.flush()
                        print(json.dumps(row), flush=True)
                        print(f"# {system} {workload} {calls} calls {rate} Hz repeat {repeat}: "
                              f"{time.time() - t:.0f} s", file=sys.stderr, flush=True)

if __name__ == "__main__":
    main()
