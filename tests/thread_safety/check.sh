#!/usr/bin/env bash
# Script suite for ./test.sh: clang's thread-safety analysis over the
# project's C++ (check.py says how and why). Argument: the counts file.
set -uo pipefail
cd "$(dirname "$0")/../.."
exec python3 tests/thread_safety/check.py "$1"
