#!/usr/bin/env bash
# The audiosocket-call load benchmark: N concurrent 8 kHz calls generated on
# one core (taskset -c 0) against audiosocket-echo in sink mode on another
# core, for a bounded time. Prints audiosocket-call's JSON summary and the
# generator's CPU use. Loopback only.
#
# Two settings keep the far end's costs off the generator's core, as a far
# end on another host would: the sink looks at its sockets once per
# millisecond (--poll_interval) instead of being woken per message, and, when
# /sys is writable, receive packet steering sends loopback's receive
# processing to core 1 (restored on exit). Without them each send also pays
# for the receiver's TCP processing and wake-up on the sending core.
#
#   bench/audiosocket-call/load.sh [CALLS=5000] [SECONDS=30] [MODE=sink|echo]
set -euo pipefail
cd "$(dirname "$0")/../.."
calls=${1:-5000}
seconds=${2:-30}
mode=${3:-sink}
bazel build -c opt //tools/audiosocket-call:audiosocket-call //bench/echo_server:audiosocket-echo >&2
bin=$(bazel info -c opt bazel-bin 2>/dev/null)
ulimit -n 65536 || true
log=$(mktemp)
rps=/sys/class/net/lo/queues/rx-0/rps_cpus
rps_before=$(cat "$rps" 2>/dev/null || true)
restore() {
  kill "$server" 2>/dev/null || true
  rm -f "$log"
  if [[ -n "$rps_before" ]]; then echo "$rps_before" >"$rps" 2>/dev/null || true; fi
}
trap restore EXIT
if echo 2 >"$rps" 2>/dev/null; then
  echo "receive packet steering for lo: core 1" >&2
else
  echo "receive packet steering for lo not settable: receive work stays on core 0" >&2
fi
taskset -c 1 "$bin/bench/echo_server/audiosocket-echo" --listen=127.0.0.1:0 --mode="$mode" \
  --poll_interval="$([[ $mode == sink ]] && echo 1ms || echo 0s)" 2>"$log" &
server=$!
for _ in $(seq 100); do grep -q listening "$log" && break; sleep 0.1; done
address=$(sed -n 's/.*"address":"\([^"]*\)".*/\1/p' "$log" | head -1)
# Calls start over 2 s (ramp) and each lasts $seconds, so every call is up
# together for $seconds - 2 s.
ramp=$((calls / 2))
/usr/bin/time -f '{"cpu_user_s":%U,"cpu_system_s":%S,"wall_s":%e,"max_rss_kb":%M}' \
  taskset -c 0 "$bin/tools/audiosocket-call/audiosocket-call" --target="$address" \
  --calls="$calls" --ramp="$ramp" --duration="${seconds}s" --tick=250us --log_messages=false
kill -INT "$server"
wait "$server" || true
grep stopped "$log" >&2 || true
