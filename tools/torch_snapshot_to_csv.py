#!/usr/bin/env python3
"""Convert a PyTorch CUDA memory snapshot into an allocation trace that `unimem replay` reads.

Record the snapshot in the PyTorch program:

    torch.cuda.memory._record_memory_history(max_entries=1_000_000)
    ...  # the steps to record
    torch.cuda.memory._dump_snapshot("snap.pickle")

then convert and replay it:

    python3 tools/torch_snapshot_to_csv.py snap.pickle -o trace.csv
    unimem replay trace.csv

The output is RMM's logging CSV (`Thread,Time,Action,Pointer,Size,Stream`). From the snapshot's
`device_traces` it takes the allocator's `alloc` entries as allocations and its `free_completed` entries as
frees (the moment the block may be reused, after the streams that used it are done; `--free-action
free_requested` takes the moment the program let go of it instead), and `oom` entries as `allocate failure`
lines. Segment entries (`segment_alloc`, `segment_free`, ...) describe PyTorch's own caching and are left out.
Frees of blocks allocated before the recording window (or before its ring buffer wrapped) are dropped;
blocks still allocated at the end stay live. Times are `time_us` as UTC time of day, or one microsecond per
entry when the snapshot has no times.

The snapshot is a pickle, and unpickling can run code. This tool never imports torch and loads the pickle
with an unpickler that refuses every class and function reference: a snapshot holds only dicts, lists,
strings and numbers, and anything else is rejected.
"""

import argparse
import csv
import datetime
import pickle
import sys

HEADER = ["Thread", "Time", "Action", "Pointer", "Size", "Stream"]
FREE_ACTIONS = ("free_completed", "free_requested")


class SnapshotError(Exception):
    """The input is not a memory snapshot this tool can convert."""


class PlainUnpickler(pickle.Unpickler):
    """Builds plain Python values only: any reference to a class or function is refused."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: a memory snapshot holds only plain Python values")


def load_snapshot(stream):
    """Unpickles a snapshot from a binary stream without executing anything it references."""
    snapshot = PlainUnpickler(stream).load()
    if not isinstance(snapshot, dict) or not isinstance(snapshot.get("device_traces"), list):
        raise SnapshotError("not a CUDA memory snapshot: expected a dict with a 'device_traces' list")
    return snapshot


def pick_device(snapshot, device):
    """The device index to convert: the one asked for, or the first with a non-empty trace."""
    traces = snapshot["device_traces"]
    if device is not None:
        if not 0 <= device < len(traces):
            raise SnapshotError(f"device {device} is not in the snapshot ({len(traces)} device trace(s))")
        return device
    for index, trace in enumerate(traces):
        if trace:
            return index
    raise SnapshotError("every device trace in the snapshot is empty (was _record_memory_history() on?)")


def format_time(entry, index):
    micros = entry.get("time_us")
    if micros is None:
        micros = index
    moment = datetime.datetime.fromtimestamp(micros / 1e6, tz=datetime.timezone.utc)
    return moment.strftime("%H:%M:%S.%f")


def integer(entry, key, device, index):
    value = entry.get(key)
    if not isinstance(value, int) or value < 0:
        raise SnapshotError(f"device {device}, entry {index} ({entry.get('action')}): '{key}' is {value!r}, "
                            "expected a non-negative integer")
    return value


def convert(snapshot, device=None, free_action="free_completed"):
    """Returns (rows, summary) for one device's trace; rows exclude the header."""
    if free_action not in FREE_ACTIONS:
        raise SnapshotError(f"free action '{free_action}' is not one of {', '.join(FREE_ACTIONS)}")
    device = pick_device(snapshot, device)
    live = {}  # address -> size
    rows = []
    summary = {"device": device, "allocations": 0, "frees": 0, "dropped_frees": 0, "failures": 0,
               "peak_live_bytes": 0}
    live_bytes = 0
    for index, entry in enumerate(snapshot["device_traces"][device]):
        if not isinstance(entry, dict):
            raise SnapshotError(f"device {device}, entry {index}: expected a dict, found {type(entry).__name__}")
        action = entry.get("action")
        time = format_time(entry, index)
        stream = f"{integer(entry, 'stream', device, index) if 'stream' in entry else 0:#x}"
        if action == "oom":
            rows.append(["0", time, "allocate failure", "0x0", str(integer(entry, "size", device, index)), stream])
            summary["failures"] += 1
        elif action == "alloc":
            address, size = integer(entry, "addr", device, index), integer(entry, "size", device, index)
            if address in live:
                raise SnapshotError(f"device {device}, entry {index}: block {address:#x} allocated twice "
                                    f"without a '{free_action}' between")
            live[address] = size
            live_bytes += size
            summary["peak_live_bytes"] = max(summary["peak_live_bytes"], live_bytes)
            rows.append(["0", time, "allocate", f"{address:#x}", str(size), stream])
            summary["allocations"] += 1
        elif action == free_action:
            address = integer(entry, "addr", device, index)
            size = live.pop(address, None)
            if size is None:
                summary["dropped_frees"] += 1  # allocated before the recording window
                continue
            live_bytes -= size
            rows.append(["0", time, "free", f"{address:#x}", str(size), stream])
            summary["frees"] += 1
    return rows, summary


def write_csv(rows, out):
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    writer.writerows(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot", help="pickle written by torch.cuda.memory._dump_snapshot()")
    parser.add_argument("-o", "--output", help="CSV file to write (default: standard output)")
    parser.add_argument("--device", type=int, help="CUDA device index (default: the first with a trace)")
    parser.add_argument("--free-action", choices=FREE_ACTIONS, default="free_completed",
                        help="which trace entry counts as the free (default: free_completed)")
    args = parser.parse_args(argv)
    try:
        with open(args.snapshot, "rb") as stream:
            snapshot = load_snapshot(stream)
        rows, summary = convert(snapshot, args.device, args.free_action)
    except (OSError, EOFError, pickle.UnpicklingError, SnapshotError) as error:
        print(f"torch_snapshot_to_csv: {args.snapshot}: {error}", file=sys.stderr)
        return 1
    if args.output:
        with open(args.output, "w", newline="", encoding="ascii") as out:
            write_csv(rows, out)
    else:
        write_csv(rows, sys.stdout)
    print(f"device {summary['device']}: {summary['allocations']} allocations, {summary['frees']} frees, "
          f"{summary['dropped_frees']} frees of blocks allocated before the recording dropped, "
          f"{summary['failures']} out-of-memory entries; peak live {summary['peak_live_bytes']} bytes",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
