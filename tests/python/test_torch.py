"""PyTorch: torch.from_dlpack of host-visible buffers is zero-copy and keeps the memory until the last view
goes (device memory is refused, never copied), and unimem.torch installs the allocator library as PyTorch's
CUDA allocator. PyPI's torch wheel for Linux pulls about 3 GB of CUDA libraries, so ./scripts/test installs
it only when asked (UNIMEM_TEST_TORCH=1); without it these tests say SKIPPED."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import unimem

try:
    import torch
except ImportError:
    torch = None

pytestmark = pytest.mark.skipif(
    torch is None,
    reason="SKIPPED: torch is not installed (UNIMEM_TEST_TORCH=1 ./scripts/test installs it; about 3 GB from PyPI)",
)


def requires_cuda():
    if not torch.cuda.is_available():
        pytest.skip("SKIPPED: PyTorch sees no CUDA device (torch.cuda.is_available() is False)")


def test_from_dlpack_shares_the_address_both_ways():
    manager = unimem.MemoryManager()
    buffer = manager.allocate(((4, 8), "float32"), device="host")
    tensor = torch.from_dlpack(buffer)
    assert tensor.shape == (4, 8) and tensor.dtype == torch.float32 and tensor.device.type == "cpu"
    assert tensor.stride() == (8, 1)
    assert tensor.data_ptr() == buffer.address
    tensor[1, 2] = 42.0
    assert np.asarray(buffer)[1, 2] == 42.0
    np.asarray(buffer)[3, 7] = -1.5
    assert tensor[3, 7].item() == -1.5


# Every dtype MemoryManager.allocate takes, spelt as PyTorch spells it.
DTYPES = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64",
]


@pytest.mark.parametrize("name", DTYPES)
def test_every_dtype_arrives_as_the_same_torch_dtype_in_place(name):
    manager = unimem.MemoryManager()
    buffer = manager.allocate(((3, 5), name), device="host")
    tensor = torch.from_dlpack(buffer)
    assert tensor.dtype == getattr(torch, name) and tensor.shape == (3, 5)
    assert tensor.data_ptr() == buffer.address
    assert tensor.element_size() * tensor.numel() == buffer.nbytes


@pytest.mark.parametrize("device", ["opencl:0", "sim:0"])
def test_device_memory_is_refused_not_copied(device):
    manager = unimem.MemoryManager(simulated=["64MiB:backed"])
    buffer = manager.allocate(((16,), "float32"), device=device)
    with pytest.raises(unimem.NotSupported, match="not host-visible"):
        torch.from_dlpack(buffer)


def test_the_last_view_frees_the_memory():
    manager = unimem.MemoryManager()
    buffer = manager.allocate(((1024,), "int64"), device="host")
    first = torch.from_dlpack(buffer)
    second = torch.from_dlpack(buffer)[1::2]  # a strided view of a second import
    assert first.data_ptr() == buffer.address and second.data_ptr() == buffer.address + 8
    del buffer
    first.fill_(7)
    assert int(second.sum()) == 7 * 512
    del first
    assert manager.stats("host")["in_use_bytes"] >= 8192
    del second
    assert manager.stats("host")["in_use_bytes"] == 0


def test_tensor_outlives_the_managers_python_object():
    manager = unimem.MemoryManager()
    references = sys.getrefcount(manager)
    tensor = torch.from_dlpack(manager.allocate(((1 << 20,), "int64"), device="host"))
    # The tensor holds the allocation (and through it the C++ manager), not the Python object, so this
    # `del` deallocates the MemoryManager object: what follows reads memory only the tensor keeps.
    assert sys.getrefcount(manager) == references
    del manager
    tensor.copy_(torch.arange(1 << 20))
    assert int(tensor[-1]) == (1 << 20) - 1 and int(tensor.sum()) == (1 << 20) * ((1 << 20) - 1) // 2


def test_enable_without_cuda_says_why():
    if torch.cuda.is_available():
        pytest.skip("SKIPPED: a CUDA device is present; test_cuda_allocator_hookup covers it")
    with pytest.raises(unimem.NotSupported, match="no CUDA device"):
        unimem.torch.enable()
    assert not unimem.torch.enabled()


def test_pluggable_allocator_finds_the_library_symbols():
    # Construction loads the library and resolves both functions; it needs no device and installs nothing.
    from unimem import _allocator

    allocator = torch.cuda.memory.CUDAPluggableAllocator(
        _allocator.library_path(), "unimem_allocator_malloc", "unimem_allocator_free"
    )
    assert allocator.allocator() is not None
    assert not torch.cuda.is_initialized()


def run_fresh(code):
    """Runs `code` in a new interpreter: PyTorch takes a new allocator only before it initialises CUDA."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_cuda_allocator_hookup():
    requires_cuda()
    output = run_fresh(
        """
        import torch, unimem.torch
        unimem.torch.enable(device=0)
        x = torch.ones(1 << 20, device="cuda")
        s = torch.cuda.Stream()
        with torch.cuda.stream(s):
            y = x * 2
        s.synchronize()
        live = unimem.torch.stats()["live_bytes"]
        assert live >= 2 * 4 * (1 << 20), live
        assert float(y.sum()) == 2 * (1 << 20)
        del x, y
        torch.cuda.synchronize()
        stats = unimem.torch.stats()
        assert stats["live_bytes"] == 0, stats
        assert stats["wrapped_streams"] >= 2, stats
        print("ok", stats["allocations"])
        """
    )
    assert output.startswith("ok")


def test_enable_after_cuda_initialised_is_refused():
    requires_cuda()
    output = run_fresh(
        """
        import torch, unimem, unimem.torch
        torch.cuda.init()
        try:
            unimem.torch.enable()
        except unimem.Error as e:
            print(e)
        """
    )
    assert "initialised CUDA already" in output
