"""unimem's pooled CUDA stack as CuPy's device allocator, and its pinned stack as CuPy's pinned allocator.

``enable()`` installs both through ``cupy.cuda.set_allocator`` and ``cupy.cuda.set_pinned_memory_allocator``,
using the allocator library PyTorch's hook uses (libunimem_cuda_allocator): device memory is allocated and
freed in the order of CuPy's current stream. ``disable()`` gives CuPy its own allocators back.
"""

from __future__ import annotations

from . import _allocator
from ._unimem import NotSupported, OutOfMemory


class _DeviceAllocation:
    """Owns one allocation; CuPy drops it when the last array on it goes, and the memory goes back then."""

    def __init__(self, size: int, device: int, stream: int) -> None:
        self.library = _allocator.library()
        self.size, self.device, self.stream = size, device, stream
        self.ptr = self.library.unimem_allocator_malloc(size, device, stream) or 0
        if not self.ptr:
            raise OutOfMemory(_allocator.last_error())

    def __del__(self) -> None:
        if self.ptr:
            self.library.unimem_allocator_free(self.ptr, self.size, self.device, self.stream)


class _PinnedAllocation:
    """What CuPy's PinnedMemoryPointer holds: ``ptr`` and ``size``, freed when CuPy lets go."""

    def __init__(self, size: int, device: int) -> None:
        self.library = _allocator.library()
        self.size, self.device = size, device
        self.ptr = self.library.unimem_allocator_malloc_pinned(size, device) or 0
        if not self.ptr:
            raise OutOfMemory(_allocator.last_error())

    def __del__(self) -> None:
        if self.ptr:
            self.library.unimem_allocator_free_pinned(self.ptr, self.size, self.device)


def _device_allocator(size: int):
    import cupy

    if size == 0:
        return cupy.cuda.memory.MemoryPointer(cupy.cuda.memory.Memory(0), 0)  # allocates nothing
    device = cupy.cuda.runtime.getDevice()
    allocation = _DeviceAllocation(size, device, cupy.cuda.get_current_stream().ptr)
    memory = cupy.cuda.memory.UnownedMemory(allocation.ptr, size, allocation, device)
    return cupy.cuda.memory.MemoryPointer(memory, 0)


def _pinned_allocator(size: int):
    import cupy

    if size == 0:
        return cupy.cuda.PinnedMemoryPointer(cupy.cuda.PinnedMemory(0), 0)
    return cupy.cuda.PinnedMemoryPointer(_PinnedAllocation(size, cupy.cuda.runtime.getDevice()), 0)


def enable() -> None:
    """Makes CuPy allocate device and pinned memory through unimem. NotSupported when CuPy sees no device."""
    import cupy

    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as e:
        raise NotSupported(f"unimem.cupy.enable: CuPy sees no CUDA device ({e})") from e
    if count == 0:
        raise NotSupported("unimem.cupy.enable: CuPy sees no CUDA device")
    cupy.cuda.set_allocator(_device_allocator)
    cupy.cuda.set_pinned_memory_allocator(_pinned_allocator)


def disable() -> None:
    """Gives CuPy back its default memory pools."""
    import cupy

    cupy.cuda.set_allocator(cupy.get_default_memory_pool().malloc)
    cupy.cuda.set_pinned_memory_allocator(cupy.get_default_pinned_memory_pool().malloc)


def stats() -> dict:
    """The allocator library's counters and each CUDA device's MemoryStats (see unimem._allocator.stats)."""
    return _allocator.stats()
