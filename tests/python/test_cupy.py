"""CuPy: unimem.cupy.enable() routes CuPy's device and pinned allocations to the allocator library. Needs CuPy
and a GPU; SKIPPED with the reason otherwise (the library's C ABI is tested in test_cuda_allocator.py)."""

import pytest

import unimem

cupy = pytest.importorskip("cupy", reason="SKIPPED: cupy is not installed")


def test_device_and_pinned_allocations_go_through_unimem():
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError as e:
        pytest.skip(f"SKIPPED: CuPy finds no CUDA device ({e})")
    if count == 0:
        pytest.skip("SKIPPED: CuPy finds no CUDA device")
    import unimem.cupy

    unimem.cupy.enable()
    try:
        before = unimem.cupy.stats()["allocations"]
        array = cupy.arange(1 << 20, dtype=cupy.float32)
        assert unimem.cupy.stats()["live_bytes"] >= array.nbytes
        assert float(array.sum()) == float((1 << 20) * ((1 << 20) - 1) / 2)
        pinned = cupy.cuda.alloc_pinned_memory(4096)
        assert memoryview(pinned).nbytes == 4096
        del array, pinned
        cupy.cuda.Device().synchronize()
        stats = unimem.cupy.stats()
        assert stats["allocations"] >= before + 2 and stats["live_bytes"] == 0
    finally:
        unimem.cupy.disable()
