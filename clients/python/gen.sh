#!/usr/bin/env bash
# Regenerates audiosocket_bridge/v1/bridge_pb2*.py from proto/ with grpcio-tools
# (from the venv that run-tests.sh makes, or $PYTHON).
#   bash gen.sh            write the modules
#   bash gen.sh --check    fail if the committed modules differ from a fresh generation
# The proto is mapped to audiosocket_bridge/v1/bridge.proto so the generated
# imports are package-relative ("from audiosocket_bridge.v1 import bridge_pb2");
# the protobuf package (audiosocket.bridge.v1) and so the wire are unchanged.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
python=${PYTHON:-$here/.venv/bin/python}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$python" -m grpc_tools.protoc \
  -I "audiosocket_bridge/v1=$root/proto/audiosocket/bridge/v1" \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  "$root/proto/audiosocket/bridge/v1/bridge.proto"
files=(bridge_pb2.py bridge_pb2.pyi bridge_pb2_grpc.py)
if [[ ${1:-} == --check ]]; then
  for f in "${files[@]}"; do
    if ! cmp -s "$out/audiosocket_bridge/v1/$f" "$here/audiosocket_bridge/v1/$f"; then
      echo "clients/python/audiosocket_bridge/v1/$f is out of date: run bash clients/python/gen.sh" >&2
      exit 1
    fi
  done
  echo "clients/python/audiosocket_bridge/v1 is up to date" >&2
else
  for f in "${files[@]}"; do cp "$out/audiosocket_bridge/v1/$f" "$here/audiosocket_bridge/v1/$f"; done
fi
