#!/usr/bin/env bash
# The bridge benchmark (results in docs/BENCHMARKS.md): builds with
# -c opt (and the Go relay with go build), then for 100, 200, 500, 1000 and
# 2000 concurrent 8 kHz calls and 500 16 kHz calls runs, one step at a time
# and each from fresh processes:
#   baseline      audiosocket-echo (AudioSocket echo, no gRPC)
#   baseline-paced  the same, pacing its replies as the bridge does (not by default)
#   bridge-push   audiosocket-bridge --mode=push + echo-backend (CallHandlerService)
#   bridge-pull   audiosocket-bridge --mode=pull + echo-backend (ClaimCall slots)
#   bridge-push-grpc, bridge-pull-grpc  the same on gRPC C++'s client or
#                 server instead of the event loops' own (not by default)
#   gorelay-push  bench/bridge/gorelay (plain Go relay) + echo-backend (8 kHz only)
# driven by audiosocket-call; the systems of a point run back to back, so
# the ratios between them come from the same run. The server under test runs
# on core 0, the emulator and the backend on core 1 (taskset). Loopback only.
# Bounded: each step lasts --seconds plus a few seconds of setup (full run
# about 13 minutes per workload and repeat at the default 25 s).
#
#   bench/bridge/run.sh [--quick] [--out=DIR] [--plots=DIR] [--seconds=N]
#       [--steps=100,500,...] [--wide=500] [--nice=-10]
#       [--systems=baseline,bridge-push,bridge-pull,gorelay-push]
#       [--workloads=echo,voice_agent] [--repeats=N] [--backend_args='...']
#       [--syscalls=0|1]  (perf stat of the server's system calls; default 1 with perf)
#       [--rt]   (SCHED_RR for every benchmark process; only below saturation)
#       [--bin=DIR]  (use binaries already built with -c opt there; no bazel
#                     call, e.g. while another command holds the Bazel lock)
#       [--gorelay=PATH]  (a Go relay already built; default: go build into DIR)
#       [--caller=emulator|asterisk]  (who places the calls: audiosocket-call, or
#                     stock Asterisk's AudioSocket() application on core 1,
#                     built once by tests/asterisk/build-asterisk.sh; 8 kHz only)
#       [--asterisk_path=app|channel]  (with asterisk: the AudioSocket() application
#                     on a Local channel, or the AudioSocket channel driver's channel)
#       [--backend_core=1|0]  (0: the backend beside the server under test, leaving
#                     core 1 to the caller; the server's CPU is still its own)
#       [--backend_transport=grpc|loop]  (echo-backend on gRPC C++, or, echo only, on
#                     the bridge's own loop and HTTP/2 code: light enough for 1,000 calls)
#       [--probe_calls=N]  (N of each step's calls from a second emulator at SCHED_FIFO
#                     on the caller's core: the server's jitter when the caller's core is full)
#       [--caller_fifo]  (the emulator SCHED_FIFO too, below the probe: it sends on time and
#                     the backend beside it takes the delays)
#       [--server_fifo]  (the server under test SCHED_FIFO on its core: no other work of the
#                     machine preempts it)
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
gorelay=""
caller=emulator
extra=()
for arg in "$@"; do
  case "$arg" in
    --quick) extra+=(--steps=100,500 --wide= --seconds=20) ;;
    --out=*) out=${arg#--out=} ;;
    --plots=*) plots=${arg#--plots=} ;;
    --bin=*) bin=${arg#--bin=} ;;
    --gorelay=*) gorelay=${arg#--gorelay=} ;;
    --caller=*) caller=${arg#--caller=} ;;
    --seconds=* | --steps=* | --wide=* | --systems=* | --io_threads=* | --ramp_rate=* | --arrivals=* | --caller_tick=* | --nice=* | --rt \
      | --workloads=* | --repeats=* | --backend_args=* | --syscalls=* | --asterisk_path=* \
      | --backend_core=* | --backend_transport=* | --probe_calls=* | --caller_fifo | --server_fifo) extra+=("$arg") ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done
if [[ -z "$bin" ]]; then
  bazel build -c opt //server:audiosocket-bridge //bench/echo_backend:echo-backend \
    //bench/echo_server:audiosocket-echo //tools/audiosocket-call:audiosocket-call >&2
  bin=$(bazel info -c opt bazel-bin 2>/dev/null)
fi
if [[ $caller == asterisk ]]; then
  # Stock Asterisk from the tarball the real-Asterisk tests use (built
  # once, then reused from its cache); 8 kHz steps only.
  asterisk_prefix=$(tests/asterisk/build-asterisk.sh | tail -n 1)
  extra+=(--caller=asterisk --asterisk_prefix="$asterisk_prefix" --wide=)
elif [[ $caller != emulator ]]; then
  echo "--caller is emulator or asterisk" >&2
  exit 2
fi
ulimit -n "$(ulimit -Hn)" || true
mkdir -p "$out"
if [[ -z "$gorelay" ]]; then
  gorelay=$out/gorelay
  (cd bench/bridge/gorelay && go build -o "$gorelay" .) >&2
fi
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
  echo "go: $(go version 2>/dev/null || echo none)"
  if [[ $caller == asterisk ]]; then
    source_tarball=${ASTERISK_SOURCE:-$(ls -1 ../shared/asterisk/asterisk-src-*.tar.gz 2>/dev/null | tail -n 1)}
    echo "caller: $(LD_LIBRARY_PATH=$asterisk_prefix/lib "$asterisk_prefix/sbin/asterisk" -V)" \
      "from $(basename "$source_tarball")"
  fi
  echo "uptime before: $(uptime)"
  echo "top before:"
  top -bn1 -o %CPU | sed -n '7,14p'
} >"$out/machine.txt"
echo "results in $out" >&2
timeout 14400 setsid -w python3 bench/bridge/bridge_bench.py --bin="$bin" --out="$out" \
  --gorelay="$gorelay" "${extra[@]}"
echo "uptime after: $(uptime)" >>"$out/machine.txt"
if [[ -n "$plots" ]]; then
  command -v gnuplot >/dev/null || apt-get install -y -q gnuplot-nox >&2
  mkdir -p "$plots"
  gnuplot -e "dir='$out'; png='$plots/bridge-scaling.png'" bench/bridge/plot.gp
  echo "plot: $plots/bridge-scaling.png" >&2
fi
