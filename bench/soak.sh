#!/usr/bin/env bash
# Soak test (long; not part of ./test.sh): CALLS concurrent calls for SECONDS
# through the bridge (push mode) to bench/echo_backend, which echoes every
# chunk and clears the caller's queue every 3 s. Callers come in 10 groups
# that each run back-to-back batches of random length (20-120 s), ending by
# hang-up (0x00) or abrupt close at random, with two DTMF digits per call.
# Samples the bridge's RSS and open descriptors every 10 s, then checks:
#   - RSS flat after warm-up: the peak of the last three quarters is within
#     15% (and 32 MB) of the first sample after the first quarter;
#   - no leaked descriptors: after the last call, as many as before the first;
#   - no lost frames: every frame sent on a call that hung up (0x00) was read
#     by the bridge (its call_ended lines, reason CALLER_HUNG_UP from a 0x00),
#     and nothing was dropped either way (dropped_frames_total). Calls closed
#     abruptly may lose what was in flight when the caller reset the socket,
#     so they are reported, not checked;
#   - every call ended with a reason: a call_ended line per call_started,
#     none UNSPECIFIED, and calls_ended_total sums to calls_started_total;
#   - every batch's emulator run reported no failed call.
# Prints one JSON line of figures; exits 1 if a check failed.
#
#   bash bench/soak.sh               500 calls, 600 s
#   bash bench/soak.sh 100 120       100 calls, 2 minutes
set -euo pipefail
cd "$(dirname "$0")/.."

calls=${1:-500}
seconds=${2:-600}
groups=10
per=$(((calls + groups - 1) / groups))

# Optimized, as deployed: a debug build needs several times the CPU.
bazel build -c opt //server:audiosocket-bridge //tools/audiosocket-call \
  //bench/echo_backend:echo-backend >&2
bin=$(bazel info -c opt bazel-bin 2>/dev/null)
work=$(mktemp -d "${TMPDIR:-/tmp}/audiosocket-soak.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

"$bin/bench/echo_backend/echo-backend" --mode=push --listen=127.0.0.1:0 --clear_every_ms=3000 \
  >"$work/backend.out" 2>"$work/backend.err" &
pids+=($!)
for _ in $(seq 100); do grep -q '"listening"' "$work/backend.err" 2>/dev/null && break; sleep 0.1; done
backend_port=$(grep -o '"port":[0-9]*' "$work/backend.err" | head -1 | cut -d: -f2)

"$bin/server/audiosocket-bridge" --backend="ipv4:127.0.0.1:$backend_port" --listen=127.0.0.1:0 \
  --grpc_listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 --first_audio_wait=100ms \
  --drain_timeout=5s >"$work/bridge.log" 2>&1 &
bridge=$!
pids+=($bridge)
for _ in $(seq 100); do grep -q '"listening"' "$work/bridge.log" 2>/dev/null && break; sleep 0.1; done
listening=$(grep '"listening"' "$work/bridge.log" | head -1)
as_port=$(grep -o '"audiosocket":"[^"]*' <<<"$listening" | sed 's/.*://')
metrics_port=$(grep -o '"metrics_port":[0-9]*' <<<"$listening" | cut -d: -f2)

metric() {  # metric 'name{labels}' -> value (0 when absent)
  curl -s "127.0.0.1:$metrics_port/metrics" | awk -v n="$1" '$1 == n {v = $2} END {print v + 0}'
}
metric_sum() {  # sum over every sample of a family
  curl -s "127.0.0.1:$metrics_port/metrics" | awk -v n="$1" 'index($1, n "{") == 1 {s += $2} END {print s + 0}'
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$bridge/status"; }
fds() { ls "/proc/$bridge/fd" | wc -l; }

# One short call first: the gRPC connection to the backend opens lazily.
"$bin/tools/audiosocket-call/audiosocket-call" --target="127.0.0.1:$as_port" --duration=1s \
  --log_messages=false --summary="$work/group0-warmup-hangup.json" >/dev/null 2>&1 || true
sleep 1
fds_before=$(fds)
echo "== soak: $calls calls ($groups groups of $per) for ${seconds}s; bridge pid $bridge; work $work" >&2

call_bin="$bin/tools/audiosocket-call/audiosocket-call"
for g in $(seq "$groups"); do
  (
    end=$((SECONDS + seconds))
    i=0
    while ((SECONDS + 25 < end)); do
      left=$((end - SECONDS - 5))
      duration=$((20 + RANDOM % 100))
      ((duration > left)) && duration=$left
      mode=hangup
      ((RANDOM % 3 == 0)) && mode=close
      dtmf="$((RANDOM % 10))@$((2 + RANDOM % 5))s,#@$((8 + RANDOM % 10))s"
      "$call_bin" --target="127.0.0.1:$as_port" --calls="$per" --ramp=50 --duration="${duration}s" \
        --end="$mode" --dtmf="$dtmf" --log_messages=false \
        --summary="$work/group$g-$i-$mode.json" >/dev/null 2>>"$work/callers.err" || true
      i=$((i + 1))
    done
  ) &
  pids+=($!)
done

sample() {  # t_s: RSS, descriptors, active calls, glibc heap in use and kept free (kB)
  echo "$1,$(rss_kb),$(fds),$(metric audiosocket_bridge_active_calls)," \
    "$(($(metric audiosocket_bridge_heap_in_use_bytes | cut -d. -f1) / 1024))," \
    "$(($(metric audiosocket_bridge_heap_free_bytes | cut -d. -f1) / 1024))" | tr -d ' '
}
echo "t_s,rss_kb,fds,active_calls,heap_in_use_kb,heap_free_kb" >"$work/samples.csv"
t=0
while ((t < seconds)); do
  sample "$t" >>"$work/samples.csv"
  sleep 10
  t=$((t + 10))
done
wait "${pids[@]:2}" 2>/dev/null || true
sleep 3
sample "$t" >>"$work/samples.csv"

python3 - "$work" "$fds_before" "$(fds)" "$seconds" \
  "$(metric 'audiosocket_bridge_frames_total{direction="in"}')" \
  "$(metric 'audiosocket_bridge_dropped_frames_total{direction="in"}')" \
  "$(metric 'audiosocket_bridge_dropped_frames_total{direction="out"}')" \
  "$(metric audiosocket_bridge_calls_started_total)" \
  "$(metric_sum audiosocket_bridge_calls_ended_total)" \
  "$(metric audiosocket_bridge_active_calls)" <<'EOF'
import csv, glob, json, sys
work, fds_before, fds_after, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
frames_in, dropped_in, dropped_out, started, ended, active = (float(x) for x in sys.argv[5:11])
rows = list(csv.DictReader(open(f"{work}/samples.csv")))
rss = [int(r["rss_kb"]) for r in rows]
heap = [int(r["heap_in_use_kb"]) for r in rows]
warm = [int(r["rss_kb"]) for r in rows if int(r["t_s"]) >= seconds // 4]
base = warm[0] if warm else rss[-1]
peak = max(warm) if warm else rss[-1]
sent = received = calls = failed = 0
sent_by_mode = {"hangup": 0, "close": 0}
for path in glob.glob(f"{work}/group*.json"):
    s = json.load(open(path))
    sent += s["frames_sent"]; received += s["frames_received"]; calls += s["calls"]; failed += s["failed"]
    sent_by_mode[path.rsplit("-", 1)[1][:-len(".json")]] += s["frames_sent"]
log = open(f"{work}/bridge.log").read().splitlines()
started_lines = sum('"event":"call_started"' in l for l in log)
ended_lines = [json.loads(l) for l in log if '"event":"call_ended"' in l]
unspecified = sum(e.get("reason") in ("UNSPECIFIED", "CALL_END_REASON_UNSPECIFIED", "", None)
                  for e in ended_lines)
hung_up = [e for e in ended_lines if e["reason"] == "CALLER_HUNG_UP" and "(0x00)" in e["detail"]]
read_hung_up = sum(e["frames_in"] for e in hung_up)
read_other = sum(e["frames_in"] for e in ended_lines) - read_hung_up
reasons = {}
for e in ended_lines:
    key = f'{e["reason"]}: {e["detail"]}'
    reasons[key] = reasons.get(key, 0) + 1
checks = {
    "rss_flat": peak <= max(base * 1.15, base + 32 * 1024),
    "no_fd_leak": fds_after <= fds_before,
    "no_lost_frames": read_hung_up == sent_by_mode["hangup"] and dropped_in == 0
    and dropped_out == 0,
    "every_call_ended_with_reason": started_lines == len(ended_lines) == started == ended
    and unspecified == 0 and active == 0,
    "no_failed_calls": failed == 0 and calls > 0,
}
print(json.dumps({
    "calls": calls, "failed": failed, "seconds": seconds,
    "rss_kb": {"first": rss[0], "after_warmup": base, "peak_after_warmup": peak, "last": rss[-1]},
    "heap_in_use_kb": {"first": heap[0], "peak": max(heap), "last": heap[-1]},
    "heap_free_kb_last": int(rows[-1]["heap_free_kb"]),
    "fds": {"before": fds_before, "after": fds_after},
    "frames_sent": sent, "frames_in_at_bridge": int(frames_in), "frames_received": received,
    "hung_up_calls": {"frames_sent": sent_by_mode["hangup"], "frames_read_by_bridge": read_hung_up},
    "closed_calls": {"frames_sent": sent_by_mode["close"], "frames_read_by_bridge": read_other},
    "reasons": reasons,
    "dropped": {"in": int(dropped_in), "out": int(dropped_out)},
    "calls_started": int(started), "calls_ended": int(ended), "call_ended_lines": len(ended_lines),
    "checks": checks, "samples": f"{work}/samples.csv"}))
sys.exit(0 if all(checks.values()) else 1)
EOF
