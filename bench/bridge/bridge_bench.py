#!/usr/bin/env python3
"""The bridge benchmark's driver (bench/bridge/run.sh builds, then calls this).

For each step (system, calls, rate) it starts fresh processes, loopback only:
  - bridge-push: audiosocket-bridge --mode=push -> echo-backend (push),
  - bridge-pull: audiosocket-bridge --mode=pull <- echo-backend (ClaimCall slots),
  - baseline:    audiosocket-echo --mode=echo (AudioSocket echo, no gRPC),
with the system under test pinned to core 0 (taskset) and the emulator
(audiosocket-call) and backend pinned to core 1. It measures the server's CPU
(utime + stime from /proc/PID/stat) and RSS (VmRSS minus the idle value)
over the steady window, reads the emulator's JSON summary, the backend's
latency line and the bridge's /metrics, and writes results.csv,
results.json and a Markdown table into --out. Every step is bounded in time.
"""

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

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
    """Upper bound (seconds) of the bucket holding quantile q."""
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
    def __init__(self, args, system, calls, rate):
        self.args, self.system, self.calls, self.rate = args, system, calls, rate
        self.dir = os.path.join(args.out, f"{system}-{calls}-{rate // 1000}k")
        os.makedirs(self.dir, exist_ok=True)
        self.procs = []

    def start(self, name, argv, core):
        out = open(os.path.join(self.dir, name + ".out"), "w")
        err = open(os.path.join(self.dir, name + ".err"), "w")
        prefix = ["nice", "-n", str(self.args.nice)] if self.args.nice else []
        if self.args.rt:
            prefix = ["chrt", "--rr", "10"]
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

    def run(self):
        a, b = self.args, self.args.bin
        row = {"system": self.system, "calls": self.calls, "rate_hz": self.rate}
        row["load_before"] = loadavg()
        row["busy_before_pct"] = round(busy_cpu_pct(1.0), 1)
        metrics_port = None
        try:
            server_pid, backend = None, None
            if self.system == "baseline":
                srv = self.start("server", [f"{b}/bench/echo_server/audiosocket-echo",
                                            "--listen=127.0.0.1:0", "--mode=echo"], 0)
                target = wait_for(self.path("server.err"), r'"address":"([^"]+)"').group(1)
                server_pid = srv.pid
            else:
                mode = self.system.split("-")[1]
                bridge_args = [f"{b}/server/audiosocket-bridge", "--listen=127.0.0.1:0",
                               "--grpc_listen=127.0.0.1:0", "--metrics_listen=127.0.0.1:0",
                               f"--mode={mode}", "--drain_timeout=2s",
                               f"--io_threads={a.io_threads}"]
                if mode == "push":
                    backend = self.start("backend", [f"{b}/bench/echo_backend/echo-backend",
                                                     "--mode=push", "--listen=127.0.0.1:0"], 1)
                    port = wait_for(self.path("backend.err"), r'"port":(\d+)').group(1)
                    bridge_args.append(f"--backend=ipv4:127.0.0.1:{port}")
                # The bridge is always procs[0] when it exists: stop it last
                # with SIGTERM (see stop_all); restart the list accordingly.
                srv = self.start("server", bridge_args, 0)
                self.procs.remove(srv)
                self.procs.insert(0, srv)
                m = wait_for(self.path("server.err"),
                             r'"audiosocket":"([^"]+)","grpc_port":(\d+),"metrics_port":(\d+)')
                target, grpc_port, metrics_port = m.group(1), m.group(2), int(m.group(3))
                server_pid = srv.pid
                if mode == "pull":
                    slots = self.calls + max(10, self.calls // 10)
                    backend = self.start("backend", [f"{b}/bench/echo_backend/echo-backend",
                                                     "--mode=pull",
                                                     f"--bridge=127.0.0.1:{grpc_port}",
                                                     f"--slots={slots}"], 1)
                    deadline = time.time() + 20
                    while time.time() < deadline:
                        if scrape(metrics_port).get("audiosocket_bridge_idle_pull_slots", 0) >= slots:
                            break
                        time.sleep(0.2)
                    row["pull_slots"] = slots
            time.sleep(0.5)
            rss_idle = rss_kib(server_pid)
            ramp_s = max(1.0, self.calls / a.ramp_rate)
            call = self.start("emulator", [
                f"{b}/tools/audiosocket-call/audiosocket-call", f"--target={target}",
                f"--calls={self.calls}", f"--ramp={a.ramp_rate}", f"--duration={a.seconds}s",
                f"--rate={self.rate}", "--stamp_frames", "--tick=250us", "--log_messages=false",
                "--source=tone:440:-20"], 1)
            t_start = time.time()
            # Steady window: all calls up (ramp + 1 s settle) until 1 s before the first ends.
            window_start = t_start + ramp_s + 1.0
            window_end = t_start + a.seconds - 1.0
            if window_end - window_start < 3:
                raise RuntimeError("--seconds too short for the ramp")
            time.sleep(window_start - time.time())
            x0 = ctx_switches(server_pid)
            c0, w0 = cpu_ticks(server_pid), time.time()
            b0 = cpu_ticks(backend.pid) if backend else None
            e0 = cpu_ticks(call.pid)
            rss_peak = 0
            while time.time() < window_end:
                rss_peak = max(rss_peak, rss_kib(server_pid))
                time.sleep(min(1.0, max(0.0, window_end - time.time())))
            c1, w1 = cpu_ticks(server_pid), time.time()
            x1 = ctx_switches(server_pid)
            b1 = cpu_ticks(backend.pid) if backend else None
            e1 = cpu_ticks(call.pid)
            row["load_during"] = loadavg()
            row["window_s"] = round(w1 - w0, 2)
            cpu_pct = 100.0 * (c1 - c0) / CLK_TCK / (w1 - w0)
            row["server_cpu_pct"] = round(cpu_pct, 2)
            row["cpu_pct_per_call"] = round(cpu_pct / self.calls, 4)
            # Context switches of the server per 20 ms frame received.
            row["ctx_per_frame"] = round((x1 - x0) / (w1 - w0) / (self.calls * 50), 2)
            row["backend_cpu_pct"] = (round(100.0 * (b1 - b0) / CLK_TCK / (w1 - w0), 2)
                                      if backend else None)
            row["emulator_cpu_pct"] = round(100.0 * (e1 - e0) / CLK_TCK / (w1 - w0), 2)
            row["rss_idle_kib"] = rss_idle
            row["rss_kib"] = rss_peak
            row["rss_kib_per_call"] = round((rss_peak - rss_idle) / self.calls, 1)
            try:
                call.wait(timeout=a.seconds + 30)
            except subprocess.TimeoutExpired:
                call.kill()
                call.wait()
                raise RuntimeError("the emulator did not finish in time")
            with open(self.path("emulator.out")) as f:
                summary = json.loads(f.read().strip().splitlines()[-1])
            row["ok_calls"] = summary["ok"]
            row["failed_calls"] = summary["failed"]
            row["frames_sent"] = summary["frames_sent"]
            row["frames_received"] = summary["frames_received"]
            for k in ("p50", "p99", "max"):
                row[f"send_jitter_{k}_ms"] = summary["send_jitter_ms"][k]
                row[f"jitter_{k}_ms"] = summary["recv_jitter_ms"][k]
            rtt = summary.get("rtt_ms") or {}
            row["rtt_p50_ms"], row["rtt_p99_ms"] = rtt.get("p50"), rtt.get("p99")
            drift = summary.get("recv_drift_ppm") or {}
            row["drift_ppm"], row["drift_worst_call_ppm"] = drift.get("mean"), drift.get("worst_call")
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
            if backend is not None:
                backend.send_signal(signal.SIGINT)
                backend.wait(timeout=10)
                with open(self.path("backend.out")) as f:
                    be = json.loads(f.read().strip().splitlines()[-1])
                row["backend_chunks"] = be["chunks"]
                row["backend_calls"] = be["calls"]
                row["lat_p50_ms"] = be["latency_ms"]["p50"]
                row["lat_p99_ms"] = be["latency_ms"]["p99"]
                row["lat_max_ms"] = be["latency_ms"]["max"]
                row["gap_samples"] = be["gap_samples"]
                # Inbound loss: frames the emulator sent that the backend never got.
                row["lost_in"] = summary["frames_sent"] - be["chunks"]
                row["gap_frames"] = be["gap_samples"] // (self.rate // 50)
            else:
                # The echo server echoes what it reads: loss is sent - received.
                row["lost_in"] = summary["frames_sent"] - summary["frames_received"]
            # Inbound: every frame sent must reach the backend (or the echo
            # server); bridge drops (dropped_in, gaps) are part of lost_in.
            # Outbound: frames the bridge dropped toward the emulator.
            lost = row["lost_in"] + row.get("dropped_out", 0)
            row["lost_total"] = lost
            # Late playout ticks skip frames toward the caller: not held either.
            row["held"] = bool(summary["failed"] == 0 and lost == 0
                               and row.get("late_ticks", 0) == 0 and row["jitter_p99_ms"] < 2.0)
        except Exception as e:  # a failed step is reported, the run goes on
            row["error"] = str(e)
            row["held"] = False
        finally:
            self.stop_all()
        return row


COLUMNS = ["system", "calls", "rate_hz", "load_before", "busy_before_pct", "load_during",
           "server_cpu_pct", "cpu_pct_per_call", "ctx_per_frame", "backend_cpu_pct", "emulator_cpu_pct",
           "rss_idle_kib", "rss_kib", "rss_kib_per_call", "ok_calls", "failed_calls",
           "frames_sent", "frames_received", "backend_chunks", "lost_in", "dropped_in",
           "dropped_out", "gap_frames", "late_ticks", "underruns", "lost_total",
           "send_jitter_p99_ms", "jitter_p50_ms", "jitter_p99_ms", "jitter_max_ms", "drift_ppm",
           "drift_worst_call_ppm", "lat_p50_ms", "lat_p99_ms", "lat_max_ms",
           "bridge_queue_p50_le_ms", "bridge_queue_p99_le_ms", "rtt_p50_ms", "rtt_p99_ms",
           "held", "error"]


def fmt(v):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_outputs(out, rows, systems):
    """results.json, capacity.json and the gnuplot series, from `rows`."""
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    # Capacity: largest 8 kHz call count held (no loss, jitter p99 < 2 ms).
    capacity = {}
    for r in rows:
        if r["rate_hz"] == 8000 and r.get("held"):
            capacity[r["system"]] = max(capacity.get(r["system"], 0), r["calls"])
    with open(os.path.join(out, "capacity.json"), "w") as f:
        json.dump(capacity, f)
    print(json.dumps({"capacity": capacity}))
    # Per-system 8 kHz series for gnuplot (bench/bridge/plot.gp).
    for system in systems:
        with open(os.path.join(out, f"plot-{system}.dat"), "w") as f:
            f.write("# calls server_cpu_pct cpu_pct_per_call rss_kib_per_call jitter_p99_ms "
                    "lat_p99_ms rtt_p99_ms\n")
            for r in rows:
                if r["system"] == system and r["rate_hz"] == 8000 and "error" not in r:
                    f.write(" ".join(fmt(r.get(c)) or "NaN" for c in (
                        "calls", "server_cpu_pct", "cpu_pct_per_call", "rss_kib_per_call",
                        "jitter_p99_ms", "lat_p99_ms", "rtt_p99_ms")) + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True, help="bazel-bin of the -c opt build")
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=int, default=25, help="length of each call")
    p.add_argument("--ramp_rate", type=int, default=500, help="calls started per second")
    p.add_argument("--io_threads", type=int, default=1)
    p.add_argument("--nice", type=int, default=-10,
                   help="niceness of every benchmark process (0: none); a shared machine's "
                        "other work otherwise starves the emulator")
    p.add_argument("--steps", default="100,200,500,1000,2000", help="8 kHz call counts")
    p.add_argument("--wide", default="500", help="16 kHz call counts ('' for none)")
    p.add_argument("--systems", default="baseline,bridge-push,bridge-pull")
    p.add_argument("--rt", action="store_true",
                   help="run every benchmark process SCHED_RR (chrt --rr 10): wake-ups beat "
                        "other work; only for steps that leave the cores idle part of the time")
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
        rows.sort(key=lambda r: (r["rate_hz"], r["calls"]))
        for r in rows:  # the held rule of this version
            r["held"] = bool("error" not in r and r["failed_calls"] == 0 and r["lost_total"] == 0
                             and r.get("late_ticks", 0) == 0 and r["jitter_p99_ms"] < 2.0)
        with open(os.path.join(a.out, "results.csv"), "w") as csv:
            csv.write(",".join(COLUMNS) + "\n")
            for row in rows:
                csv.write(",".join(fmt(row.get(c)) for c in COLUMNS) + "\n")
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
    plan = [(n, 8000) for n in map(int, a.steps.split(","))]
    plan += [(n, 16000) for n in map(int, filter(None, a.wide.split(",")))]
    rows = []
    with open(os.path.join(a.out, "results.csv"), "w") as csv:
        csv.write(",".join(COLUMNS) + "\n")
        for calls, rate in plan:
            for system in a.systems.split(","):
                t = time.time()
                row = Step(a, system, calls, rate).run()
                rows.append(row)
                csv.write(",".join(fmt(row.get(c)) for c in COLUMNS) + "\n")
                csv.flush()
                print(json.dumps(row), flush=True)
                print(f"# {system} {calls} calls {rate} Hz: {time.time() - t:.0f} s",
                      file=sys.stderr, flush=True)
    write_outputs(a.out, rows, a.systems.split(","))

if __name__ == "__main__":
    main()
