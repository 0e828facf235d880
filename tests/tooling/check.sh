#!/usr/bin/env bash
# Script suite for ./test.sh: the tests of the test runner's own scripts
# (tests/bazel_results.py). Argument: the counts file ("passed failed skipped").
set -uo pipefail
cd "$(dirname "$0")/../.."
log=$(mktemp)
python3 -m unittest -v tests/tooling/bazel_results_test.py >"$log" 2>&1
rc=$?
cat "$log" >&2
passed=$(grep -c ' \.\.\. ok$' "$log")
failed=$(grep -cE ' \.\.\. (FAIL|ERROR)$' "$log")
skipped=$(grep -c ' \.\.\. skipped' "$log")
if ((rc != 0 && failed == 0)); then failed=1; fi
echo "$passed $failed $skipped" >"$1"
rm -f "$log"
exit $rc
