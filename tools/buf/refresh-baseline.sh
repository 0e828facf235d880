#!/usr/bin/env bash
# Rewrites proto/api-v1.binpb, the image of the released contract that
# `buf breaking` (test.sh's proto suite) compares proto/ against. Run it
# deliberately, in the commit that releases an additive change to v1, after
# `bash tools/buf/check.sh /dev/stdout` passes: refreshing the baseline
# over a breaking change would hide it.
#   bash tools/buf/refresh-baseline.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
"$here/node_modules/.bin/buf" build proto -o proto/api-v1.binpb
echo "wrote proto/api-v1.binpb" >&2
