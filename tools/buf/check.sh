#!/usr/bin/env bash
# test.sh's proto suite: `buf lint` of proto/ (proto/buf.yaml: the STANDARD
# and COMMENTS rules) and `buf breaking` against proto/api-v1.binpb, the
# released contract. Writes "PASSED FAILED SKIPPED" (out of 2) to COUNTS_FILE.
#   bash tools/buf/check.sh COUNTS_FILE        (from anywhere)
# buf comes from tools/buf/node_modules (tools/install-deps.sh runs npm ci).
set -uo pipefail
counts=${1:?usage: check.sh COUNTS_FILE}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
case $counts in /*) ;; *) counts="$(pwd)/$counts" ;; esac
buf=$here/node_modules/.bin/buf
if [[ ! -x $buf ]]; then
  echo "proto: $buf is missing: run tools/install-deps.sh" >&2
  echo "0 2 0" >"$counts"
  exit 1
fi
cd "$root"
passed=0 failed=0
if "$buf" lint proto >&2; then
  echo "proto: buf lint: ok" >&2
  passed=$((passed + 1))
else
  echo "proto: buf lint: FAILED (the findings above)" >&2
  failed=$((failed + 1))
fi
if "$buf" breaking proto --against proto/api-v1.binpb >&2; then
  echo "proto: buf breaking against proto/api-v1.binpb: ok" >&2
  passed=$((passed + 1))
else
  echo "proto: buf breaking against proto/api-v1.binpb: FAILED (a breaking change to the released contract; see proto/README.md)" >&2
  failed=$((failed + 1))
fi
echo "$passed $failed 0" >"$counts"
((failed == 0))
