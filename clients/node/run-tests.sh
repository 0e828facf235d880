#!/usr/bin/env bash
# Runs the Node SDK's tests (node --test) against the real bridge and
# audiosocket-call, and writes "PASSED FAILED SKIPPED" to COUNTS_FILE.
#   bash clients/node/run-tests.sh COUNTS_FILE        (from the repo root)
# Installs what is missing first: Node and npm (Debian packages) when absent,
# the npm dependencies (npm ci) when node_modules is missing or stale.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
source "$root/clients/common.sh"
init_counts clients/node "${1:?usage: run-tests.sh COUNTS_FILE}"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm) >&2 || fail "cannot install nodejs and npm"
fi
if [[ ! -f $here/node_modules/.package-lock.json || $here/package-lock.json -nt $here/node_modules/.package-lock.json ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2 || fail "npm ci failed"
fi

log=$(mktemp)
bindir=$(mktemp -d)
trap 'rm -rf "$log" "$bindir"' EXIT
copy_bridge_binaries clients/node "$bindir" "$log" || fail "no bridge binaries to test against"
export CALL_BIN="$bindir/audiosocket-call"
(cd "$here" && node --test --test-reporter=tap --test-timeout=120000 test/) >"$log" 2>&1
rc=$?
# Failures in full; the TAP summary's counts.
grep -E '^\s*not ok' "$log" >&2 && grep -vE '^\s*(ok|# Subtest)' "$log" | cut -c1-300 | head -200 >&2
pass=$(awk '/^# pass /{print $3}' "$log" | tail -1)
failed=$(awk '/^# fail /{print $3}' "$log" | tail -1)
cancelled=$(awk '/^# cancelled /{print $3}' "$log" | tail -1)
skipped=$(awk '/^# skipped /{print $3}' "$log" | tail -1)
todo=$(awk '/^# todo /{print $3}' "$log" | tail -1)
if [[ -z $pass || -z $failed ]]; then
  tail -50 "$log" >&2
  fail "node --test printed no summary (exit $rc)"
fi
failed=$((failed + ${cancelled:-0}))
skipped=$((${skipped:-0} + ${todo:-0}))
if ((rc != 0 && failed == 0)); then failed=1; fi
echo "$pass $failed $skipped" >"$counts"
echo "clients/node: $pass passed, $failed failed, $skipped skipped" >&2
((failed == 0))
