"""The unimem CLI never dies by a signal: every subcommand given malformed values, file names that are not
UTF-8, missing files, paths that cannot be opened and directories exits with status 1 and a message naming the
value. The binary comes from the UNIMEM_CLI environment variable (ctest sets it)."""

import json
import os
import subprocess
import tempfile
import unittest

CLI = os.environ.get("UNIMEM_CLI", "")
HEADER = "Thread,Time,Action,Pointer,Size,Stream\n"
GOOD_TRACE = HEADER + "0,t,allocate,0x10,4096,0x0\n0,t,free,0x10,4096,0x0\n"


def run(*args, env=None):
    return subprocess.run([os.fsencode(CLI)] + [os.fsencode(a) if isinstance(a, str) else a for a in args],
                          capture_output=True, timeout=120, env=env)


@unittest.skipUnless(CLI, "UNIMEM_CLI is not set: run through ctest, which points it at the built binary")
class MalformedArguments(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.TemporaryDirectory()
        self.addCleanup(self.directory.cleanup)
        self.good = os.path.join(self.directory.name, "good.csv")
        with open(self.good, "w", encoding="ascii") as f:
            f.write(GOOD_TRACE)

    def expect_error(self, args, names):
        result = run(*args)
        shown = [a if isinstance(a, str) else repr(a) for a in args]
        self.assertGreaterEqual(result.returncode, 0, f"{shown} died by signal {-result.returncode}")
        self.assertEqual(result.returncode, 1, f"{shown}: rc {result.returncode}, stderr {result.stderr[:300]!r}")
        stderr = result.stderr.decode("utf-8")  # messages are valid UTF-8 whatever the input
        self.assertLess(len(stderr), 2000, f"{shown}: a {len(stderr)}-character message")
        if names:
            self.assertIn(names, stderr, f"{shown}: the message does not name {names!r}: {stderr!r}")

    def test_sizes(self):
        for size in [".", "", "0", "-1", "12XB", "9" * 400, "18446744073709551616", "1e9"]:
            with self.subTest(size=size):
                self.expect_error(["info", "--sim", size], size[:40] if size else None)
                self.expect_error(["replay", self.good, "--device", "sim:" + size], size[:40] if size else None)
                self.expect_error(["bench", "alloc", "--size", size], size[:40] if size else None)
                self.expect_error(["bench", "transfer", "--device", "host", "--size", size],
                                  size[:40] if size else None)

    def test_a_large_size_is_exact(self):
        result = run("info", "--sim", "10000000000000000000.5", "--json")
        self.assertEqual(result.returncode, 0, result.stderr)
        totals = [d["total_bytes"] for b in json.loads(result.stdout)["backends"]
                  for d in b["devices"] if d["id"].startswith("sim")]
        self.assertEqual(totals, [10000000000000000001])

    def test_devices(self):
        for device in ["sim:.", "cuda:99", "opencl:-1", "nonsense", "host:7", "sim:1GiB:weird", ""]:
            with self.subTest(device=device):
                self.expect_error(["replay", self.good, "--device", device], device or None)
                self.expect_error(["bench", "alloc", "--device", device, "--pairs", "1"], device or None)
                self.expect_error(["bench", "transfer", "--device", device, "--size", "1MiB"], device or None)

    def test_resource_specs(self):
        for spec in ["hybrid:threshold=.", "hybrid:threshold=" + "9" * 300, "bogus", "hybrid:nokey=1",
                     "coalescing:growth=abc", "size-class:min_block=", ":"]:
            with self.subTest(spec=spec):
                self.expect_error(["replay", self.good, "--resource", spec], spec[:40])
                self.expect_error(["replay", self.good, "--compare", spec], spec[:40])
                self.expect_error(["bench", "alloc", "--resource", spec, "--pairs", "1"], spec[:40])

    def test_counts(self):
        for value in ["0", "-1", "abc", "99999999999999999999999"]:
            with self.subTest(value=value):
                self.expect_error(["replay", self.good, "--repeat", value], value)
                self.expect_error(["replay", self.good, "--streams", value], value)
                self.expect_error(["bench", "alloc", "--pairs", value], value)
                self.expect_error(["bench", "alloc", "--threads", value, "--pairs", "1"], value)
                self.expect_error(["bench", "alloc", "--repeat", value, "--pairs", "1"], value)
                self.expect_error(["bench", "transfer", "--repeat", value, "--size", "1MiB"], value)

    def test_files(self):
        missing = os.path.join(self.directory.name, "missing.csv")
        self.expect_error(["replay", missing], missing)
        empty = os.path.join(self.directory.name, "no-traces")
        os.mkdir(empty)
        with open(os.path.join(empty, "notes.txt"), "w", encoding="ascii") as f:
            f.write("not a trace\n")
        self.expect_error(["replay", empty], "no-traces")
        self.expect_error(["replay", self.good, empty], "no-traces")
        self.expect_error(["replay", self.good, missing], missing)
        # A path through a regular file cannot be opened, even by root.
        self.expect_error(["replay", os.path.join(self.good, "inside.csv")], "inside.csv")
        self.expect_error(["replay", b"/nonexistent/\xff\xfe.csv"], "\\xff\\xfe")

    def test_malformed_traces(self):
        cases = {
            "huge.csv": (HEADER + "0,t,allocate,0x10,18446744073709551615,0x0\n", "huge.csv:2"),
            "wrap.csv": (HEADER + "0,t,allocate,0x10,9223372036854775808,0x0\n"
                         "0,t,allocate,0x20,9223372036854775808,0x0\n", "wrap.csv:3"),
            "long.csv": (HEADER + "0,t,allocate,0x10," + "7" * 1_000_000 + ",0x0\n", "long.csv:2"),
            "header.csv": ("nonsense\n", "header.csv:1"),
            "empty.csv": ("", "empty.csv"),
            "binary.csv": (HEADER + "\x00\xff\xfe,,,\n", "binary.csv:2"),
        }
        for name, (body, where) in cases.items():
            with self.subTest(name=name):
                path = os.path.join(self.directory.name, name)
                with open(path, "w", encoding="latin-1") as f:
                    f.write(body)
                self.expect_error(["replay", path], where)
                self.expect_error(["replay", path, "--json"], where)

    def test_streams_above_the_limit(self):
        for value in ["65", "1000"]:
            with self.subTest(value=value):
                self.expect_error(["replay", self.good, "--streams", value], value)

    def test_a_directory_replays_every_csv_in_it_with_a_summary(self):
        traces = os.path.join(self.directory.name, "traces")
        os.mkdir(traces)
        for name, size in [("b.csv", 8192), ("a.csv", 4096)]:
            with open(os.path.join(traces, name), "w", encoding="ascii") as f:
                f.write(HEADER + f"0,t,allocate,0x10,{size},0x0\n0,t,free,0x10,{size},0x0\n")
        with open(os.path.join(traces, "readme.txt"), "w", encoding="ascii") as f:
            f.write("not a trace\n")
        result = run("replay", traces, "--json", "--repeat", "1", "--streams", "4", "--compare", "upstream",
                     "hybrid")
        self.assertEqual(result.returncode, 0, result.stderr)
        document = json.loads(result.stdout)
        self.assertEqual(document["streams"], 4)
        self.assertEqual([os.path.basename(t["trace"]["path"]) for t in document["traces"]], ["a.csv", "b.csv"])
        self.assertEqual([t["trace"]["peak_live_bytes"] for t in document["traces"]], [4096, 8192])
        self.assertEqual(sorted(document["summary"]), ["hybrid", "upstream"])
        self.assertTrue(document["summary"]["upstream"]["within_target"])
        self.assertIn(os.path.basename(document["summary"]["hybrid"]["worst_trace"]), ["a.csv", "b.csv"])
        table = run("replay", traces, self.good, "--repeat", "1", "--streams", "4")
        self.assertEqual(table.returncode, 0, table.stderr)
        text = table.stdout.decode("utf-8")
        self.assertIn("streams: 4", text)
        self.assertIn("good.csv", text.split("summary:")[1])
        self.assertTrue(text.rstrip().splitlines()[-1].startswith("worst"), text)

    def test_one_trace_keeps_the_single_trace_document(self):
        result = run("replay", self.good, "--json", "--repeat", "1", "--streams", "4")
        self.assertEqual(result.returncode, 0, result.stderr)
        document = json.loads(result.stdout)
        self.assertNotIn("traces", document)
        self.assertEqual(document["streams"], 4)
        self.assertEqual(document["trace"]["allocations"], 1)

    def test_a_file_name_that_is_not_utf8_replays_to_valid_json(self):
        path = os.path.join(os.fsencode(self.directory.name), b"tr\xffce.csv")
        with open(path, "w", encoding="ascii") as f:
            f.write(GOOD_TRACE)
        result = run("replay", path, "--json", "--repeat", "1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["trace"]["allocations"], 1)

    def test_commands_and_options(self):
        self.expect_error([], None)
        self.expect_error(["frobnicate"], "frobnicate")
        self.expect_error(["bench"], None)
        self.expect_error(["info", "--no-such-flag"], "--no-such-flag")
        self.expect_error(["replay"], None)


if __name__ == "__main__":
    unittest.main()
