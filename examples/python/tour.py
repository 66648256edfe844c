"""The README's Python tour; tests/python/test_tour.py runs it."""

import numpy as np

import unimem

print(sorted(backend["name"] for backend in unimem.info()["backends"]))

manager = unimem.MemoryManager(simulated=["256MiB:backed"])
host = manager.allocate(((1024,), "float32"), device="host")
view = np.asarray(host)  # zero-copy: host memory is a NumPy array
view[:] = np.arange(1024, dtype=np.float32)
memoryview(host)[1023] = -1.0  # the buffer protocol: the same memory, writable
assert view[1023] == -1.0

device = manager.allocate(host.nbytes, device="opencl:0")  # a cl_mem on the first PoCL device
device.copy_from(view)
back = np.zeros(1024, dtype=np.float32)
device.copy_to(back)
assert (back == view).all()
print(device.device, device.kind, device.__dlpack_device__())  # (4, 0): kDLOpenCL

cache = manager.create_named("kv_cache", 4096, device="sim:0")  # kept by the manager under its name
cache.copy_from(view[:16])  # into its first bytes
cache.ensure_capacity(8192)  # grows, keeps the contents
first = np.zeros(16, dtype=np.float32)
manager.named("kv_cache").copy_to(first)
assert (first == view[:16]).all()
print(cache.nbytes)
cache.free()

try:
    manager.allocate(0)
except ValueError as error:  # unimem.InvalidArgument is a ValueError
    print(type(error).__name__, error)

del host, view, device
print(manager.stats()["in_use_bytes"])  # 0: the memory is back in its pool
