#!/usr/bin/env bash
# Runs the Java SDK's tests (mvn test: JUnit 5 on Surefire) against the real
# bridge and audiosocket-call, and writes "PASSED FAILED SKIPPED" to
# COUNTS_FILE, counted from Surefire's XML reports.
#   bash clients/java/run-tests.sh COUNTS_FILE        (from the repo root)
# Installs what is missing first: a JDK and Maven (Debian packages) when
# absent; Maven fetches the dependencies into ~/.m2 on the first run.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/clients/common.sh"
init_counts clients/java "${1:?usage: run-tests.sh COUNTS_FILE}"

if ! command -v mvn >/dev/null || ! command -v javac >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless maven) >&2 \
    || fail "cannot install a JDK and Maven"
fi

log=$(mktemp)
bindir=$(mktemp -d)
trap 'rm -rf "$log" "$bindir"' EXIT
copy_bridge_binaries clients/java "$bindir" "$log" || fail "no bridge binaries to test against"

reports=$here/target/surefire-reports
rm -rf "$reports"
(cd "$here" && mvn -B -q test -Dbridge.bin="$bindir/audiosocket-bridge" -Dcall.bin="$bindir/audiosocket-call") >"$log" 2>&1
rc=$?
shopt -s nullglob
xml=("$reports"/TEST-*.xml)
if ((${#xml[@]} == 0)); then
  tail -80 "$log" >&2
  fail "mvn test produced no Surefire reports (exit $rc)"
fi
# Each report's <testsuite tests= failures= errors= skipped=>.
read -r tests failures errors skipped < <(
  for f in "${xml[@]}"; do
    head -c 4096 "$f" | tr '\n' ' ' | grep -o '<testsuite [^>]*>' | head -1
  done | awk '
    function attr(s, name,   m) { if (match(s, name "=\"[0-9]+\"")) { m = substr(s, RSTART, RLENGTH); gsub(/[^0-9]/, "", m); return m + 0 } return 0 }
    { t += attr($0, " tests"); f += attr($0, " failures"); e += attr($0, " errors"); s += attr($0, " skipped") }
    END { print t + 0, f + 0, e + 0, s + 0 }')
failed=$((failures + errors))
passed=$((tests - failed - skipped))
if ((failed > 0 || rc != 0)); then grep -vE '^\s+at ' "$log" | grep -E 'ERROR|FAIL|expected|Exception' | cut -c1-300 | head -60 >&2; fi
if ((rc != 0 && failed == 0)); then failed=1; fi
echo "$passed $failed $skipped" >"$counts"
echo "clients/java: $passed passed, $failed failed, $skipped skipped" >&2
((failed == 0))
