#!/usr/bin/env bash
# Builds the bridge and runs it with its embedded defaults (AudioSocket on
# 0.0.0.0:9092, gRPC on 0.0.0.0:50051). Extra arguments go to the bridge:
#   ./run.sh --help
# Installs what is missing first (Debian packages).
set -euo pipefail
cd "$(dirname "$0")"
bash tools/install-deps.sh
bazel build -c opt //server:audiosocket-bridge //tools/audiosocket-call //tools/audiosocket-dump >&2
exec bazel-bin/server/audiosocket-bridge "$@"
