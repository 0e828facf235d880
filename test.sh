#!/usr/bin/env bash
# Runs every test of the project and ends with one line "N passed, N failed"
# (", N skipped" when any were skipped). Exits non-zero if any test failed.
# Installs what is missing first (Debian packages; SDK toolchains' packages).
#
#   ./test.sh                          everything
#   SUITES="format cpp" ./test.sh      only some suites
#   SUITES="asan tsan" ./test.sh       the sanitizer suites (CI runs them too)
#
# Suites: format (clang-format), proto (buf lint and buf breaking of proto/
# against the released contract proto/api-v1.binpb: tools/buf/check.sh),
# cpp (every Bazel test), asterisk (calls
# through a real Asterisk, built once from source: tests/asterisk/), sdk-go, sdk-python,
# sdk-java, sdk-node (clients/<lang>/run-tests.sh), deploy (deploy/validate.sh);
# not by default (they would take the run past 15 minutes on 2 cores; see
# docs/RELIABILITY.md), but always when CI=true: asan (every Bazel test under
# --config=asan), tsan (//server/..., //tests/e2e/... and //tests/tsan/... under --config=tsan),
# thread-safety (clang's -Wthread-safety over every translation unit of
# lib/, server/, tools/ and tests/support/: tests/thread_safety/check.py).
# A script suite gets a file path as its argument and writes
# "PASSED FAILED SKIPPED" there, counted from its runner's real results.
set -uo pipefail
cd "$(dirname "$0")"
root=$(pwd)

bash tools/install-deps.sh || { echo "0 passed, 1 failed"; exit 1; }

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
default_suites="format tooling proto cpp asterisk sdk-go sdk-python sdk-java sdk-node deploy"
# CI (CI=true) also runs the sanitizer suites, so that CI runs exactly this
# command and its last line counts everything.
if [[ ${CI:-} == true ]]; then default_suites+=" asan tsan thread-safety"; fi
suites=${SUITES:-$default_suites}

# Records a suite's counts: record NAME PASSED FAILED SKIPPED
mkdir -p "$results/counts"
record() { echo "$2 $3 $4" >"$results/counts/$1"; echo "== $1: $2 passed, $3 failed, $4 skipped" >&2; }

run_format() {
  local files bad=()
  mapfile -t files < <(git ls-files -co --exclude-standard -- '*.cc' '*.h' '*.proto' | grep -v '^clients/')
  for f in "${files[@]}"; do
    [[ -f $f ]] || continue
    if ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1; then bad+=("$f"); fi
  done
  if ((${#bad[@]})); then
    echo "clang-format: these files need formatting (clang-format -i FILE): ${bad[*]}" >&2
    record format 0 1 0
  else
    record format 1 0 0
  fi
}

# bazel_suite NAME [bazel flags...] -- [target patterns...]
bazel_suite() {
  local name=$1; shift
  local flags=() patterns=()
  while (($#)) && [[ $1 != -- ]]; do flags+=("$1"); shift; done
  shift
  patterns=("$@")
  local out="$results/$name.log"
  bazel test --keep_going "${flags[@]}" -- "${patterns[@]}" 2>&1 | tee "$out" | grep -E '^(//|ERROR|FAILED|Executed)' >&2
  local testlogs targets
  testlogs=$(bazel info "${flags[@]}" bazel-testlogs 2>/dev/null)
  # The same set `bazel test` ran: tests tagged manual are left out of
  # wildcard patterns, and run when named.
  local named=()
  for p in "${patterns[@]}"; do [[ $p == *...* || $p == *:all ]] || named+=("$p"); done
  mapfile -t targets < <(bazel query "(tests(set(${patterns[*]})) except attr(tags, manual, set(${patterns[*]}))) union tests(set(${named[*]}))" 2>/dev/null)
  read -r p f s < <(python3 tests/bazel_results.py "$testlogs" "$out" "${targets[@]}")
  record "$name" "$p" "$f" "$s"
}

# script_suite NAME SCRIPT: runs SCRIPT COUNTS_FILE; a script that fails
# without writing its counts counts as one failure.
script_suite() {
  local name=$1 script=$2 counts="$results/$1.counts"
  if [[ ! -f $script ]]; then
    echo "== $name: $script is missing" >&2
    record "$name" 0 1 0
    return
  fi
  bash "$script" "$counts" >&2
  local rc=$?
  if [[ -s $counts ]]; then
    read -r p f s <"$counts"
    if ((rc != 0 && f == 0)); then f=1; fi
    record "$name" "${p:-0}" "${f:-1}" "${s:-0}"
  else
    record "$name" 0 1 0
  fi
}

# The real-Asterisk suite: builds Asterisk once (cached outside the
# checkout; tests/asterisk/README.md) and the extended AudioSocket module
# into it (asterisk/build.sh), then runs the calls through it: the stock
# modules' tests and the extended module's. With no Asterisk source, every
# case runs and reports itself skipped, with why.
run_asterisk() {
  local prefix rc module
  local targets=(//tests/asterisk:real_asterisk_test //tests/asterisk:extended_module_test)
  prefix=$(bash tests/asterisk/build-asterisk.sh | tail -n 1)
  rc=${PIPESTATUS[0]}
  if ((rc == 3)); then
    echo "== asterisk: no Asterisk source; its tests report themselves skipped" >&2
    bazel_suite asterisk -- "${targets[@]}"
  elif ((rc != 0)); then
    record asterisk 0 1 0
  elif ! module=$(bash asterisk/build.sh "$prefix" | tail -n 1); then
    # The stock modules' tests still run; the module's build counts as one failure.
    echo "== asterisk: asterisk/build.sh failed; the extended module's tests are not run" >&2
    bazel_suite asterisk "--test_env=ASTERISK_PREFIX=$prefix" -- //tests/asterisk:real_asterisk_test
    local p f s
    read -r p f s <"$results/counts/asterisk"
    record asterisk "$p" $((f + 1)) "$s"
  else
    # The module is built outside Bazel: its digest in the test environment
    # makes a changed module run the tests again instead of a cached pass.
    local digest
    digest=$(sha256sum "$module" | cut -d' ' -f1)
    bazel_suite asterisk "--test_env=ASTERISK_PREFIX=$prefix" \
      "--test_env=AUDIOSOCKET_EXT_MODULE_SHA256=$digest" -- "${targets[@]}"
  fi
}

for suite in $suites; do
  case $suite in
    format) run_format ;;
    tooling) script_suite tooling tests/tooling/check.sh ;;
    proto) script_suite proto tools/buf/check.sh ;;
    cpp) bazel_suite cpp -- //... ;;
    asan) bazel_suite asan --config=asan -- //... ;;
    tsan) bazel_suite tsan --config=tsan -- //server/... //tests/e2e/... //tests/tsan/... ;;
    sdk-*) script_suite "$suite" "clients/${suite#sdk-}/run-tests.sh" ;;
    deploy) script_suite deploy deploy/validate.sh ;;
    asterisk) run_asterisk ;;
    thread-safety) script_suite thread-safety tests/thread_safety/check.sh ;;
    *) echo "unknown suite $suite" >&2; record "$suite" 0 1 0 ;;
  esac
done

read -r passed failed skipped < <(cat "$results"/counts/* 2>/dev/null | awk '{p+=$1; f+=$2; s+=$3} END {print p+0, f+0, s+0}')
if ((skipped > 0)); then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
((failed == 0))
