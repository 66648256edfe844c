"""The instruction-count driver behind scripts/bench-instructions: every subject runs every workload, callgrind
collects only inside the measured loop (so the loop alone costs a handful of instructions per pair), and bad
arguments exit 1 naming the value. The binary comes from UNIMEM_INSTRUCTION_DRIVER (ctest sets it)."""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

DRIVER = os.environ.get("UNIMEM_INSTRUCTION_DRIVER", "")
SUBJECTS = ["null", "malloc", "jemalloc", "mimalloc", "unimem:size-class@host", "unimem:hybrid@sim",
            "unimem:coalescing@host"]
TRACE = ("Thread,Time,Action,Pointer,Size,Stream\n"
         "0,t,allocate,0x10,4096,0x0\n0,t,allocate,0x20,300,0x0\n0,t,free,0x10,4096,0x0\n"
         "0,t,allocate,0x30,3000000,0x0\n0,t,free,0x30,3000000,0x0\n")  # 0x20 stays live at the end


def run(*args):
    return subprocess.run([DRIVER, *args], capture_output=True, text=True, timeout=300)


def collected(*args):
    """Instructions callgrind collected with collection switched on only by the driver."""
    result = subprocess.run(["valgrind", "--tool=callgrind", "--collect-atstart=no", "--callgrind-out-file=/dev/null",
                             DRIVER, "count", *args], capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise AssertionError(f"valgrind {args}: rc {result.returncode}: {result.stderr[-500:]}")
    return int(re.search(r"Collected : (\d+)", result.stderr).group(1))


@unittest.skipUnless(DRIVER, "UNIMEM_INSTRUCTION_DRIVER is not set: run through ctest")
class InstructionDriver(unittest.TestCase):
    def setUp(self):
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.trace = os.path.join(directory.name, "t.csv")
        with open(self.trace, "w", encoding="ascii") as f:
            f.write(TRACE)

    def test_every_subject_counts_pairs_and_replays(self):
        for subject in SUBJECTS:
            for mix in ("small", "large"):
                result = run("count", "pairs", subject, mix, "50")
                self.assertEqual(result.returncode, 0, f"{subject} {mix}: {result.stderr}")
                self.assertIn("operations 50", result.stdout)
            result = run("count", "replay", subject, self.trace)
            self.assertEqual(result.returncode, 0, f"{subject} replay: {result.stderr}")
            self.assertIn("operations 5", result.stdout)

    def test_time_prints_a_median_per_subject(self):
        result = run("time", "pairs", "small", "200", *SUBJECTS)
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertEqual([line.split()[0] for line in lines], SUBJECTS)
        for line in lines:
            fields = line.split()
            self.assertEqual(fields[1], "median_ns")
            self.assertGreaterEqual(float(fields[2]), float(fields[4]), line)  # median >= min

    @unittest.skipUnless(shutil.which("valgrind"), "valgrind is not installed (scripts/bootstrap installs it)")
    def test_collection_covers_only_the_measured_loop(self):
        pairs = 2000
        loop = collected("pairs", "null", "small", str(pairs))
        # The null subject's loop is a few instructions per pair: setup, parsing and warm-up are not counted.
        self.assertLess(loop / pairs, 20)
        self.assertGreater(loop, pairs)
        malloc = collected("pairs", "malloc", "small", str(pairs))
        self.assertGreater((malloc - loop) / pairs, 20, "malloc's own instructions are counted")
        # Deterministic for the same binary and input, which is why the figures are quoted in instructions.
        self.assertEqual(collected("pairs", "unimem:hybrid@sim", "small", str(pairs)),
                         collected("pairs", "unimem:hybrid@sim", "small", str(pairs)))

    def test_bad_arguments_exit_1_naming_the_value(self):
        cases = [
            (["count", "pairs", "tcmalloc", "small", "10"], "'tcmalloc'"),
            (["count", "pairs", "unimem:hybrid@gpu", "small", "10"], "'unimem:hybrid@gpu'"),
            (["count", "pairs", "unimem:nonsense@sim", "small", "10"], "nonsense"),
            (["count", "pairs", "null", "medium", "10"], "'medium'"),
            (["count", "pairs", "null", "small", "0"], "'0'"),
            (["count", "pairs", "null", "small", "ten"], "'ten'"),
            (["count", "walk", "null", "x"], "'walk'"),
            (["count", "replay", "null", self.trace + ".missing"], "t.csv.missing"),
            (["measure"], "usage"),
        ]
        for args, names in cases:
            result = run(*args)
            self.assertEqual(result.returncode, 1, f"{args}: rc {result.returncode} {result.stderr}")
            self.assertIn(names, result.stderr, args)


if __name__ == "__main__":
    unittest.main()
