#!/usr/bin/env bash
# Builds res_audiosocket_ext.so against the Asterisk that the real-Asterisk
# test suite builds (tests/asterisk/build-asterisk.sh, same cache) and
# installs it into that Asterisk's modules folder, where the test fixture
# loads it. Prints the installed module's path on its last line.
#
#   asterisk/build.sh            # builds Asterisk first if needed (cached)
#   asterisk/build.sh PREFIX     # an Asterisk installed in PREFIX
#
# Exit status: 0 built and installed, 3 no Asterisk source (as
# build-asterisk.sh), 1 otherwise.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

prefix=${1:-}
if [[ -z $prefix ]]; then
  set +e
  prefix=$(bash "$root/tests/asterisk/build-asterisk.sh" | tail -n 1)
  rc=${PIPESTATUS[0]}
  set -e
  ((rc == 0)) || exit "$rc"
fi
if [[ ! -f $prefix/include/asterisk.h ]]; then
  echo "no Asterisk headers in $prefix/include (tests/asterisk/build-asterisk.sh installs them)" >&2
  exit 1
fi
moddir=$prefix/lib/asterisk/modules
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
make -s -C "$here" O="$out" ASTERISK_INCLUDE="$prefix/include" ASTERISK_MODDIR="$moddir" install >&2
echo "$moddir/res_audiosocket_ext.so"
