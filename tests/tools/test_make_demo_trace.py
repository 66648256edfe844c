"""The committed demo trace is exactly what tools/make_demo_trace.py writes, and is a valid trace."""

import csv
import filecmp
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
COMMITTED = os.path.join(ROOT, "data", "traces", "demo_training.csv")


class DemoTraceTest(unittest.TestCase):
    def test_generator_reproduces_the_committed_trace(self):
        with tempfile.TemporaryDirectory() as directory:
            output = os.path.join(directory, "demo.csv")
            subprocess.run([sys.executable, os.path.join(ROOT, "tools", "make_demo_trace.py"), "-o", output],
                           check=True, capture_output=True)
            self.assertTrue(filecmp.cmp(output, COMMITTED, shallow=False),
                            "data/traces/demo_training.csv differs from what tools/make_demo_trace.py writes")

    def test_trace_is_consistent_and_small(self):
        self.assertLess(os.path.getsize(COMMITTED), 200 * 1024)
        live = {}
        with open(COMMITTED, encoding="ascii") as f:
            rows = list(csv.DictReader(f))
        for row in rows:
            if row["Action"] == "allocate":
                self.assertNotIn(row["Pointer"], live)
                live[row["Pointer"]] = int(row["Size"])
            else:
                self.assertEqual(row["Action"], "free")
                self.assertEqual(live.pop(row["Pointer"]), int(row["Size"]))
        self.assertGreater(len(rows), 2000)


if __name__ == "__main__":
    unittest.main()
