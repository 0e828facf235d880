#!/usr/bin/env bash
# User-space instructions per frame, counted by valgrind's callgrind: a
# measure of the bridge's own per-frame work that, unlike CPU time, does
# not move with the machine's load, so two builds compare exactly (the
# kernel's share, about half the bridge's CPU, is not counted).
#
# Runs the system under test under callgrind, places --calls 8 kHz echo
# calls with audiosocket-call, counts instructions over --seconds of steady
# state and divides by the frames the server took from the callers in that
# window (each also went back out). Systems:
#   bridge-push   audiosocket-bridge --mode=push + echo-backend (loop transport)
#   bridge-pull   audiosocket-bridge --mode=pull + echo-backend (loop transport)
#   baseline      audiosocket-echo --mode=echo (the plain echo)
#   baseline-paced  audiosocket-echo --mode=paced (the pacing floor)
# callgrind runs the server some 50 times slower, so --calls stays small
# (the default 5 keeps every frame on time); per-round work (epoll, HTTP/2
# flushes) is then shared by fewer frames than at 100 calls, so the figures
# are an upper bound for larger steps.
#
#   bench/bridge/instructions.sh --bin=DIR [--calls=5] [--seconds=10]
#       [--systems=bridge-push,baseline-paced] [--out=DIR] [--top=25]
#       [--preload=LIB]  (LD_PRELOAD for the bridge: another malloc, to compare)
#
# DIR holds binaries built with -c opt, laid out as bazel-bin
# (server/audiosocket-bridge, bench/echo_backend/echo-backend,
# bench/echo_server/audiosocket-echo, tools/audiosocket-call/audiosocket-call).
# Prints one line per system and writes DIR/<system>/ (callgrind output,
# logs, the functions costing most per frame, inclusive).
set -euo pipefail
bin=""
calls=5
seconds=10
systems=bridge-push,baseline-paced
out=/tmp/audiosocket-instructions-$(date +%Y%m%d-%H%M%S)
top=25
preload=""
for arg in "$@"; do
  case "$arg" in
    --bin=*) bin="${arg#*=}" ;;
    --calls=*) calls="${arg#*=}" ;;
    --seconds=*) seconds="${arg#*=}" ;;
    --systems=*) systems="${arg#*=}" ;;
    --out=*) out="${arg#*=}" ;;
    --top=*) top="${arg#*=}" ;;
    --preload=*) preload="${arg#*=}" ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done
[[ -n "$bin" ]] || { echo "--bin=DIR is required (binaries built with -c opt)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
mkdir -p "$out"

pids=()
stop_all() {
  for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 2
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  pids=()
}
trap stop_all EXIT

# The first match of a JSON string field in a log, e.g. field audiosocket.
json_field() { grep -o "\"$2\":\"[^\"]*\"" "$1" | head -1 | cut -d'"' -f4; }
wait_for() {  # file pattern
  for _ in $(seq 1 120); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.5; done
  echo "timed out waiting for $2 in $1" >&2; return 1
}
# Frames the bridge took from callers so far, from its metrics.
bridge_frames_in() {
  curl -s "http://$1/metrics" |
    awk '/^audiosocket_bridge_frames_total\{direction="in"\}/ {printf "%d\n", $2}'
}

printf "%-16s %6s %8s %14s %12s\n" system calls frames instructions "per frame"
for system in ${systems//,/ }; do
  dir="$out/$system"
  mkdir -p "$dir"
  metrics=""
  case "$system" in
    bridge-push|bridge-pull)
      mode=${system#bridge-}
      backend_args=()
      if [[ $mode == push ]]; then
        "$bin/bench/echo_backend/echo-backend" --mode=push --transport=loop --workload=echo \
          --listen=127.0.0.1:0 2>"$dir/backend.err" &
        pids+=($!)
        wait_for "$dir/backend.err" '"port":'
        port=$(grep -o '"port":[0-9]*' "$dir/backend.err" | head -1 | cut -d: -f2)
        backend_args=(--backend="ipv4:127.0.0.1:$port")
      fi
      env ${preload:+LD_PRELOAD="$preload"} \
        valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
        "$bin/server/audiosocket-bridge" --mode="$mode" "${backend_args[@]}" \
        --listen=127.0.0.1:0 --grpc_listen=127.0.0.1:0 --metrics_listen=127.0.0.1:0 \
        --drain_timeout=2s 2>"$dir/server.err" &
      server_pid=$!
      pids+=($server_pid)
      wait_for "$dir/server.err" '"audiosocket":'
      target=$(json_field "$dir/server.err" audiosocket)
      metrics=127.0.0.1:$(grep -o '"metrics_port":[0-9]*' "$dir/server.err" | head -1 | cut -d: -f2)
      if [[ $mode == pull ]]; then
        grpc=$(grep -o '"grpc_port":[0-9]*' "$dir/server.err" | head -1 | cut -d: -f2)
        "$bin/bench/echo_backend/echo-backend" --mode=pull --transport=loop --workload=echo \
          --bridge="127.0.0.1:$grpc" --slots=$((calls + calls / 10 + 1)) 2>"$dir/backend.err" &
        pids+=($!)
        sleep 2  # its claims are waiting before the first call
      fi
      ;;
    baseline|baseline-paced)
      echo_mode=echo
      paced_window=""
      if [[ $system == baseline-paced ]]; then
        # As run.sh's: the loop's rounds at most every 1 ms, as the bridge's.
        echo_mode=paced
        paced_window=--round_window=1ms
      fi
      valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" \
        "$bin/bench/echo_server/audiosocket-echo" --mode="$echo_mode" --listen=127.0.0.1:0 \
        ${paced_window} \
        2>"$dir/server.err" &
      server_pid=$!
      pids+=($server_pid)
      wait_for "$dir/server.err" '"address":'
      target=$(json_field "$dir/server.err" address)
      ;;
    *) echo "unknown system: $system" >&2; exit 2 ;;
  esac
  # Long enough for the ramp, a settled round and the window, and a margin.
  duration_ms=$(( (seconds + 12) * 1000 ))
  "$bin/tools/audiosocket-call/audiosocket-call" --target="$target" --calls="$calls" --ramp=200 \
    --duration="${duration_ms}ms" --rate=8000 --log_messages=false --source=tone:440:-20 \
    >"$dir/emulator.out" 2>"$dir/emulator.err" &
  emulator_pid=$!
  pids+=($emulator_pid)
  sleep 6
  # The scrapes fall outside the window: the metrics endpoint's work is not
  # the bridge's per-frame work.
  [[ -n "$metrics" ]] && before=$(bridge_frames_in "$metrics")
  callgrind_control -z "$server_pid" >/dev/null
  sleep "$seconds"
  callgrind_control -d "$server_pid" >/dev/null
  if [[ -n "$metrics" ]]; then
    frames=$(( $(bridge_frames_in "$metrics") - before ))
  else
    # The echo keeps no running count: the emulator sends on the clock,
    # 50 frames a second a call, and it checks below that all came back.
    frames=$(( calls * 50 * seconds ))
  fi
  wait "$emulator_pid" || true
  stop_all
  dump=$(ls "$dir"/callgrind.out.* | sort -t. -k3 -n | head -1)
  instructions=$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  if (( frames <= 0 )); then
    echo "$system: no frames counted in the window (see $dir)" >&2; exit 1
  fi
  printf "%-16s %6d %8d %14d %12d\n" "$system" "$calls" "$frames" "$instructions" \
    $((instructions / frames))
  callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
    awk -v frames="$frames" -v top="$top" '
      /^ *[0-9,]+ \(/ { n = $1; gsub(",", "", n); $1 = ""; $2 = "";
                        if (++shown <= top + 4) printf "%10d  %s\n", n / frames, substr($0, 3) }' \
    | cut -c1-180 >"$dir/per_frame.txt"
  grep -q '"failed":0' "$dir/emulator.out" || echo "$system: some calls failed (see $dir)" >&2
done
