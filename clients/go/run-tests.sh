#!/usr/bin/env bash
# Runs the Go SDK's tests; called by the root test.sh as
#   bash clients/go/run-tests.sh COUNTS_FILE
# Installs Go when missing (golang-go), builds the bridge and
# audiosocket-call, regenerates bridgepb/ and checks it matches the committed
# code, runs `go test ./... -json`, and writes "PASSED FAILED SKIPPED"
# (counted from the JSON events; a stale bridgepb/ counts as one failure) to
# COUNTS_FILE. Exits non-zero if any test failed.
set -uo pipefail
counts=${1:?usage: run-tests.sh COUNTS_FILE}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
echo "0 1 0" >"$counts"  # until the real counts are known

if ! command -v go >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq golang-go >/dev/null || exit 1
fi
if ! command -v protoc >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq protobuf-compiler >/dev/null || exit 1
fi

cd "$root" || exit 1
source "$root/clients/common.sh"
bindir=$(mktemp -d)
copy_bridge_binaries sdk-go "$bindir" "$here/.bazel-build.log" || exit 1

extra_failed=0
(cd "$here" && bash gen.sh --check) || extra_failed=1

results=$(mktemp -d)
trap 'rm -rf "$results" "$bindir"' EXIT
(cd "$here" && go test -count=1 -timeout 10m -json ./... >"$results/test.json")
rc=$?
# Counts the top-level tests and subtests that ran (each reports pass, fail or skip).
read -r passed failed skipped < <(python3 - "$results/test.json" <<'PY'
import json, sys
counts = {"pass": 0, "fail": 0, "skip": 0}
failed_pkgs = 0
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    action = e.get("Action")
    if e.get("Test") and action in counts:
        counts[action] += 1
    elif not e.get("Test") and action == "fail":
        failed_pkgs += 1  # a package that failed without a failing test (build error, panic)
    if action == "output" and e.get("Output", "").startswith(("--- FAIL", "FAIL", "panic:")):
        sys.stderr.write(e["Output"])
fail = counts["fail"] or failed_pkgs
print(counts["pass"], fail, counts["skip"])
PY
)
failed=$((failed + extra_failed))
if ((rc != 0 && failed == 0)); then failed=1; fi
echo "$passed $failed $skipped" >"$counts"
echo "sdk-go: $passed passed, $failed failed, $skipped skipped" >&2
((failed == 0))
