#!/usr/bin/env python3
"""Counts test cases from Bazel's JUnit XML files.

Usage: bazel_results.py TESTLOGS_DIR BAZEL_OUTPUT_FILE TARGET...

For each test target, reads TESTLOGS_DIR/<package>/<name>/test.xml (for sharded
targets, every shard's) and counts its <testcase> elements as passed, failed
or skipped. A target with no XML (it failed to build, or timed out before
writing one) counts as one failure. Prints "passed failed skipped" and the
names of failed cases on stderr, each with its failure messages. Any ERROR
line in Bazel's output (an action failed, for a test or any other target)
counts one more failure. A target that Bazel itself reported as not
passed (exit code after the XML was written, e.g. a sanitizer's leak report)
but whose XML shows no failure counts one more failure.
"""
import glob
import os
import re
import sys
import xml.etree.ElementTree as ET


def failure_excerpt(case, limit=1500):
    """The case's failure messages, indented, so that a CI log says why."""
    texts = []
    for node in list(case.iter("failure")) + list(case.iter("error")):
        texts.append((node.get("message") or node.text or "").strip())
    text = "\n".join(t for t in texts if t)
    if len(text) > limit:
        text = text[:limit] + " [...]"
    return "".join("\n    " + line for line in text.splitlines())


def count_target(testlogs, target):
    package, _, name = target.lstrip("/").partition(":")
    base = os.path.join(testlogs, package, name)
    files = [os.path.join(base, "test.xml")]
    if not os.path.exists(files[0]):
        # Only this run's shards: shard_K_of_N. Folders such as
        # shard_K_of_N_run_R_of_S stay behind from runs with --runs_per_test
        # and would count old results.
        files = sorted(f for f in glob.glob(os.path.join(base, "shard_*", "test.xml"))
                       if re.fullmatch(r"shard_\d+_of_\d+", os.path.basename(os.path.dirname(f))))
    passed = failed = skipped = 0
    failures = []
    if not files or not all(os.path.exists(f) for f in files):
        return 0, 1, 0, [f"{target} (no test results: build failure or timeout)"]
    for path in files:
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            return 0, 1, 0, [f"{target} (unreadable test.xml: {e})"]
        cases = list(root.iter("testcase"))
        for case in cases:
            if case.find("failure") is not None or case.find("error") is not None:
                failed += 1
                failures.append(f"{target} {case.get('classname', '')}.{case.get('name', '')}"
                                + failure_excerpt(case))
            elif case.find("skipped") is not None or case.get("result") == "suppressed" \
                    or case.get("status") == "notrun":
                skipped += 1
            else:
                passed += 1
        # A crash can leave an XML with no failing case but a failing suite.
        if not cases or (failed == 0 and any(
                int(s.get("failures", "0") or 0) + int(s.get("errors", "0") or 0) > 0
                for s in root.iter("testsuite"))):
            failed += 1
            failures.append(f"{target} (test binary failed outside a test case)")
    return passed, failed, skipped, failures


def bazel_verdicts(output_file):
    verdicts = {}
    with open(output_file, errors="replace") as f:
        for line in f:
            parts = [p for p in line.split() if p != "(cached)"]
            if len(parts) >= 2 and parts[0].startswith("//") and parts[1] in (
                    "PASSED", "FAILED", "TIMEOUT", "FLAKY", "NO", "INCOMPLETE", "SKIPPED"):
                verdicts[parts[0]] = parts[1] if parts[1] != "NO" else "NO STATUS"
    return verdicts


def build_errors(output_file):
    """Bazel's ERROR lines: an action that failed (a benchmark or tool that
    no longer compiles) leaves no test without results when the target is
    not a test, yet the build is broken."""
    with open(output_file, errors="replace") as f:
        return [line.rstrip() for line in f if line.startswith("ERROR: ")]


def main():
    testlogs, output_file, targets = sys.argv[1], sys.argv[2], sys.argv[3:]
    verdicts = bazel_verdicts(output_file)
    totals = [0, 0, 0]
    errors = build_errors(output_file)
    if errors:
        totals[1] += 1
        print("FAILED: the build (bazel reported errors):", file=sys.stderr)
        for line in errors[:10]:
            print(f"    {line[:300]}", file=sys.stderr)
    for target in targets:
        p, f, s, failures = count_target(testlogs, target)
        verdict = verdicts.get(target)
        if f == 0 and verdict is not None and verdict != "PASSED":
            f = 1
            failures.append(f"{target} (bazel: {verdict})")
        totals[0] += p
        totals[1] += f
        totals[2] += s
        for line in failures:
            print(f"FAILED: {line}", file=sys.stderr)
    print(*totals)


if __name__ == "__main__":
    main()
