#!/usr/bin/env bash
# The bridge benchmark (results in docs/BENCHMARKS.md): builds with
# -c opt, then for 100, 200, 500, 1000 and 2000 concurrent 8 kHz calls and 500
# 16 kHz calls runs, one step at a time and each from fresh processes:
#   baseline     audiosocket-echo (AudioSocket echo, no gRPC)
#   bridge-push  audiosocket-bridge --mode=push + echo-backend (CallHandlerService)
#   bridge-pull  audiosocket-bridge --mode=pull + echo-backend (ClaimCall slots)
# driven by audiosocket-call. The server under test runs on core 0, the
# emulator and the backend on core 1 (taskset). Loopback only. Bounded: each
# step lasts --seconds plus a few seconds of setup (full run about 10 minutes
# at the default 25 s, --quick about 3).
#
#   bench/bridge/run.sh [--quick] [--out=DIR] [--plots=DIR] [--seconds=N]
#       [--steps=100,500,...] [--wide=500] [--systems=baseline,bridge-push,bridge-pull] [--nice=-10]
#       [--rt]   (SCHED_RR for every benchmark process; only below saturation)
#       [--bin=DIR]  (use binaries already built with -c opt there; no bazel
#                     call, e.g. while another command holds the Bazel lock)
#
# Every process runs at nice -10 (--nice=0: none) and the driver in its own
# session whose autogroup gets the same nice: on a machine shared with other
# work (kernel.sched_autogroup_enabled=1), each session otherwise gets an
# equal share of the CPU and the emulator and the bridge starve.
#
# Writes DIR/results.csv, results.json, capacity.json, one folder of process
# logs per step and, with --plots, DIR/../*.png via gnuplot (bench/bridge/plot.gp).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=/tmp/audiosocket-bench-$(date +%Y%m%d-%H%M%S)
plots=""
bin=""
extra=()
for arg in "$@"; do
  case "$arg" in
    --quick) extra+=(--steps=100,500 --wide= --seconds=20) ;;
    --out=*) out=${arg#--out=} ;;
    --plots=*) plots=${arg#--plots=} ;;
    --bin=*) bin=${arg#--bin=} ;;
    --seconds=* | --steps=* | --wide=* | --systems=* | --io_threads=* | --ramp_rate=* | --nice=* | --rt) extra+=("$arg") ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done
if [[ -z "$bin" ]]; then
  bazel build -c opt //server:audiosocket-bridge //bench/echo_backend:echo-backend \
    //bench/echo_server:audiosocket-echo //tools/audiosocket-call:audiosocket-call >&2
  bin=$(bazel info -c opt bazel-bin 2>/dev/null)
fi
ulimit -n "$(ulimit -Hn)" || true
mkdir -p "$out"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "uptime before: $(uptime)"
  echo "top before:"
  top -bn1 -o %CPU | sed -n '7,14p'
} >"$out/machine.txt"
echo "results in $out" >&2
timeout 1800 setsid -w python3 bench/bridge/bridge_bench.py --bin="$bin" --out="$out" "${extra[@]}"
echo "uptime after: $(uptime)" >>"$out/machine.txt"
if [[ -n "$plots" ]]; then
  mkdir -p "$plots"
  gnuplot -e "dir='$out'; png='$plots/bridge-scaling.png'" bench/bridge/plot.gp
  echo "plot: $plots/bridge-scaling.png" >&2
fi
