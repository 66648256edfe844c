"""Tests of tools/torch_snapshot_to_csv.py: conversion of a small snapshot, and refusal of pickled code."""

import csv
import io
import os
import pickle
import subprocess
import sys
import tempfile
import unittest

TOOLS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools")
sys.path.insert(0, TOOLS)

import torch_snapshot_to_csv as converter  # noqa: E402


def entry(action, addr, size, time_us=None, stream=0):
    fields = {"action": action, "addr": addr, "size": size, "stream": stream,
              "frames": [{"filename": "train.py", "line": 7, "name": "step"}]}
    if time_us is not None:
        fields["time_us"] = time_us
    return fields


def small_snapshot():
    """Device 1 holds the trace; device 0 is empty, as on a machine where training ran on the second GPU."""
    trace = [
        entry("segment_alloc", 0x7000, 1 << 21, 1_700_000_000_000_000),
        entry("alloc", 0x7000, 4096, 1_700_000_000_000_001),
        entry("alloc", 0x8000, 8192, 1_700_000_000_000_002, stream=0x55),
        entry("free_requested", 0x7000, 4096, 1_700_000_000_000_003),
        entry("free_completed", 0x7000, 4096, 1_700_000_000_000_004),
        entry("free_completed", 0x9000, 512, 1_700_000_000_000_005),  # allocated before the window
        entry("alloc", 0x7000, 2048, 1_700_000_000_000_006),
        {"action": "oom", "size": 1 << 40, "device_free": 0, "stream": 0, "time_us": 1_700_000_000_000_007},
        entry("segment_free", 0xA000, 1 << 21, 1_700_000_000_000_008),
    ]
    return {"segments": [], "device_traces": [[], trace]}


def convert_bytes(data, *args):
    return converter.convert(converter.load_snapshot(io.BytesIO(data)), *args)


class Payload:
    """Pickles to a call of os.system: what a malicious snapshot would hold."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class ConvertTest(unittest.TestCase):
    def test_converts_alloc_and_free_completed(self):
        rows, summary = convert_bytes(pickle.dumps(small_snapshot()))
        self.assertEqual(summary["device"], 1)
        self.assertEqual([row[2] for row in rows], ["allocate", "allocate", "free", "allocate", "allocate failure"])
        self.assertEqual([row[3] for row in rows], ["0x7000", "0x8000", "0x7000", "0x7000", "0x0"])
        self.assertEqual([row[4] for row in rows], ["4096", "8192", "4096", "2048", str(1 << 40)])
        self.assertEqual(rows[1][5], "0x55")
        self.assertEqual(rows[0][1], "22:13:20.000001")
        self.assertEqual(summary["dropped_frees"], 1)
        self.assertEqual(summary["peak_live_bytes"], 4096 + 8192)
        self.assertEqual(summary["failures"], 1)

    def test_free_requested_can_be_the_free(self):
        rows, summary = convert_bytes(pickle.dumps(small_snapshot()), 1, "free_requested")
        self.assertEqual([row[2] for row in rows].count("free"), 1)
        self.assertEqual(summary["dropped_frees"], 0)

    def test_times_default_to_one_microsecond_per_entry(self):
        snapshot = {"segments": [], "device_traces": [[entry("alloc", 0x10, 512), entry("alloc", 0x20, 512)]]}
        rows, _ = convert_bytes(pickle.dumps(snapshot))
        self.assertEqual([row[1] for row in rows], ["00:00:00.000000", "00:00:00.000001"])

    def test_writes_the_rmm_csv(self):
        rows, _ = convert_bytes(pickle.dumps(small_snapshot()))
        out = io.StringIO()
        converter.write_csv(rows, out)
        lines = out.getvalue().splitlines()
        self.assertEqual(lines[0], "Thread,Time,Action,Pointer,Size,Stream")
        parsed = list(csv.DictReader(io.StringIO(out.getvalue())))
        self.assertEqual(len(parsed), len(rows))
        self.assertEqual(parsed[2]["Action"], "free")

    def test_rejects_what_is_not_a_snapshot(self):
        with self.assertRaises(converter.SnapshotError):
            convert_bytes(pickle.dumps([1, 2, 3]))
        with self.assertRaises(converter.SnapshotError):
            convert_bytes(pickle.dumps({"device_traces": [[]]}))
        with self.assertRaises(converter.SnapshotError):
            convert_bytes(pickle.dumps(small_snapshot()), 5)
        bad = {"device_traces": [[{"action": "alloc", "addr": "0x10", "size": 4}]]}
        with self.assertRaises(converter.SnapshotError):
            convert_bytes(pickle.dumps(bad))

    def test_refuses_pickled_code(self):
        with tempfile.TemporaryDirectory() as directory:
            marker = os.path.join(directory, "executed")
            data = pickle.dumps({"device_traces": [[]], "payload": Payload(marker)})
            self.assertIn(b"system", data)
            with self.assertRaises(pickle.UnpicklingError):
                converter.load_snapshot(io.BytesIO(data))
            self.assertFalse(os.path.exists(marker), "the pickled call ran")

    def test_command_line(self):
        with tempfile.TemporaryDirectory() as directory:
            snapshot = os.path.join(directory, "snap.pickle")
            output = os.path.join(directory, "trace.csv")
            with open(snapshot, "wb") as f:
                pickle.dump(small_snapshot(), f)
            done = subprocess.run([sys.executable, os.path.join(TOOLS, "torch_snapshot_to_csv.py"), snapshot,
                                   "-o", output], capture_output=True, text=True, check=False)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertIn("1 frees of blocks allocated before the recording dropped", done.stderr)
            with open(output, encoding="ascii") as f:
                self.assertEqual(len(f.read().splitlines()), 6)
            with open(snapshot, "wb") as f:
                f.write(b"not a pickle")
            done = subprocess.run([sys.executable, os.path.join(TOOLS, "torch_snapshot_to_csv.py"), snapshot],
                                  capture_output=True, text=True, check=False)
            self.assertEqual(done.returncode, 1)
            self.assertIn("snap.pickle", done.stderr)


if __name__ == "__main__":
    unittest.main()
