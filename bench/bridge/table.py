#!/usr/bin/env python3
"""Renders bridge_bench.py's results.json as the Markdown tables of
docs/BENCHMARKS.md: python3 bench/bridge/table.py RESULTS_DIR"""

import json
import os
import sys


def f(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def main():
    rows = json.load(open(os.path.join(sys.argv[1], "results.json")))
    def key(r):  # the same point in the same repeat
        return (r["calls"], r["rate_hz"], r.get("workload", "echo"), r.get("repeat", 0))

    base = {key(r): r for r in rows if r["system"] == "baseline"}
    relay = {key(r): r for r in rows if r["system"] == "gorelay-push"}
    print("| system | workload | calls | kHz | load | server CPU (% core) | CPU/call (%) | x baseline "
          "| x gorelay | RSS/call (KiB) | ctx sw/frame | syscalls/frame | jitter p50 / p99 / max (ms) | drift mean / worst call (ppm) "
          "| emu→backend p50 / p99 (ms) | bridge queue p99 (ms, /metrics) | RTT p50 / p99 (ms) | lost frames | late ticks | failed calls | held |")
    print("|" + "---|" * 21)
    for r in rows:
        if "error" in r:
            print(f"| {r['system']} | {r.get('workload', 'echo')} | {r['calls']} | {r['rate_hz'] // 1000} "
                  f"| error: {r['error']} |")
            continue

        def ratio(ref, name):
            o = ref.get(key(r))
            if o and r["system"] != name and "error" not in o and o.get("cpu_pct_per_call"):
                return f"{r['cpu_pct_per_call'] / o['cpu_pct_per_call']:.1f}"
            return "–"

        def ms(v):  # the backend's histogram ends at 100 ms
            return "> 100" if v is not None and v >= 100 else f(v)

        lat = (f"{ms(r.get('lat_p50_ms'))} / {ms(r.get('lat_p99_ms'))}"
               if r.get("lat_p50_ms") is not None else "–")
        q = r.get("bridge_queue_p99_le_ms")
        queue = "–" if q is None else ("> 10000" if q == float("inf") else f"≤ {q:g}")
        print(f"| {r['system']} | {r.get('workload', 'echo')} | {r['calls']} | {r['rate_hz'] // 1000} "
              f"| {f(r['load_during'], 1)} "
              f"| {f(r['server_cpu_pct'], 1)} | {f(r['cpu_pct_per_call'], 3)} "
              f"| {ratio(base, 'baseline')} | {ratio(relay, 'gorelay-push')} "
              f"| {f(r['rss_kib_per_call'], 0)} | {f(r.get('ctx_per_frame'))} "
              f"| {f(r.get('syscalls_per_frame'))} "
              f"| {f(r['jitter_p50_ms'])} / {f(r['jitter_p99_ms'])} / {f(r['jitter_max_ms'], 1)} "
              f"| {f(r.get('drift_ppm'), 1)} / {f(r.get('drift_worst_call_ppm'), 0)} | {lat} "
              f"| {queue} "
              f"| {f(r.get('rtt_p50_ms'), 1)} / {f(r.get('rtt_p99_ms'), 1)} | {r['lost_total']} "
              f"| {f(r.get('late_ticks'))} "
              f"| {r['failed_calls']} | {'yes' if r['held'] else 'no'} |")


if __name__ == "__main__":
    main()
