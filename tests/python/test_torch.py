"""PyTorch: torch.from_dlpack of host-visible buffers is zero-copy, and unimem.torch installs the allocator
library as PyTorch's CUDA allocator. PyPI's torch wheel for Linux pulls about 3 GB of CUDA libraries, so
./scripts/test installs it only when asked (UNIMEM_TEST_TORCH=1); without it these tests say SKIPPED."""

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
    assert tensor.data_ptr() == buffer.address
    tensor[1, 2] = 42.0
    assert np.asarray(buffer)[1, 2] == 42.0
    np.asarray(buffer)[3, 7] = -1.5
    assert tensor[3, 7].item() == -1.5


def test_tensor_keeps_the_memory_until_it_goes():
    manager = unimem.MemoryManager()
    stats = manager.stats
    tensor = torch.from_dlpack(manager.allocate(((1024,), "int64"), device="host"))
    del manager
    tensor.fill_(7)
    assert stats("host")["in_use_bytes"] >= 8192
    assert int(tensor.sum()) == 7 * 1024
    del tensor
    assert stats("host")["in_use_bytes"] == 0


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
