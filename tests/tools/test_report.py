"""`unimem report`: round trips of a trace and of snapshot files, the page in headless Chromium, bad input.

The CLI is the binary named by UNIMEM_CLI. Chromium runs with no network: a proxy that leads nowhere
(--proxy-server=127.0.0.1:9, loopback included through --proxy-bypass-list=<-loopback>) on top of the page's own
Content-Security-Policy, so any request the page made would fail and show as a console error.
"""

import json
import os
import re
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

CLI = os.environ.get("UNIMEM_CLI", "unimem")
ROOT = Path(__file__).resolve().parents[2]
# What Chromium logs for a console message, an uncaught exception, a failed load or a CSP refusal.
CONSOLE_ERRORS = r"(?i)CONSOLE[:(]|Uncaught|net::ERR|Refused to"
DEMO_TRACE = ROOT / "data" / "traces" / "demo_training.csv"


def run(*args):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, timeout=600)


def page_data(html_path):
    text = Path(html_path).read_text()
    match = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert match, "no data block"
    return json.loads(match.group(1))


def snapshot_document(segments, version=2):
    """A snapshot in the docs/snapshot.md schema: one pooled stack on sim:0 with the given segments."""
    stack = {
        "stack": "pooled", "limit_bytes": 1 << 30, "pressure": "low",
        "stats": {"peak_bytes": 3 << 20, "in_use_bytes": 3 << 20},
        "device": {"name": "sim:0", "backend": "sim", "index": 0}, "kind": "device",
        "usage": {"reserved_bytes": sum(s["size"] for s in segments), "in_use_bytes": 3 << 20,
                  "free_bytes": 0, "largest_free_range": 1 << 20},
        "segments": segments,
    }
    return {"schema": "unimem.snapshot", "schema_version": version, "stacks": [stack],
            "failed_request": None}


def segment(ident, ranges):
    return {"id": ident, "base": 4096 * ident, "size": sum(r["size"] for r in ranges), "kind": "device",
            "pool": "coalescing", "ranges": ranges}


def allocated(offset, size):
    return {"offset": offset, "size": size, "allocated": True, "requested": size, "stream": 0,
            "allocation_id": 0, "tag": "", "age_seconds": None}


def free(offset, size):
    return {"offset": offset, "size": size, "allocated": False, "requested": 0, "stream": 0,
            "allocation_id": 0, "tag": "", "age_seconds": None}


SEGMENTS = [segment(1, [allocated(0, 1 << 20), free(1 << 20, 1 << 20)]),
            segment(2, [allocated(0, 2 << 20)]),
            segment(3, [free(0, 4 << 20)])]


def chromium():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(html_path):
    """The DOM after the page's script ran, and Chromium's log (console messages included)."""
    result = subprocess.run(
        [chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--dump-dom",
         "file://" + str(Path(html_path).resolve())],
        capture_output=True, text=True, timeout=300)
    return result.stdout, result.stderr


class ReportTest(unittest.TestCase):
    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(prefix="unimem_report_"))

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write_snapshot(self, name, document):
        path = self.dir / name
        path.write_text(json.dumps(document))
        return path

    def test_trace_round_trip(self):
        out = self.dir / "trace.html"
        result = run("report", DEMO_TRACE, "-o", out, "--resource", "coalescing", "size-class")
        self.assertEqual(result.returncode, 0, result.stderr)
        data = page_data(out)
        replay = json.loads(run("replay", DEMO_TRACE, "--compare", "coalescing", "size-class", "--json",
                                "--repeat", "1").stdout)
        self.assertEqual(data["trace"]["events"], replay["trace"]["events"])
        self.assertEqual(data["trace"]["peak_live_bytes"], replay["trace"]["peak_live_bytes"])
        for stack, replayed in zip(data["stacks"], replay["results"]):
            self.assertEqual(stack["name"], replayed["resource"])
            self.assertEqual(stack["summary"]["peak_reserved_bytes"], replayed["peak_reserved_bytes"])
            self.assertEqual(stack["summary"]["largest_free_range_at_map"],
                             replayed["largest_free_range_at_peak_live"])
            self.assertEqual(stack["map_event"], data["trace"]["peak_event"])
            # The timeline's buckets keep the exact peak of reserved bytes.
            self.assertEqual(max(stack["timeline"]["reserved_max"]), replayed["peak_reserved_bytes"])
            self.assertEqual(max(stack["timeline"]["live_max"]), data["trace"]["peak_live_bytes"])
            self.assertGreater(len(stack["pool"]["segments"]), 0)
            held = sum(s["size"] for s in stack["pool"]["segments"])
            self.assertEqual(held, stack["summary"]["reserved_bytes_at_map"])
            self.assertGreater(len(stack["largest"]), 0)
            sizes = [a["bytes"] for a in stack["largest"]]
            self.assertEqual(sizes, sorted(sizes, reverse=True))
        self.assertFalse(list(self.dir.glob("*.tmp")))

    def test_at_event_and_device_too_small(self):
        out = self.dir / "small.html"
        result = run("report", DEMO_TRACE, "-o", out, "--resource", "coalescing", "--device", "sim:1GiB")
        self.assertEqual(result.returncode, 0, result.stderr)
        stack = page_data(out)["stacks"][0]
        self.assertGreater(stack["failed_allocations"], 0)
        self.assertEqual(stack["map_event"], stack["failed_events"][0])
        self.assertEqual(stack["map_reason"], "first failed allocation")
        result = run("report", DEMO_TRACE, "-o", out, "--at", "10")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(page_data(out)["stacks"][0]["map_event"], 10)

    def test_snapshot_round_trip(self):
        path = self.write_snapshot("snap.json", snapshot_document(SEGMENTS))
        out = self.dir / "snap.html"
        result = run("report", path, path, "-o", out)
        self.assertEqual(result.returncode, 0, result.stderr)
        data = page_data(out)
        self.assertEqual(data["kind"], "snapshots")
        self.assertEqual(len(data["stacks"]), 2)
        self.assertEqual(data["stacks"][0]["pool"]["segments"], SEGMENTS)
        self.assertEqual([r["size"] for r in data["stacks"][0]["largest"]], [2 << 20, 1 << 20])

    def test_page_in_chromium(self):
        if chromium() is None:
            print("SKIPPED: chromium (or chromium-browser) is not on PATH; scripts/bootstrap installs it")
            self.skipTest("chromium absent")
        path = self.write_snapshot("snap.json", snapshot_document(SEGMENTS))
        out = self.dir / "snap.html"
        self.assertEqual(run("report", path, "-o", out).returncode, 0)
        dom, log = dump_dom(out)
        self.assertIn('data-status="ok"', dom)
        self.assertEqual(dom.count('class="segment-bar"'), len(SEGMENTS))
        self.assertNotRegex(log, CONSOLE_ERRORS)

        trace_page = self.dir / "trace.html"
        self.assertEqual(run("report", DEMO_TRACE, "-o", trace_page, "--resource", "coalescing").returncode, 0)
        data = page_data(trace_page)
        dom, log = dump_dom(trace_page)
        self.assertIn('data-status="ok"', dom)
        self.assertRegex(dom, r'<pre id="errors"></pre>')
        markers = re.findall(r'class="peak-marker" data-event="(\d+)"', dom)
        self.assertEqual(markers, [str(data["trace"]["peak_event"])])
        self.assertEqual(dom.count('class="segment-bar"'), len(data["stacks"][0]["pool"]["segments"]))
        self.assertNotRegex(log, CONSOLE_ERRORS)

        png = self.dir / "page.png"
        result = run("report", DEMO_TRACE, "-o", trace_page, "--png", png)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(png.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(png.stat().st_size, 10000)  # a blank page compresses to far less

    def assert_fails(self, inputs, expected, out=None):
        out = out or self.dir / "out.html"
        result = run("report", *inputs, "-o", out)
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn(expected, result.stderr)
        self.assertFalse(Path(out).exists())
        self.assertFalse(list(Path(out).parent.glob("*.tmp")))

    def test_bad_input(self):
        newer = self.write_snapshot("v3.json", snapshot_document(SEGMENTS, version=3))
        self.assert_fails([newer], "schema version 3; this unimem reads version 2")
        whole = json.dumps(snapshot_document(SEGMENTS))
        truncated = self.dir / "cut.json"
        truncated.write_text(whole[: len(whole) // 2])
        self.assert_fails([truncated], "is not valid JSON (truncated?)")
        bad_trace = self.dir / "bad.csv"
        bad_trace.write_text("Thread,Time,Action,Pointer,Size,Stream\n1,0,allocate,0x10,100,0\n1,1,free,0x20,100,0\n")
        replay = run("replay", bad_trace, "--repeat", "1")
        self.assertEqual(replay.returncode, 1)
        self.assert_fails([bad_trace], replay.stderr.strip().removeprefix("unimem: "))
        self.assertIn("bad.csv:3", replay.stderr)
        self.assert_fails([DEMO_TRACE], "cannot write", out=self.dir / "no" / "such" / "dir" / "out.html")
        self.assert_fails([DEMO_TRACE, newer], "a trace and snapshot files given together")


if __name__ == "__main__":
    unittest.main()
