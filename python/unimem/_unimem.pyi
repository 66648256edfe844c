"""Type stubs of unimem's C++ core (unimem._unimem); the unimem package re-exports these names."""

from typing import Any, Callable, Optional, Sequence, Tuple, Union

class Error(Exception): ...
class InvalidArgument(Error, ValueError): ...
class TypeMismatch(Error, TypeError): ...
class NotSupported(Error, NotImplementedError): ...
class OutOfMemory(Error, MemoryError): ...
class BackendError(Error, RuntimeError): ...

class Buffer:
    """Memory from a MemoryManager; back in its pool when the last reference (NumPy views included) goes.

    Host-visible buffers support the buffer protocol (``memoryview(buf)``: writable, C-contiguous, the
    buffer's shape and element format, no copy) and ``__array_interface__``; for device memory both raise
    NotSupported.
    """

    @property
    def nbytes(self) -> int: ...
    @property
    def device(self) -> str:
        """Where the memory lives: "host:0", "opencl:1", "sim:0", "cuda:0"."""
    @property
    def kind(self) -> str:
        """"device", "pinned", "unified" or "host" (MemoryKind)."""
    @property
    def host_visible(self) -> bool: ...
    @property
    def shape(self) -> Tuple[int, ...]: ...
    @property
    def address(self) -> int:
        """The host address of the first byte; NotSupported when the memory is not host-visible."""
    def copy_from(self, source: Any) -> None:
        """Copies nbytes from a C-contiguous buffer-protocol object of at least nbytes.

        InvalidArgument for a non-contiguous or too small object, TypeMismatch for one without the protocol.
        """
    def copy_to(self, target: Any) -> None:
        """Copies nbytes into a writable C-contiguous buffer-protocol object of at least nbytes."""
    def __dlpack_device__(self) -> Tuple[int, int]:
        """(kDLCPU=1, 0) for host-visible memory, kDLOpenCL=4, kDLCUDA=2, kDLExtDev=12 (simulated) otherwise."""
    def __dlpack__(self, *args: Any, **kwargs: Any) -> Any:
        """A DLPack capsule of host-visible memory; NotSupported for device memory."""
    @property
    def __array_interface__(self) -> dict: ...
    def __buffer__(self, flags: int) -> memoryview: ...

class NamedBuffer:
    """A named buffer of a MemoryManager, reached by name on every call (so never stale): after free() or
    the manager's free_named() its methods raise InvalidArgument naming it."""

    @property
    def name(self) -> str: ...
    @property
    def nbytes(self) -> int:
        """Its size now (ensure_capacity may have grown it)."""
    @property
    def device(self) -> str: ...
    @property
    def kind(self) -> str: ...
    def copy_from(self, source: Any) -> None:
        """Copies all of a C-contiguous buffer-protocol object into the buffer, from its first byte, on the
        buffer's own stream, and waits. InvalidArgument for an empty object or one larger than nbytes."""
    def copy_to(self, target: Any) -> None:
        """Fills a writable C-contiguous buffer-protocol object (at most nbytes) from the buffer's first byte."""
    def ensure_capacity(self, nbytes: int) -> None:
        """Grows the buffer to at least nbytes, keeping its contents (NamedBuffers::grow)."""
    def free(self) -> None: ...

class MemoryManager:
    """unimem's MemoryManager: pools per device and kind of memory, statistics, pressure, named buffers.

    config: UNIMEM_CONF syntax ("fraction=0.8,fallback=off"); None reads UNIMEM_CONF.
    simulated: simulated devices to add ("1GiB:backed"), named "sim:0", "sim:1", ... in order.
    default_device: "host", "opencl:N", "cuda:N" or "sim:N"; None picks CUDA, then OpenCL, simulated, host.
    """

    def __init__(
        self, config: Optional[str] = None, simulated: Sequence[str] = ..., default_device: Optional[str] = None
    ) -> None: ...
    def allocate(
        self, size: Union[int, Tuple[Union[int, Sequence[int]], Any]], mode: str = "pooled", device: Optional[str] = None
    ) -> Buffer:
        """nbytes, or (shape, dtype) with dtype a name or NumPy dtype; mode "pooled", "unpooled", "pinned" or
        "unified"; device None for the default device. InvalidArgument for sizes <= 0, an unknown dtype, mode
        or device; OutOfMemory when the device is full. The GIL is released while allocating."""
    def devices(self) -> list[str]: ...
    @property
    def default_device(self) -> str: ...
    def stats(self, device: Optional[str] = None) -> dict:
        """MemoryStats's fields: all devices together, or one device."""
    def pressure(self, device: str) -> str:
        """"low", "medium", "high" or "critical"."""
    def on_pressure_change(self, callback: Callable[[str, str, str], Any]) -> int:
        """callback(device, previous, current) on every level change, with the GIL held. Its exceptions go to
        sys.unraisablehook (the allocation that caused the change goes on). Returns an id."""
    def remove_pressure_callback(self, id: int) -> bool: ...
    def leak_report(self) -> str: ...
    def trim(self) -> int:
        """Every pool gives its cached memory back; the bytes released."""
    def create_named(
        self, name: str, nbytes: int, mode: str = "pooled", device: Optional[str] = None
    ) -> NamedBuffer:
        """A buffer kept by the manager under ``name`` until freed. InvalidArgument for a taken or empty name,
        nbytes <= 0, an unknown mode or device; OutOfMemory when the device is full."""
    def named(self, name: str) -> NamedBuffer:
        """The named buffer; InvalidArgument naming an unknown name."""
    def free_named(self, name: str) -> None: ...
    def has_named(self, name: str) -> bool: ...
    def named_bytes(self) -> int: ...

def info_json(simulated: Sequence[str] = ...) -> str: ...
def replay_json(
    path: str,
    stacks: Sequence[str],
    device: str,
    repeat: int,
    progress: Optional[Callable[[str, float], None]],
    streams: int = 1,
) -> str: ...
