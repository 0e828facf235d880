#!/usr/bin/env bash
# Installs the Debian 12 packages the bridge needs to build and test, and
# buf (the npm package pinned in tools/buf/package-lock.json, for test.sh's
# proto suite). Idempotent and quiet when everything is already there.
#   tools/install-deps.sh          build, C++ test and proto check dependencies
#   tools/install-deps.sh --all    also the toolchains of the client SDK suites
#                                  (Go, JDK and Maven, Python venv),
#                                  each only when its command is missing: a
#                                  toolchain installed another way is kept
set -euo pipefail

packages=(
  bazel-bootstrap build-essential pkg-config python3 git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev googletest libgtest-dev libgmock-dev libbenchmark-dev
  libspeexdsp-dev libsoxr-dev prometheus-cpp-dev libnghttp2-dev zlib1g-dev
  clang clang-format libclang-rt-14-dev
  asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav asterisk-moh-opsound-wav espeak-ng
)

# Node and npm install buf (below); kept when installed another way.
{ command -v node && command -v npm; } >/dev/null 2>&1 || packages+=(nodejs npm)

if [[ ${1:-} == --all ]]; then
  command -v go >/dev/null 2>&1 || packages+=(golang-go)
  { command -v mvn && command -v javac; } >/dev/null 2>&1 || packages+=(openjdk-17-jdk-headless maven)
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || packages+=(python3-venv)
elif [[ -n ${1:-} ]]; then
  echo "usage: $0 [--all]" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then
    echo "error: packages are missing and this is not root; run as root or install them: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# buf, from the npm registry (its package ships the binary): npm ci when
# tools/buf/node_modules is missing or older than the lock file.
buf_dir=$(cd "$(dirname "$0")" && pwd)/buf
if [[ ! -f $buf_dir/node_modules/.package-lock.json || $buf_dir/package-lock.json -nt $buf_dir/node_modules/.package-lock.json ]]; then
  echo "installing buf (npm ci in tools/buf)" >&2
  (cd "$buf_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi
