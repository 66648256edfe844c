"""unimem's pooled CUDA stack as PyTorch's CUDA allocator.

``enable()`` hands the allocator library shipped in this package (libunimem_cuda_allocator) to
``torch.cuda.memory.CUDAPluggableAllocator``: every CUDA tensor PyTorch allocates afterwards comes from
unimem's pools, allocated and freed in the order of the stream PyTorch passes. PyTorch accepts a new
allocator only before it initialises CUDA, so call it first thing. ``stats()`` reads the library's counters.
The configuration is ``UNIMEM_CONF``'s (docs/manager.md), with the host fallback off: PyTorch needs device
memory.
"""

from __future__ import annotations

from typing import Optional, Union

from . import _allocator
from ._unimem import Error, InvalidArgument, NotSupported

_enabled = False


def _cuda_index(device: Union[int, str]) -> int:
    if isinstance(device, int):
        return device
    text = str(device)
    prefix, _, index = text.partition(":")
    if prefix != "cuda" or not index.isdigit():
        raise InvalidArgument(f"unimem.torch.enable: device {text!r}: expected an index or 'cuda:N'")
    return int(index)


def enable(device: Optional[Union[int, str]] = None) -> None:
    """Installs unimem as PyTorch's CUDA allocator; ``device`` (an index or "cuda:N") becomes the current
    CUDA device, None leaves it.

    Raises Error when PyTorch has initialised CUDA already (it then keeps its own allocator),
    NotSupported when PyTorch has no CUDA or sees no device, InvalidArgument for a device it does not have.
    Calling it again once enabled only changes the device.
    """
    global _enabled
    import torch

    index = None if device is None else _cuda_index(device)
    if not torch.cuda.is_available():
        raise NotSupported("unimem.torch.enable: PyTorch sees no CUDA device (torch.cuda.is_available() is False)")
    count = torch.cuda.device_count()
    if index is not None and not 0 <= index < count:
        raise InvalidArgument(f"unimem.torch.enable: device {device!r}: PyTorch sees {count} CUDA device(s)")
    if not _enabled:
        if torch.cuda.is_initialized():
            raise Error(
                "unimem.torch.enable: PyTorch has initialised CUDA already, and its allocator cannot be "
                "replaced after that: call unimem.torch.enable() before any CUDA tensor or call"
            )
        allocator = torch.cuda.memory.CUDAPluggableAllocator(
            _allocator.library_path(), "unimem_allocator_malloc", "unimem_allocator_free"
        )
        torch.cuda.memory.change_current_allocator(allocator)
        _enabled = True
    if index is not None:
        torch.cuda.set_device(index)


def enabled() -> bool:
    """True once enable() has installed unimem's allocator in this process."""
    return _enabled


def stats() -> dict:
    """The allocator library's counters and each CUDA device's MemoryStats (see unimem._allocator.stats)."""
    return _allocator.stats()
