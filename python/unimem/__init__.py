"""unimem: one memory manager for CUDA, OpenCL, host and simulated devices.

The C++ library's MemoryManager, its pools and statistics, and the ``unimem`` CLI's ``info`` and
``replay`` commands, from Python. Host-visible buffers are NumPy arrays without a copy
(``numpy.asarray(buf)``, ``numpy.from_dlpack(buf)``, ``memoryview(buf)``); device buffers copy to and from
any object with the buffer protocol. ``unimem.torch`` and ``unimem.cupy`` make unimem's pooled CUDA stack
the allocator of PyTorch and CuPy.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Callable, Optional, Sequence, Union

from . import _unimem, cupy, torch  # cupy and torch import those libraries only when called
from ._unimem import (
    BackendError,
    Buffer,
    Error,
    InvalidArgument,
    MemoryManager,
    NamedBuffer,
    NotSupported,
    OutOfMemory,
    TypeMismatch,
)

__all__ = [
    "BackendError",
    "Buffer",
    "Error",
    "InvalidArgument",
    "MemoryManager",
    "NamedBuffer",
    "NotSupported",
    "OutOfMemory",
    "TypeMismatch",
    "cupy",
    "info",
    "replay",
    "torch",
]


def info(simulated: Sequence[str] = ()) -> dict:
    """The backends, devices, memory, capabilities, peer access and platform: ``unimem info --json``.

    ``simulated`` adds simulated devices as ``unimem info --sim`` does (e.g. ``"1GiB:backed"``).
    """
    return json.loads(_unimem.info_json(list(simulated)))


def _terminal_progress() -> Optional[Callable[[str, float], None]]:
    """A progress callback drawing a bar with tqdm or rich when stderr is a terminal; None otherwise."""
    if not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is not None:
        bars: dict = {}

        def tqdm_progress(phase: str, fraction: float) -> None:
            bar = bars.get(phase)
            if bar is None:
                bar = bars[phase] = tqdm(total=1000, desc=phase, leave=False)
            bar.update(int(fraction * 1000) - bar.n)
            if fraction >= 1.0:
                bar.close()

        return tqdm_progress
    try:
        from rich.progress import Progress
    except ImportError:
        return None
    progress = Progress(transient=True)
    tasks: dict = {}

    def rich_progress(phase: str, fraction: float) -> None:
        if not tasks:
            progress.start()
        task = tasks.get(phase)
        if task is None:
            task = tasks[phase] = progress.add_task(phase, total=1.0)
        progress.update(task, completed=fraction)
        if fraction >= 1.0:
            progress.remove_task(task)
            del tasks[phase]
            if not tasks:
                progress.stop()

    return rich_progress


def replay(
    paths: Union[str, os.PathLike, Sequence[Union[str, os.PathLike]]],
    stacks: Sequence[str] = ("hybrid",),
    device: str = "sim:80GiB",
    repeat: int = 5,
    streams: int = 1,
) -> Union[dict, list]:
    """Replays allocation traces (RMM logging CSV) against resource stacks: ``unimem replay --json``.

    One path gives that trace's document, a list of paths a list of documents. A directory is every ``*.csv``
    in it: the CLI's document for several traces, with the summary per stack. ``stacks`` are resource specs
    (the first is ``--resource``, the rest ``--compare``); ``device``, ``repeat`` and ``streams`` are the CLI's
    options. A progress bar is drawn on a terminal when tqdm or rich is installed.
    """
    single = isinstance(paths, (str, os.PathLike))
    documents = [
        json.loads(
            _unimem.replay_json(os.fspath(path), list(stacks), device, repeat, _terminal_progress(), streams)
        )
        for path in ([paths] if single else paths)
    ]
    return documents[0] if single else documents
