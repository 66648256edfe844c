"""The allocator library shipped next to the extension (libunimem_cuda_allocator), loaded through ctypes.

Its C ABI is the one PyTorch's ``CUDAPluggableAllocator`` calls; ``unimem.torch`` and ``unimem.cupy`` hand it
to those libraries, and this module reads its statistics and errors. The ``simulated`` build serves two
backed simulated devices instead of CUDA devices, for tests on machines without a GPU.
"""

from __future__ import annotations

import ctypes
import json
import pathlib
from typing import Dict

from . import _unimem
from ._unimem import Error

_libraries: Dict[bool, ctypes.CDLL] = {}


def library_path(simulated: bool = False) -> str:
    """The path of the allocator library: the CUDA one, or the build that serves simulated devices."""
    name = "libunimem_cuda_allocator_sim.so" if simulated else "libunimem_cuda_allocator.so"
    # Installed next to the extension, which an editable install keeps apart from the package's sources.
    path = pathlib.Path(_unimem.__file__).resolve().parent / name
    if not path.exists():
        raise Error(f"the allocator library {str(path)!r} is not installed (was the package built without it?)")
    return str(path)


def library(simulated: bool = False) -> ctypes.CDLL:
    """The allocator library, loaded once, with its functions' signatures declared.

    Loading the path PyTorch loaded gives the same copy, so the statistics are those of PyTorch's allocations.
    """
    loaded = _libraries.get(simulated)
    if loaded is None:
        loaded = ctypes.CDLL(library_path(simulated))
        loaded.unimem_allocator_malloc.argtypes = [ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p]
        loaded.unimem_allocator_malloc.restype = ctypes.c_void_p
        loaded.unimem_allocator_free.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int, ctypes.c_void_p]
        loaded.unimem_allocator_free.restype = None
        loaded.unimem_allocator_malloc_pinned.argtypes = [ctypes.c_ssize_t, ctypes.c_int]
        loaded.unimem_allocator_malloc_pinned.restype = ctypes.c_void_p
        loaded.unimem_allocator_free_pinned.argtypes = [ctypes.c_void_p, ctypes.c_ssize_t, ctypes.c_int]
        loaded.unimem_allocator_free_pinned.restype = None
        loaded.unimem_allocator_last_error.argtypes = []
        loaded.unimem_allocator_last_error.restype = ctypes.c_char_p
        loaded.unimem_allocator_stats_json.argtypes = []
        loaded.unimem_allocator_stats_json.restype = ctypes.c_char_p
        loaded.unimem_allocator_backend.argtypes = []
        loaded.unimem_allocator_backend.restype = ctypes.c_char_p
        _libraries[simulated] = loaded
    return loaded


def last_error(simulated: bool = False) -> str:
    """Why this thread's last call into the library failed; "" after one that succeeded."""
    return library(simulated).unimem_allocator_last_error().decode("utf-8", "replace")


def stats(simulated: bool = False) -> dict:
    """The library's counters (allocations, frees, rejected_frees, live_allocations, live_bytes, peak_bytes,
    wrapped_streams) and, under "devices", each served device's MemoryStats."""
    text = library(simulated).unimem_allocator_stats_json()
    if text is None:
        raise Error(last_error(simulated))
    return json.loads(text)
