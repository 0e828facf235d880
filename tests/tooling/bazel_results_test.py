#!/usr/bin/env python3
"""Tests of tests/bazel_results.py, which turns a `bazel test` run into the
suite's counts: a broken build must never count as a pass."""
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bazel_results.py")

XML_PASS = """<?xml version="1.0"?>
<testsuites><testsuite name="T" tests="2" failures="0" errors="0">
<testcase name="a" classname="T"/><testcase name="b" classname="T"/>
</testsuite></testsuites>"""

XML_FAIL = """<?xml version="1.0"?>
<testsuites><testsuite name="T" tests="2" failures="1" errors="0">
<testcase name="a" classname="T"/>
<testcase name="b" classname="T"><failure message="expected 1, got 2"/></testcase>
</testsuite></testsuites>"""


class BazelResultsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.logs = os.path.join(self.dir.name, "testlogs")

    def tearDown(self):
        self.dir.cleanup()

    def write_xml(self, target, text):
        package, _, name = target.lstrip("/").partition(":")
        path = os.path.join(self.logs, package, name)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "test.xml"), "w") as f:
            f.write(text)

    def run_script(self, output, targets):
        out = os.path.join(self.dir.name, "bazel.log")
        with open(out, "w") as f:
            f.write(output)
        result = subprocess.run([sys.executable, SCRIPT, self.logs, out, *targets],
                                capture_output=True, text=True, check=True)
        return tuple(int(x) for x in result.stdout.split()), result.stderr

    def test_counts_cases_of_each_target(self):
        self.write_xml("//a:t", XML_PASS)
        self.write_xml("//b:t", XML_FAIL)
        counts, stderr = self.run_script("//a:t  PASSED in 1s\n//b:t  FAILED in 1s\n",
                                         ["//a:t", "//b:t"])
        self.assertEqual(counts, (3, 1, 0))
        self.assertIn("expected 1, got 2", stderr)

    def test_a_test_without_results_is_a_failure(self):
        counts, stderr = self.run_script("", ["//a:t"])
        self.assertEqual(counts, (0, 1, 0))
        self.assertIn("no test results", stderr)

    def test_a_failed_action_of_a_target_that_is_no_test_is_a_failure(self):
        # Every test passed, but a benchmark no longer compiles.
        self.write_xml("//a:t", XML_PASS)
        output = ("ERROR: /w/bench/BUILD.bazel:27:10: Compiling bench/x.cc failed: (Exit 1)\n"
                  "//a:t  PASSED in 1s\nFAILED: Build did NOT complete successfully\n")
        counts, stderr = self.run_script(output, ["//a:t"])
        self.assertEqual(counts, (2, 1, 0))
        self.assertIn("Compiling bench/x.cc failed", stderr)

    def test_a_clean_run_has_no_extra_failure(self):
        self.write_xml("//a:t", XML_PASS)
        counts, _ = self.run_script("INFO: Build completed successfully\n//a:t  PASSED in 1s\n",
                                    ["//a:t"])
        self.assertEqual(counts, (2, 0, 0))


if __name__ == "__main__":
    unittest.main()
