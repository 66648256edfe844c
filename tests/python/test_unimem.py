"""The Python package: info, zero-copy views, device round trips, DLPack device types, bad input, threads."""

import ctypes
import faulthandler
import os
import pathlib
import subprocess
import sys
import threading

import numpy as np
import pytest

import unimem

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def manager():
    return unimem.MemoryManager(simulated=["64MiB:backed"])


def backend(document, name):
    return next(b for b in document["backends"] if b["name"] == name)


def test_info_lists_host_two_pocl_devices_and_cuda_without_a_device():
    document = unimem.info()
    assert backend(document, "host")["device_count"] == 1
    opencl = backend(document, "opencl")
    assert [d["id"] for d in opencl["devices"]] == ["opencl:0", "opencl:1"]
    cuda = backend(document, "cuda")
    assert cuda["device_count"] == 0
    assert cuda["available"] is False and cuda["detail"]


def test_info_matches_the_cli_json():
    cli = ROOT / "build" / "bin" / "unimem"
    if not cli.exists():
        pytest.skip(f"SKIPPED: no CLI at {cli} to compare with (build the Release tree first)")
    from_cli = __import__("json").loads(subprocess.check_output([str(cli), "info", "--json"]))
    from_python = unimem.info()
    for document in (from_cli, from_python):
        for entry in document["backends"]:
            for device in entry["devices"]:
                device.pop("free_bytes", None)  # read at two different moments
    assert from_cli == from_python


def test_exceptions_derive_from_the_natural_builtins():
    assert issubclass(unimem.OutOfMemory, unimem.Error) and issubclass(unimem.OutOfMemory, MemoryError)
    assert issubclass(unimem.InvalidArgument, ValueError)
    assert issubclass(unimem.TypeMismatch, TypeError)
    assert issubclass(unimem.NotSupported, NotImplementedError)


def test_write_through_numpy_view_read_back_through_copy_to(manager):
    buffer = manager.allocate(((8, 4), "float32"), device="host")
    view = np.asarray(buffer)
    assert view.shape == (8, 4) and view.dtype == np.float32
    view[:] = np.arange(32, dtype=np.float32).reshape(8, 4)
    out = np.zeros(32, dtype=np.float32)
    buffer.copy_to(out)
    assert (out == np.arange(32, dtype=np.float32)).all()
    assert view.ctypes.data == buffer.address


def test_from_dlpack_shares_the_address(manager):
    buffer = manager.allocate(((16,), np.int64), device="host")
    array = np.from_dlpack(buffer)
    assert array.ctypes.data == buffer.address
    array[3] = 42
    assert ctypes.c_int64.from_address(buffer.address + 3 * 8).value == 42
    assert buffer.__dlpack_device__() == (1, 0)


def test_buffer_outlives_manager_reference_while_numpy_holds_it():
    manager = unimem.MemoryManager()
    references = sys.getrefcount(manager)
    view = np.asarray(manager.allocate(1 << 20, device="host"))
    dl_view = np.from_dlpack(manager.allocate(1 << 20, device="host"))
    # The views hold their allocations (and through them the C++ manager), not the Python object, so this
    # `del` deallocates the MemoryManager object: what follows touches memory only the views keep.
    assert sys.getrefcount(manager) == references
    del manager
    view[:] = 7
    dl_view[:] = 9
    assert int(view.sum()) == 7 << 20 and int(dl_view.sum()) == 9 << 20


def test_the_last_numpy_view_frees_the_memory():
    manager = unimem.MemoryManager()
    view = np.asarray(manager.allocate(4096, device="host"))
    dl_view = np.from_dlpack(manager.allocate(4096, device="host"))
    view[:] = 7
    dl_view[:] = 9
    assert manager.stats("host")["in_use_bytes"] >= 8192
    del view
    assert manager.stats("host")["in_use_bytes"] >= 4096
    del dl_view
    assert manager.stats("host")["in_use_bytes"] == 0


@pytest.mark.parametrize("device", ["opencl:0", "opencl:1", "sim:0"])
def test_round_trip_through_device_memory(manager, device):
    buffer = manager.allocate(((1000,), "float64"), device=device)
    assert buffer.device == device and buffer.kind == "device"
    source = np.random.default_rng(1).random(1000)
    buffer.copy_from(source)
    back = np.zeros_like(source)
    buffer.copy_to(back)
    assert (back == source).all()


def test_opencl_memory_is_not_claimed_cpu(manager):
    buffer = manager.allocate(64, device="opencl:1")
    assert buffer.__dlpack_device__() == (4, 1)  # kDLOpenCL
    with pytest.raises(unimem.NotSupported, match="not host-visible"):
        buffer.__dlpack__()
    with pytest.raises(unimem.NotSupported):
        np.asarray(buffer)


@pytest.mark.parametrize("size", [0, -1, -4096])
def test_bad_sizes(manager, size):
    with pytest.raises(unimem.InvalidArgument, match=str(size)):
        manager.allocate(size)
    with pytest.raises(unimem.InvalidArgument, match=str(size)):
        manager.allocate(((4, size), "float32"))


def test_dtype_spellings(manager):
    for dtype in ("float32", np.float32, np.dtype("float32"), np.dtype("f4")):
        buffer = manager.allocate(((2, 3), dtype), device="host")
        assert buffer.nbytes == 24, dtype
        assert np.asarray(buffer).dtype == np.float32


def test_shapes_whose_size_overflows(manager):
    with pytest.raises(unimem.InvalidArgument, match="overflow"):
        manager.allocate(((2**40, 2**40, 2**40), "float32"), device="host")
    with pytest.raises(unimem.InvalidArgument, match="overflow"):
        manager.allocate(((2**62, 4), "float64"), device="host")


def test_stats_have_every_memory_stats_field(manager):
    stats = manager.stats()
    assert set(stats) == {"total_allocated_bytes", "in_use_bytes", "pooled_bytes", "peak_bytes", "cache_hits",
                          "cache_misses", "fallbacks", "active_buffers", "allocation_count", "free_count",
                          "upstream_allocations", "upstream_deallocations"}
    assert all(isinstance(value, int) for value in stats.values())


def test_unknown_dtype_mode_and_device(manager):
    with pytest.raises(unimem.InvalidArgument, match="complex7"):
        manager.allocate((4, "complex7"))
    with pytest.raises(unimem.InvalidArgument, match="sideways"):
        manager.allocate(4, mode="sideways")
    with pytest.raises(unimem.InvalidArgument, match="gpu:0"):
        manager.allocate(4, device="gpu:0")
    with pytest.raises(unimem.InvalidArgument, match="opencl:x"):
        manager.allocate(4, device="opencl:x")


def test_non_contiguous_and_too_small_sources(manager):
    buffer = manager.allocate(64, device="opencl:0")
    with pytest.raises(unimem.InvalidArgument, match="not a C-contiguous"):
        buffer.copy_from(np.zeros(128, dtype=np.uint8)[::2])
    with pytest.raises(unimem.InvalidArgument, match="holds 8 bytes, the buffer 64"):
        buffer.copy_from(bytearray(8))
    with pytest.raises(unimem.InvalidArgument, match="writable"):
        buffer.copy_to(bytes(64))
    with pytest.raises(unimem.TypeMismatch, match="'int'"):
        buffer.copy_from(5)


def test_pressure_callback_errors_are_reported(monkeypatch):
    manager = unimem.MemoryManager(config="fallback=off", simulated=["8MiB:backed"])
    with pytest.raises(unimem.OutOfMemory, match="sim:0"):
        manager.allocate(64 * 1024 * 1024, device="sim:0")
    reported = []
    monkeypatch.setattr(sys, "unraisablehook", lambda hook_args: reported.append(hook_args.exc_value))
    changes = []
    manager.on_pressure_change(lambda device, previous, current: changes.append((device, previous, current)))
    manager.on_pressure_change(lambda *args: 1 / 0)
    held = manager.allocate(3 * 1024 * 1024, device="sim:0")
    assert changes and changes[0][0] == "sim:0" and changes[0][1] == "low"
    assert manager.pressure("sim:0") != "low"
    assert any(isinstance(e, ZeroDivisionError) for e in reported)
    del held


def test_named_buffers_stats_leaks_and_trim(manager):
    manager.create_named("kv_cache", 1 << 20)
    assert manager.has_named("kv_cache") and manager.named_bytes() >= 1 << 20
    assert "kv_cache" in manager.leak_report()
    manager.free_named("kv_cache")
    assert not manager.has_named("kv_cache")
    buffer = manager.allocate(1 << 20)
    del buffer
    stats = manager.stats()
    assert stats["in_use_bytes"] == 0 and stats["allocation_count"] >= 2 and stats["free_count"] >= 2
    assert manager.trim() > 0


def test_replay_matches_cli(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text(
        "Thread,Time,Action,Pointer,Size,Stream\n"
        "1,0.1,allocate,0x1000,1024,0x0\n"
        "1,0.2,allocate,0x2000,4096,0x0\n"
        "1,0.3,free,0x1000,1024,0x0\n"
        "1,0.4,free,0x2000,4096,0x0\n"
    )
    document = unimem.replay(trace, stacks=["hybrid", "coalescing"], device="sim:1GiB", repeat=1)
    assert [r["resource"] for r in document["results"]] == ["hybrid", "coalescing"]
    both = unimem.replay([trace, trace], stacks=["hybrid"], repeat=1)
    assert len(both) == 2
    with pytest.raises(unimem.InvalidArgument, match="nosuchpool"):
        unimem.replay(trace, stacks=["nosuchpool"])


def test_eight_threads_allocate_and_free(manager):
    faulthandler.dump_traceback_later(60, exit=True)
    try:
        errors = []

        def work(seed):
            try:
                rng = np.random.default_rng(seed)
                data = np.arange(256, dtype=np.uint8)
                for _ in range(200):
                    device = ["host", "sim:0", "opencl:0"][int(rng.integers(3))]
                    buffer = manager.allocate(int(rng.integers(1, 65536)), device=device)
                    small = manager.allocate(256, device=device)
                    small.copy_from(data)
                    back = np.zeros(256, np.uint8)
                    small.copy_to(back)
                    assert (back == data).all()
                    del buffer, small
            except Exception as e:  # noqa: BLE001 - collected and re-raised on the main thread
                errors.append(e)

        threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        assert manager.stats()["in_use_bytes"] == 0
    finally:
        faulthandler.cancel_dump_traceback_later()


def test_memoryview_is_zero_copy_and_writable(manager):
    buffer = manager.allocate(((3, 5), "int32"), device="host")
    view = memoryview(buffer)
    assert (view.format, view.shape, view.strides, view.itemsize) == ("i", (3, 5), (20, 4), 4)
    assert not view.readonly and view.c_contiguous and view.nbytes == buffer.nbytes
    view[2, 4] = 123456
    assert ctypes.c_int32.from_address(buffer.address + (2 * 5 + 4) * 4).value == 123456
    assert np.asarray(buffer)[2, 4] == 123456
    view[0, 0] = 0
    raw = view.cast("B")  # the same memory as bytes
    raw[0] = 9
    assert np.asarray(buffer)[0, 0] == int.from_bytes(b"\x09\x00\x00\x00", sys.byteorder)
    assert np.frombuffer(buffer, dtype=np.int32).ctypes.data == buffer.address
    assert view.cast("B").nbytes == 60


def test_buffer_protocol_refuses_a_fortran_order_request(manager):
    # The memory is row-major; a consumer asking for column-major must get BufferError, not the wrong layout.
    pythonapi = ctypes.pythonapi
    pythonapi.PyObject_GetBuffer.argtypes = [ctypes.py_object, ctypes.c_void_p, ctypes.c_int]
    pythonapi.PyObject_GetBuffer.restype = ctypes.c_int
    view = ctypes.create_string_buffer(128)  # larger than a Py_buffer
    PyBUF_F_CONTIGUOUS = 0x0040 | 0x0008 | 0x0010  # F_CONTIGUOUS includes STRIDES, which includes ND
    with pytest.raises(BufferError, match="Fortran"):
        pythonapi.PyObject_GetBuffer(manager.allocate(((3, 4), "uint8"), device="host"), view, PyBUF_F_CONTIGUOUS)


def test_memoryview_keeps_the_memory_until_released():
    manager = unimem.MemoryManager()
    view = memoryview(manager.allocate(4096, device="host"))
    view[:] = b"\x05" * 4096
    assert manager.stats("host")["in_use_bytes"] >= 4096
    assert bytes(view[:3]) == b"\x05\x05\x05"
    view.release()
    assert manager.stats("host")["in_use_bytes"] == 0


def test_buffer_protocol_of_device_memory_is_refused(manager):
    buffer = manager.allocate(64, device="sim:0")
    with pytest.raises(unimem.NotSupported, match="not host-visible"):
        memoryview(buffer)
    host = manager.allocate(64, device="host")
    memoryview(host)[:] = bytes(range(64))
    buffer.copy_from(host)  # a host-visible Buffer is a source like any buffer-protocol object
    back = bytearray(64)
    buffer.copy_to(back)
    assert back == bytes(range(64))


def test_named_buffer_copies_growth_and_free(manager):
    named = manager.create_named("kv_cache", 64, device="sim:0")
    assert (named.name, named.nbytes, named.device, named.kind) == ("kv_cache", 64, "sim:0", "device")
    named.copy_from(bytes(range(40)))  # from the first byte; the rest stays as it was
    back = bytearray(40)
    manager.named("kv_cache").copy_to(back)
    assert back == bytes(range(40))
    named.ensure_capacity(1000)
    assert named.nbytes >= 1000
    grown = np.zeros(40, dtype=np.uint8)
    named.copy_to(grown)
    assert bytes(grown) == bytes(range(40)), "growth keeps the contents"
    with pytest.raises(unimem.InvalidArgument, match=str(named.nbytes)):
        named.copy_from(bytes(named.nbytes + 1))
    named.free()
    assert not manager.has_named("kv_cache") and "freed" in repr(named)
    with pytest.raises(unimem.InvalidArgument, match="kv_cache"):
        named.copy_to(back)


def test_named_buffer_bad_input(manager):
    with pytest.raises(unimem.InvalidArgument, match="-5"):
        manager.create_named("a", -5)
    with pytest.raises(unimem.InvalidArgument, match="sideways"):
        manager.create_named("a", 8, mode="sideways")
    with pytest.raises(unimem.InvalidArgument, match="'missing'"):
        manager.named("missing")
    named = manager.create_named("a", 8, device="host")
    with pytest.raises(unimem.InvalidArgument, match="'a'"):
        manager.create_named("a", 8)
    with pytest.raises(unimem.InvalidArgument, match="0 bytes"):
        named.copy_from(b"")
    with pytest.raises(unimem.InvalidArgument, match="0"):
        named.ensure_capacity(0)
    with pytest.raises(unimem.InvalidArgument, match="not a C-contiguous"):
        named.copy_from(np.zeros(16, dtype=np.uint8)[::2])
    named.free()
