#!/usr/bin/env bash
# Runs the Python SDK's tests; called by the root test.sh as
#   bash clients/python/run-tests.sh COUNTS_FILE
# Installs what is missing (python3-venv, the pinned packages in .venv), builds
# the bridge and audiosocket-call, checks the generated modules are up to date,
# runs pytest, and writes "PASSED FAILED SKIPPED" (from pytest's JUnit XML) to
# COUNTS_FILE. Exits non-zero if any test failed.
set -uo pipefail
counts=${1:?usage: run-tests.sh COUNTS_FILE}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
echo "0 1 0" >"$counts"  # until the real counts are known

if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null || exit 1
fi
venv=$here/.venv
if [[ ! -x $venv/bin/python ]]; then
  python3 -m venv "$venv" || exit 1
fi
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [[ $(cat "$venv/.requirements.sha256" 2>/dev/null) != "$want" ]]; then
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" || exit 1
  echo "$want" >"$venv/.requirements.sha256"
fi

cd "$root" || exit 1
source "$root/clients/common.sh"
bindir=$(mktemp -d)
copy_bridge_binaries sdk-python "$bindir" "$here/.bazel-build.log" || exit 1

extra_failed=0
PYTHON=$venv/bin/python bash "$here/gen.sh" --check || extra_failed=1

results=$(mktemp -d)
trap 'rm -rf "$results" "$bindir"' EXIT
(cd "$here" && "$venv/bin/python" -m pytest -q -p no:cacheprovider --junitxml="$results/junit.xml")
rc=$?
if [[ ! -s $results/junit.xml ]]; then
  echo "pytest wrote no results (exit $rc)" >&2
  exit 1
fi
read -r passed failed skipped < <("$venv/bin/python" - "$results/junit.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
t = f = s = 0
for suite in suites:
    t += int(suite.get("tests", 0))
    f += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
    s += int(suite.get("skipped", 0))
print(t - f - s, f, s)
PY
)
failed=$((failed + extra_failed))
echo "$passed $failed $skipped" >"$counts"
echo "sdk-python: $passed passed, $failed failed, $skipped skipped" >&2
((failed == 0 && rc == 0))
