#!/bin/sh
echo "bazel coverage is not supported offline; use gcov/lcov directly" >&2
exit 1
