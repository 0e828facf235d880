#!/usr/bin/env bash
# Builds the parser's libFuzzer target with clang and runs it over a copy of
# the committed corpus for SECONDS (default 60). New inputs that add coverage
# are merged into corpus/ when MERGE=1.
#
#   asterisk/fuzz/fuzz.sh [SECONDS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-60}
clang_bin=$(command -v clang || command -v clang-14)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$clang_bin" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I"$here/.." \
  -o "$work/fuzz" "$here/audiosocket_ext_proto_fuzz.c" "$here/../audiosocket_ext_proto.c"
mkdir -p "$work/corpus"
cp "$here"/corpus/* "$work/corpus/"
"$work/fuzz" -max_total_time="$seconds" -max_len=70000 "$work/corpus"
if [[ ${MERGE:-0} == 1 ]]; then
  "$work/fuzz" -merge=1 "$here/corpus" "$work/corpus"
fi
