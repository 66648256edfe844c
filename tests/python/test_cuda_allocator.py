"""The allocator library's C ABI (what PyTorch's CUDAPluggableAllocator and unimem.cupy call), through ctypes,
against its simulated build: two backed simulated devices whose memory the host can read and write."""

import ctypes
import json
import threading

import pytest

from unimem import _allocator

SIMULATED = True


@pytest.fixture
def lib():
    library = _allocator.library(SIMULATED)
    assert library.unimem_allocator_backend() == b"simulated"
    before = _allocator.stats(SIMULATED)
    assert before["live_allocations"] == 0 and before["live_bytes"] == 0, "a test before this one leaked"
    yield library
    after = _allocator.stats(SIMULATED)
    assert after["live_allocations"] == 0 and after["live_bytes"] == 0
    for device in after["devices"].values():
        assert device["in_use_bytes"] == 0


def error():
    return _allocator.last_error(SIMULATED)


def stream(value):
    """A stand-in for a cudaStream_t: the simulated devices' streams are synchronous and take any handle."""
    return ctypes.c_void_p(value)


def test_allocate_write_read_free(lib):
    size = 3 * 4096 + 5
    ptr = lib.unimem_allocator_malloc(size, 0, stream(0))
    assert ptr, error()
    assert error() == ""
    pattern = bytes((i * 7) % 256 for i in range(size))
    ctypes.memmove(ptr, pattern, size)
    assert ctypes.string_at(ptr, size) == pattern
    stats = _allocator.stats(SIMULATED)
    assert stats["live_allocations"] == 1 and stats["live_bytes"] == size
    assert stats["devices"]["sim:0"]["in_use_bytes"] >= size
    assert stats["devices"]["sim:1"]["in_use_bytes"] == 0
    lib.unimem_allocator_free(ptr, size, 0, stream(0))
    assert error() == ""
    stats = _allocator.stats(SIMULATED)
    assert stats["frees"] >= 1 and stats["peak_bytes"] >= size


def test_pointers_of_live_allocations_do_not_overlap(lib):
    sizes = [1, 255, 256, 4096, 1 << 20, 77]
    ptrs = [lib.unimem_allocator_malloc(size, 1, stream(0)) for size in sizes]
    assert all(ptrs), error()
    spans = sorted(zip(ptrs, sizes))
    for (start, size), (next_start, _) in zip(spans, spans[1:]):
        assert start + size <= next_start
    for index, (ptr, size) in enumerate(zip(ptrs, sizes)):
        ctypes.memset(ptr, index + 1, size)
    for index, (ptr, size) in enumerate(zip(ptrs, sizes)):
        assert ctypes.string_at(ptr, size) == bytes([index + 1]) * size
        lib.unimem_allocator_free(ptr, size, 1, stream(0))
        assert error() == ""


@pytest.mark.parametrize("size", [0, -1, -4096])
def test_zero_or_negative_size_is_reported(lib, size):
    assert lib.unimem_allocator_malloc(size, 0, stream(0)) is None
    assert f"size {size}" in error()


def test_unknown_device_and_too_large_request(lib):
    assert lib.unimem_allocator_malloc(64, 7, stream(0)) is None
    assert "sim:7" in error()
    assert lib.unimem_allocator_malloc(4 << 30, 0, stream(0)) is None
    assert "out of memory" in error() and str(4 << 30) in error()


def test_double_free_foreign_pointer_and_size_mismatch(lib):
    ptr = lib.unimem_allocator_malloc(1000, 0, stream(0))
    assert ptr, error()
    rejected = _allocator.stats(SIMULATED)["rejected_frees"]
    lib.unimem_allocator_free(ptr, 999, 0, stream(0))
    assert "size 999" in error() and "size 1000" in error()
    lib.unimem_allocator_free(ptr, 1000, 1, stream(0))
    assert "device 1" in error()
    foreign = ctypes.create_string_buffer(64)
    lib.unimem_allocator_free(ctypes.addressof(foreign), 64, 0, stream(0))
    assert hex(ctypes.addressof(foreign)) in error() and "not allocated here" in error()
    assert _allocator.stats(SIMULATED)["live_allocations"] == 1, "a rejected free changed nothing"
    lib.unimem_allocator_free(ptr, 1000, 0, stream(0))
    assert error() == ""
    lib.unimem_allocator_free(ptr, 1000, 0, stream(0))
    assert hex(ptr) in error() and "freed already" in error()
    assert _allocator.stats(SIMULATED)["rejected_frees"] == rejected + 4


def test_empty_tensor_free_is_a_no_op(lib):
    # What PyTorch frees for a zero-byte tensor: a null pointer of size 0.
    lib.unimem_allocator_free(None, 0, 0, stream(0))
    assert error() == ""
    lib.unimem_allocator_free(None, 16, 0, stream(0))
    assert "0x0" in error()


def test_pinned_memory_is_reported_unsupported_on_simulated_devices(lib):
    assert lib.unimem_allocator_malloc_pinned(64, 0) is None
    assert "pinned" in error() and "sim:0" in error()


def test_several_streams_and_threads(lib):
    # Each thread allocates and frees on streams of its own; memory freed on one stream is reused by others.
    errors = []
    streams_before = _allocator.stats(SIMULATED)["wrapped_streams"]

    def work(index):
        try:
            for round_ in range(50):
                handle = stream(0x1000 * (index + 1) + round_ % 3)
                size = 512 + 97 * round_
                ptr = lib.unimem_allocator_malloc(size, index % 2, handle)
                if not ptr:
                    errors.append(error())
                    return
                ctypes.memset(ptr, index, size)
                if ctypes.string_at(ptr, size) != bytes([index]) * size:
                    errors.append(f"thread {index}: memory changed under it")
                lib.unimem_allocator_free(ptr, size, index % 2, stream(0x1000 * (index + 1) + (round_ + 1) % 3))
                if error():
                    errors.append(error())
        except Exception as e:  # noqa: BLE001 - collected and checked on the main thread
            errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    stats = _allocator.stats(SIMULATED)
    assert stats["wrapped_streams"] == streams_before + 6 * 3, "one Stream per (device, native handle)"


def test_stats_are_json_with_every_served_device(lib):
    document = json.loads(lib.unimem_allocator_stats_json())
    assert set(document["devices"]) == {"sim:0", "sim:1"}
    assert {"allocations", "frees", "rejected_frees", "live_allocations", "live_bytes", "peak_bytes"} <= set(document)


def test_the_cuda_build_reports_no_device_without_a_gpu():
    import unimem

    cuda = next(b for b in unimem.info()["backends"] if b["name"] == "cuda")
    if cuda["device_count"] > 0:
        pytest.skip("SKIPPED: a CUDA device is present; this test is about machines without one")
    library = _allocator.library()
    assert library.unimem_allocator_backend() == b"cuda"
    assert library.unimem_allocator_malloc(64, 0, None) is None
    assert "cuda:0" in _allocator.last_error()
