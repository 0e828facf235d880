#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined)
# outside Bazel and runs each for a bounded time over its committed seed
# corpus, then prints executions and coverage.
#
#   bash bench/fuzz.sh            every target, 60 s each
#   bash bench/fuzz.sh 20         every target, 20 s each
#   bash bench/fuzz.sh 300 wire_decoder   one target, 5 min
#
# New inputs found go to a scratch corpus (printed at the end), never into
# the committed one; a crash leaves its reproducer in the scratch directory
# and makes the script exit non-zero. To keep a new input, copy it into
# tests/fuzz/corpus/<target>/ and commit it.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
only=${2:-}

# The targets: name | sources (the fuzz file first) | Abseil pkg-config modules.
# The seed corpus of NAME is tests/fuzz/corpus/NAME/.
# "@wire" stands for the codec's sources (//lib/wire:wire), "@call" for the
# real Call and what it needs (server/, lib/, the generated gRPC code),
# compiled once per run and shared; both lists come from Bazel.
targets=(
  "wire_decoder|tests/fuzz/wire_decoder_fuzz.cc @wire|absl_status absl_statusor absl_strings absl_str_format"
  "call_session|tests/fuzz/call_session_fuzz.cc @call|@call"
  "backend_commands|tests/fuzz/backend_commands_fuzz.cc @call|@call"
  "play_command_decoder|tests/fuzz/play_command_decoder_fuzz.cc @call|@call"
)
# The fuzz targets' sources are what Bazel builds for the library each one
# links in its corpus replay test, asked of Bazel rather than kept here by
# hand. Prints the repository's own .cc files of TARGET's dependencies.
sources_of() {
  local found
  found=$(bazel query "kind(\"source file\", deps($1))" 2>/dev/null \
    | sed -n 's|^//\([^:]*\):\(.*\.cc\)$|\1/\2|p')
  if [[ -z $found ]]; then
    echo "bazel query found no sources for $1" >&2
    exit 2
  fi
  echo "$found"
}
wire_sources=$(sources_of //lib/wire:wire)
call_sources=$(sources_of //tests/fuzz:call_harness)
call_modules="grpc++ protobuf speexdsp prometheus-cpp-pull prometheus-cpp-core libnghttp2 zlib
  $(pkg-config --list-all | awk '/^absl_/ {print $1}' | tr '\n' ' ')"
sanitize="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined"

work=${FUZZ_WORKDIR:-${TMPDIR:-/tmp}/audiosocket-bridge-fuzz}
mkdir -p "$work"
status=0

for entry in "${targets[@]}"; do
  IFS='|' read -r name sources modules <<<"$entry"
  [[ -z $only || $only == "$name" ]] || continue
  bin="$work/$name"
  echo "== $name: building with clang++ (fuzzer, address, undefined)" >&2
  sources=${sources/@wire/$(echo $wire_sources)}
  if [[ $modules == @call ]]; then
    modules=$call_modules
    gen="$work/gen"
    if [[ ! -f $gen/audiosocket/bridge/v1/bridge.grpc.pb.cc ]]; then
      mkdir -p "$gen"
      protoc -Iproto --cpp_out="$gen" --grpc_out="$gen" \
        --plugin=protoc-gen-grpc="$(command -v grpc_cpp_plugin)" audiosocket/bridge/v1/bridge.proto
    fi
    objects=()
    for src in $call_sources "$gen/audiosocket/bridge/v1/bridge.pb.cc" \
               "$gen/audiosocket/bridge/v1/bridge.grpc.pb.cc"; do
      obj="$work/obj/${src//\//_}.o"
      if [[ ! -f $obj || $src -nt $obj ]]; then
        mkdir -p "$work/obj"
        # shellcheck disable=SC2086
        clang++ -std=c++20 -O1 -g -fno-omit-frame-pointer -I. -I"$gen" $sanitize \
          $(pkg-config --cflags $modules) -c "$src" -o "$obj"
      fi
      objects+=("$obj")
    done
    sources=${sources/@call/${objects[*]}}
  fi
  # shellcheck disable=SC2086
  clang++ -std=c++20 -O1 -g -fno-omit-frame-pointer -I. -I"$work/gen" \
    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
    $(pkg-config --cflags $modules) $sources -o "$bin" $(pkg-config --libs $modules)
  scratch="$work/$name-corpus"
  mkdir -p "$scratch"
  log="$work/$name.log"
  echo "== $name: fuzzing for ${seconds}s (log: $log)" >&2
  if (cd "$work" && "$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
      -rss_limit_mb=2048 "$scratch" "$OLDPWD/tests/fuzz/corpus/$name" >"$log" 2>&1); then
    result=ok
  else
    result=FAILED
    status=1
    grep -E "ERROR|violated|SUMMARY" "$log" | head -20 >&2 || true
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{print $2}' | tail -1)
  secs=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | awk '{print $5}' | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | awk '{print $2}')
  ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | awk '{print $2}')
  corp=$(grep -oE 'corp: [0-9]+/[0-9]+[a-zA-Z]*' <<<"$last" | awk '{print $2}')
  echo "$name: $result, ${runs:-?} executions in ${secs:-$seconds} s, coverage ${cov:-?} edges, ${ft:-?} features, corpus ${corp:-?} (new inputs in $scratch)"
done
exit $status
