# Shared by clients/<lang>/run-tests.sh (sourced, not run).
#
# init_counts SDK COUNTS_FILE
#   Sets counts to COUNTS_FILE made absolute (the script may cd) and defines
#   fail MESSAGE: prints "SDK: MESSAGE", writes "0 1 0" to counts, exits 1.
init_counts() {
  sdk_name=$1 counts=$2
  case $counts in /*) ;; *) counts="$(pwd)/$counts" ;; esac
  fail() { echo "$sdk_name: $*" >&2; echo "0 1 0" >"$counts"; exit 1; }
}

# copy_bridge_binaries SDK BINDIR LOG
#   Builds the bridge and audiosocket-call with Bazel at the repository root
#   and copies both into BINDIR. Private copies, because bazel-bin follows
#   whichever configuration was built last (a --config=asan build in the same
#   checkout would swap it) and may be rebuilt while the SDK's tests run.
#   Exports BRIDGE_BIN and AUDIOSOCKET_CALL_BIN. On failure prints the build
#   log's errors prefixed with SDK and returns non-zero.
copy_bridge_binaries() {
  local sdk=$1 bindir=$2 log=$3
  local root target src
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  if ! (cd "$root" && bazel build //server:audiosocket-bridge \
    //tools/audiosocket-call:audiosocket-call) >"$log" 2>&1; then
    grep -E 'ERROR|error:' "$log" | head -20 | sed "s|^|$sdk: |" >&2
    echo "$sdk: bazel build failed" >&2
    return 1
  fi
  for target in server/audiosocket-bridge tools/audiosocket-call/audiosocket-call; do
    src=$root/bazel-bin/$target
    [[ -x $src ]] || src=$root/bazel-out/k8-fastbuild/bin/$target
    if ! cp "$src" "$bindir/"; then
      echo "$sdk: cannot find the built $target" >&2
      return 1
    fi
  done
  export BRIDGE_BIN=$bindir/audiosocket-bridge
  export AUDIOSOCKET_CALL_BIN=$bindir/audiosocket-call
}
