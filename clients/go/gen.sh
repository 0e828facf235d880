#!/usr/bin/env bash
# Regenerates bridgepb/ from proto/ with protoc and the pinned plugins
# (installed into .bin/ from the Go module proxy when missing).
#   bash gen.sh            write bridgepb/
#   bash gen.sh --check    fail if bridgepb/ differs from a fresh generation
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
bin="$here/.bin"
mkdir -p "$bin"
install_plugin() {  # NAME MODULE@VERSION
  local stamp="$bin/.$1.version"
  if [[ ! -x $bin/$1 || $(cat "$stamp" 2>/dev/null) != "$2" ]]; then
    GOBIN="$bin" go install "$2"
    echo "$2" >"$stamp"
  fi
}
install_plugin protoc-gen-go "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
install_plugin protoc-gen-go-grpc "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The module's import path; the M mapping places the generated package in it
# whatever the proto's go_package option says.
module=github.com/audiosocket-bridge/audiosocket-bridge/clients/go
map="Maudiosocket/bridge/v1/bridge.proto=$module/bridgepb;bridgepb"
PATH="$bin:$PATH" protoc -I "$root/proto" \
  --go_out="$out" --go_opt=module="$module" --go_opt="$map" \
  --go-grpc_out="$out" --go-grpc_opt=module="$module" --go-grpc_opt="$map" \
  audiosocket/bridge/v1/bridge.proto
if [[ ${1:-} == --check ]]; then
  if ! diff -r "$out/bridgepb" "$here/bridgepb" >/dev/null; then
    echo "clients/go/bridgepb is out of date: run bash clients/go/gen.sh" >&2
    diff -r "$out/bridgepb" "$here/bridgepb" | head -20 >&2
    exit 1
  fi
  echo "clients/go/bridgepb is up to date" >&2
else
  rm -rf "$here/bridgepb"
  cp -r "$out/bridgepb" "$here/bridgepb"
fi
