#!/usr/bin/env python3
"""Checks every ABSL_GUARDED_BY / ABSL_EXCLUSIVE_LOCKS_REQUIRED annotation.

GCC, which builds the project, ignores Abseil's thread-safety annotations;
clang's -Wthread-safety checks them. This runs clang in syntax-only mode over
each C++ translation unit of the project's own code, with the exact include
paths and defines of its Bazel compile action (from `bazel aquery`), and
treats every thread-safety diagnostic as an error. Other clang warnings are
off: the point is the locking contract, not a second style check.

Usage: check.py COUNTS_FILE [PACKAGE_PATTERN...]
Writes "PASSED FAILED SKIPPED" (one case per translation unit) to COUNTS_FILE
and prints each failing file's diagnostics. Needs clang (tools/install-deps.sh
installs it) and a prior `bazel build` of the patterns (it runs one).
"""
import concurrent.futures
import json
import os
import subprocess
import sys

DEFAULT_PATTERNS = ["//lib/...", "//server/...", "//tools/...", "//tests/support/..."]
# Flags of GCC's that clang rejects, and output flags a syntax check needs not.
DROP = {"-fno-canonical-system-headers", "-fcx-limited-range", "-MD"}
DROP_WITH_VALUE = {"-MF", "-o"}


def compile_actions(patterns):
    query = "mnemonic(\"CppCompile\", %s)" % " + ".join(patterns)
    out = subprocess.run(["bazel", "aquery", query, "--output=jsonproto"],
                         capture_output=True, text=True, check=True).stdout
    actions = json.loads(out).get("actions", [])
    return [a["arguments"] for a in actions]


def clang_command(argv):
    command = ["clang++"]
    source = None
    skip = False
    for i, arg in enumerate(argv[1:], start=1):
        if skip:
            skip = False
            continue
        if arg in DROP or arg.startswith("-frandom-seed="):
            continue
        if arg in DROP_WITH_VALUE:
            skip = True
            continue
        if arg == "-c":
            source = argv[i + 1]
            skip = True
            continue
        command.append(arg)
    # Later flags win: everything off, then the thread-safety family on and fatal.
    command += ["-fsyntax-only", "-Wno-everything", "-Wthread-safety", "-Werror=thread-safety",
                source]
    return source, command


def main():
    counts_file = sys.argv[1]
    patterns = sys.argv[2:] or DEFAULT_PATTERNS
    subprocess.run(["bazel", "build", "--keep_going"] + patterns,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # From the workspace, not the execroot: paths resolve the same (bazel-out
    # is a link to it), and another Bazel command rebuilding the execroot's
    # links meanwhile cannot pull sources from under the check.
    workspace = subprocess.run(["bazel", "info", "workspace"], capture_output=True,
                               text=True, check=True).stdout.strip()
    commands = {}
    for argv in compile_actions(patterns):
        source, command = clang_command(argv)
        # Our own sources only: not protoc's output nor external repositories.
        if source is None or source.startswith(("bazel-out/", "external/")):
            continue
        commands.setdefault(source, command)

    def check(item):
        source, command = item
        result = subprocess.run(command, cwd=workspace, capture_output=True, text=True)
        return source, result.returncode, result.stderr

    passed = failed = 0
    jobs = max(1, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
        for source, code, stderr in pool.map(check, sorted(commands.items())):
            if code == 0:
                passed += 1
            else:
                failed += 1
                print("thread-safety: %s\n%s" % (source, stderr), file=sys.stderr)
    print("thread-safety: %d translation units checked, %d failed" % (passed + failed, failed),
          file=sys.stderr)
    with open(counts_file, "w") as f:
        f.write("%d %d 0\n" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
