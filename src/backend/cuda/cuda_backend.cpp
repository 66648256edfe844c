#include "unimem/backend/cuda_backend.hpp"

// cudaTypedefs.h (and the cuda.h it includes) for the driver's types, enums and function pointer types only:
// the driver's functions are reached at run time through the runtime, so libcuda is never linked.
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "unimem/backend/host_backend.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"

namespace unimem {

namespace {

// What a failed allocation call was asked for, so that cudaErrorMemoryAllocation becomes OutOfMemory.
struct AllocationRequest {
  int device;
  MemoryKind kind;
  std::size_t bytes;
};

// Throws for any status but cudaSuccess: OutOfMemory for a failed allocation, BackendError otherwise.
void check(cudaError_t status, std::string_view call, const AllocationRequest* request = nullptr);

// Makes `device` current for the calling thread and restores the thread's previous device on exit: the
// runtime allocates, copies and creates streams on the current device, and callers may rely on theirs staying
// put.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) : device_(device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device_) check(cudaSetDevice(device_), "cudaSetDevice");
  }
  ~DeviceGuard() {
    if (previous_ != device_) (void)cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;
  DeviceGuard(DeviceGuard&&) = delete;
  DeviceGuard& operator=(DeviceGuard&&) = delete;

 private:
  int device_;
  int previous_ = 0;
};

MemoryInfo device_memory(int device) {
  const DeviceGuard guard(device);
  MemoryInfo info;
  check(cudaMemGetInfo(&info.free_bytes, &info.total_bytes), "cudaMemGetInfo");
  return info;
}

std::string describe(cudaError_t status) {
  return std::string(cudaGetErrorName(status)) + " (" + std::to_string(static_cast<int>(status)) +
         "): " + cudaGetErrorString(status);
}

void check(cudaError_t status, std::string_view call, const AllocationRequest* request) {
  if (status == cudaSuccess) return;
  // The runtime also keeps the error as the thread's last error; clear it so that it cannot resurface later.
  (void)cudaGetLastError();
  if (status == cudaErrorMemoryAllocation && request != nullptr) {
    // Pinned memory comes out of host RAM, so that is the memory worth reporting for it.
    const MemoryInfo memory =
        request->kind == MemoryKind::PinnedHost ? host_memory_info() : device_memory(request->device);
    throw OutOfMemory(request->bytes, to_string(DeviceId{BackendKind::Cuda, request->device}),
                      memory.free_bytes, memory.total_bytes,
                      std::string(call) + " returned " + describe(status));
  }
  throw BackendError("cuda", status, cudaGetErrorName(status), std::string(call));
}

// For paths that must not throw (frees, destructors): a failure becomes one line on stderr.
template <typename Body>
void without_throwing(const char* what, Body&& body) noexcept {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unimem: %s: %s\n", what, e.what());
  }
}

// cudaErrorNotReady is the runtime's "not yet", not a failure (and not recorded as the last error).
bool completed(cudaError_t status, std::string_view call) {
  if (status == cudaErrorNotReady) return false;
  check(status, call);
  return true;
}

std::string version(int encoded) {
  if (encoded == 0) return "none";
  return std::to_string(encoded / 1000) + "." + std::to_string(encoded % 1000 / 10);
}

class CudaStream final : public Stream {
 public:
  CudaStream(const Backend& backend, int device) : Stream(backend, DeviceId{BackendKind::Cuda, device}) {
    const DeviceGuard guard(device);
    // Non-blocking: unimem's streams must not serialize with the legacy default stream of unrelated code.
    check(cudaStreamCreateWithFlags(&handle_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  }
  // A queue another library created (Backend::wrap_native_stream): used, never destroyed.
  CudaStream(const Backend& backend, int device, cudaStream_t foreign) noexcept
      : Stream(backend, DeviceId{BackendKind::Cuda, device}), handle_(foreign), owned_(false) {}
  ~CudaStream() override {
    if (!owned_) return;
    without_throwing("~CudaStream", [this] { check(cudaStreamDestroy(handle_), "cudaStreamDestroy"); });
  }
  CudaStream(const CudaStream&) = delete;
  CudaStream& operator=(const CudaStream&) = delete;
  CudaStream(CudaStream&&) = delete;
  CudaStream& operator=(CudaStream&&) = delete;

  [[nodiscard]] cudaStream_t handle() const noexcept { return handle_; }

 private:
  void do_synchronize() override { check(cudaStreamSynchronize(handle_), "cudaStreamSynchronize"); }
  bool do_query() override { return completed(cudaStreamQuery(handle_), "cudaStreamQuery"); }

  cudaStream_t handle_ = nullptr;
  bool owned_ = true;
};

cudaStream_t native_stream(Stream& stream) {
  auto* cuda = dynamic_cast<CudaStream*>(&stream);
  if (cuda == nullptr) {
    throw InvalidArgument("cuda: the stream of " + to_string(stream.device()) + " is not a CUDA stream");
  }
  return cuda->handle();
}

class CudaEvent final : public Event {
 public:
  CudaEvent(const Backend& backend, int device) : Event(backend, DeviceId{BackendKind::Cuda, device}) {
    const DeviceGuard guard(device);
    // Default flags keep timing enabled, which elapsed_ms_since needs.
    check(cudaEventCreate(&handle_), "cudaEventCreate");
  }
  ~CudaEvent() override {
    without_throwing("~CudaEvent", [this] { check(cudaEventDestroy(handle_), "cudaEventDestroy"); });
  }
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  CudaEvent(CudaEvent&&) = delete;
  CudaEvent& operator=(CudaEvent&&) = delete;

 private:
  // Streams and events carry their device's context, so these calls need no DeviceGuard.
  void do_record(Stream& stream) override {
    check(cudaEventRecord(handle_, native_stream(stream)), "cudaEventRecord");
  }
  bool do_query() override { return completed(cudaEventQuery(handle_), "cudaEventQuery"); }
  void do_synchronize() override { check(cudaEventSynchronize(handle_), "cudaEventSynchronize"); }
  void do_make_wait(Stream& stream) override {
    check(cudaStreamWaitEvent(native_stream(stream), handle_, 0), "cudaStreamWaitEvent");
  }
  double do_elapsed_ms_since(Event& start) override {
    auto* earlier = dynamic_cast<CudaEvent*>(&start);
    if (earlier == nullptr) {
      throw InvalidArgument("cuda: elapsed_ms_since: the start event is not a CUDA event");
    }
    earlier->do_synchronize();
    do_synchronize();
    float ms = 0.0F;
    check(cudaEventElapsedTime(&ms, earlier->handle_, handle_), "cudaEventElapsedTime");
    return ms;
  }

  cudaEvent_t handle_ = nullptr;
};

// Memory the device does not map for us: ordinary host allocations, host views, other backends' host memory.
bool plain_host_memory(const Segment& segment, const Backend* self) {
  return segment.owner != self || segment.kind == MemoryKind::Host;
}

std::byte* address(const Segment& segment, const Backend* self) {
  // Another backend's native handle may not be an address (a cl_mem); its host_ptr is.
  return segment.owner == self ? static_cast<std::byte*>(segment.native) : segment.host_ptr;
}

// Runs `enqueue` on the stream, or on the legacy default stream and waits: cudaMemcpy and cudaMemset alone
// may return before the device has finished, and a call without a stream must be complete on return.
template <typename Enqueue>
void run_ordered(Stream* stream, int device, Enqueue&& enqueue) {
  const DeviceGuard guard(stream != nullptr ? stream->device().index : device);
  const cudaStream_t queue = stream != nullptr ? native_stream(*stream) : nullptr;
  enqueue(queue);
  if (stream == nullptr) check(cudaStreamSynchronize(queue), "cudaStreamSynchronize");
}

struct CudaDevice {
  DeviceInfo info;  // everything but the memory figures, which are read live
  bool stream_ordered_allocation = false;
};

// The driver's virtual memory functions. The binary links the static runtime and no libcuda, so that it
// starts without a driver; the runtime hands out the driver's entry points once it has found one.
struct DriverApi {
  PFN_cuGetErrorName_v6000 get_error_name = nullptr;
  PFN_cuDeviceGet_v2000 device_get = nullptr;
  PFN_cuDeviceGetAttribute_v2000 device_get_attribute = nullptr;
  PFN_cuMemGetAllocationGranularity_v10020 get_allocation_granularity = nullptr;
  PFN_cuMemAddressReserve_v10020 address_reserve = nullptr;
  PFN_cuMemAddressFree_v10020 address_free = nullptr;
  PFN_cuMemCreate_v10020 create = nullptr;
  PFN_cuMemRelease_v10020 release = nullptr;
  PFN_cuMemMap_v10020 map = nullptr;
  PFN_cuMemUnmap_v10020 unmap = nullptr;
  PFN_cuMemSetAccess_v10020 set_access = nullptr;
  bool resolved = false;  // every pointer above is set
};

// The driver API version whose signatures the PFN_* types above describe (all unchanged since 10.2).
constexpr unsigned int kDriverApiVersion = 12000;

template <typename Function>
bool resolve(const char* symbol, Function& function) {
  void* address = nullptr;
  cudaDriverEntryPointQueryResult found = cudaDriverEntryPointSymbolNotFound;
#if CUDART_VERSION >= 12050
  const cudaError_t status =
      cudaGetDriverEntryPointByVersion(symbol, &address, kDriverApiVersion, cudaEnableDefault, &found);
#else
  const cudaError_t status = cudaGetDriverEntryPoint(symbol, &address, cudaEnableDefault, &found);
#endif
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  if (found != cudaDriverEntryPointSuccess || address == nullptr) return false;
  function = reinterpret_cast<Function>(address);
  return true;
}

DriverApi resolve_driver_api() {
  DriverApi api;
  api.resolved = resolve("cuGetErrorName", api.get_error_name) && resolve("cuDeviceGet", api.device_get) &&
                 resolve("cuDeviceGetAttribute", api.device_get_attribute) &&
                 resolve("cuMemGetAllocationGranularity", api.get_allocation_granularity) &&
                 resolve("cuMemAddressReserve", api.address_reserve) &&
                 resolve("cuMemAddressFree", api.address_free) && resolve("cuMemCreate", api.create) &&
                 resolve("cuMemRelease", api.release) && resolve("cuMemMap", api.map) &&
                 resolve("cuMemUnmap", api.unmap) && resolve("cuMemSetAccess", api.set_access);
  return api;
}

// Device memory of `device` for cuMemCreate, and the granule it comes in.
CUmemAllocationProp pinned_on(int device) {
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = device;
  return prop;
}

// The granule of `device` where the driver offers virtual memory management on it, 0 otherwise.
std::size_t virtual_memory_granule(const DriverApi& api, int device) {
  if (!api.resolved) return 0;
  CUdevice handle = 0;
  int supported = 0;
  if (api.device_get(&handle, device) != CUDA_SUCCESS ||
      api.device_get_attribute(&supported, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, handle) !=
          CUDA_SUCCESS ||
      supported != 1) {
    return 0;
  }
  const CUmemAllocationProp prop = pinned_on(device);
  std::size_t granule = 0;
  if (api.get_allocation_granularity(&granule, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS)
    return 0;
  // Backend::map's contract: a power of two.
  return granule != 0 && (granule & (granule - 1)) == 0 ? granule : 0;
}

std::string driver_error_name(const DriverApi& api, CUresult status) {
  const char* name = nullptr;
  if (api.get_error_name != nullptr && api.get_error_name(status, &name) == CUDA_SUCCESS && name != nullptr) {
    return name;
  }
  return "CUresult " + std::to_string(static_cast<int>(status));
}

// Throws for any status but CUDA_SUCCESS: OutOfMemory naming `bytes` for CUDA_ERROR_OUT_OF_MEMORY,
// BackendError with the driver's name for the status otherwise.
void check_driver(const DriverApi& api, CUresult status, std::string_view call, int device,
                  std::size_t bytes) {
  if (status == CUDA_SUCCESS) return;
  const std::string what = std::string(call) + " on " + to_string(DeviceId{BackendKind::Cuda, device}) +
                           " returned " + driver_error_name(api, status);
  if (status == CUDA_ERROR_OUT_OF_MEMORY) {
    const MemoryInfo memory = device_memory(device);
    throw OutOfMemory(bytes, to_string(DeviceId{BackendKind::Cuda, device}), memory.free_bytes,
                      memory.total_bytes, what);
  }
  throw BackendError("cuda", status, driver_error_name(api, status), what);
}

CUdeviceptr device_address(const Segment& range, std::size_t offset) {
  return reinterpret_cast<CUdeviceptr>(range.native) + offset;
}

}  // namespace

struct CudaBackend::Impl {
  // Written by the constructor only and read-only afterwards, so it needs no lock; the CUDA runtime is
  // thread-safe, and the current device is per thread.
  BackendStatus status;
  std::vector<CudaDevice> devices;
  DriverApi driver;

  // The physical memory behind each mapped granule, by the granule's address: one handle per granule, so
  // that any granule can be unmapped alone.
  std::mutex granules_mutex;
  std::unordered_map<CUdeviceptr, CUmemGenericAllocationHandle> granules;
};

namespace {

CudaDevice discover(int device, int count, int driver, int runtime, const DriverApi& api) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  int pools = 0;
  check(cudaDeviceGetAttribute(&pools, cudaDevAttrMemoryPoolsSupported, device), "cudaDeviceGetAttribute");
  CudaDevice d;
  d.stream_ordered_allocation = pools != 0;
  DeviceInfo& info = d.info;
  info.id = DeviceId{BackendKind::Cuda, device};
  info.name = prop.name;
  info.vendor = "NVIDIA";
  info.driver = "driver " + version(driver) + ", runtime " + version(runtime) + ", compute capability " +
                std::to_string(prop.major) + "." + std::to_string(prop.minor);
  info.capabilities = Capabilities{.device_memory = true,
                                   .pinned_host = true,
                                   .unified = prop.managedMemory != 0,
                                   // cudaMalloc memory is never dereferenceable from the host, even where
                                   // the GPU can read pageable host memory (pageableMemoryAccess).
                                   .host_visible_device = false,
                                   .host_unified_memory = prop.integrated != 0};
  info.virtual_memory_granule = virtual_memory_granule(api, device);
  info.capabilities.virtual_memory = info.virtual_memory_granule != 0;
  for (int peer = 0; peer < count; ++peer) {
    int can_access = 0;
    if (peer != device) check(cudaDeviceCanAccessPeer(&can_access, device, peer), "cudaDeviceCanAccessPeer");
    if (can_access != 0) info.peers.push_back(peer);
  }
  return d;
}

}  // namespace

CudaBackend::CudaBackend() : Backend(BackendKind::Cuda), impl_(std::make_unique<Impl>()) {
  BackendStatus& status = impl_->status;
  status.compiled_in = true;
  // Both version queries work without a driver (the driver version is then 0); they make the detail useful.
  int driver = 0;
  int runtime = 0;
  (void)cudaDriverGetVersion(&driver);
  (void)cudaRuntimeGetVersion(&runtime);
  const std::string versions = "runtime " + version(runtime) + ", driver " + version(driver);
  int count = 0;
  const cudaError_t found = cudaGetDeviceCount(&count);
  if (found != cudaSuccess) {
    (void)cudaGetLastError();
    status.detail = "no CUDA device: cudaGetDeviceCount returned " + describe(found) + " (" + versions + ")";
    return;
  }
  if (count == 0) {
    status.detail = "no CUDA device: cudaGetDeviceCount found none (" + versions + ")";
    return;
  }
  impl_->driver = resolve_driver_api();
  try {
    for (int device = 0; device < count; ++device) {
      impl_->devices.push_back(discover(device, count, driver, runtime, impl_->driver));
    }
  } catch (const Error& e) {
    // All or nothing: skipping one device would renumber the others away from CUDA's own ordinals.
    impl_->devices.clear();
    status.detail = std::string("no usable CUDA device: ") + e.what() + " (" + versions + ")";
    return;
  }
  status.available = true;
  status.detail = std::to_string(count) + (count == 1 ? " device, " : " devices, ") + versions;
}

CudaBackend::~CudaBackend() = default;

BackendStatus CudaBackend::status() const {
  return impl_->status;
}

int CudaBackend::device_count() const noexcept {
  return static_cast<int>(impl_->devices.size());
}

DeviceInfo CudaBackend::do_device_info(int device) const {
  DeviceInfo info = impl_->devices[static_cast<std::size_t>(device)].info;
  info.memory = device_memory(device);
  info.max_allocation_bytes = info.memory.total_bytes;
  return info;
}

MemoryInfo CudaBackend::do_memory_info(int device) const {
  return device_memory(device);
}

Backend::NativeAllocation CudaBackend::do_allocate(int device, MemoryKind kind, std::size_t bytes,
                                                   Stream* stream) {
  if (kind == MemoryKind::Host) {
    void* p = ::operator new (bytes, std::align_val_t{kDefaultAlignment}, std::nothrow);
    if (p == nullptr) {
      const MemoryInfo memory = host_memory_info();
      throw OutOfMemory(bytes, to_string(DeviceId{BackendKind::Cuda, device}), memory.free_bytes,
                        memory.total_bytes, "ordinary host memory");
    }
    return {p, static_cast<std::byte*>(p), true};
  }
  const DeviceGuard guard(device);
  const AllocationRequest request{device, kind, bytes};
  void* p = nullptr;
  if (kind == MemoryKind::Device && stream != nullptr &&
      impl_->devices[static_cast<std::size_t>(device)].stream_ordered_allocation) {
    check(cudaMallocAsync(&p, bytes, native_stream(*stream)), "cudaMallocAsync", &request);
  } else if (kind == MemoryKind::Device) {
    check(cudaMalloc(&p, bytes), "cudaMalloc", &request);
  } else if (kind == MemoryKind::PinnedHost) {
    // Portable: page-locked for every CUDA device, not only the current one.
    check(cudaHostAlloc(&p, bytes, cudaHostAllocPortable), "cudaHostAlloc", &request);
  } else {
    check(cudaMallocManaged(&p, bytes, cudaMemAttachGlobal), "cudaMallocManaged", &request);
  }
  return {p, kind == MemoryKind::Device ? nullptr : static_cast<std::byte*>(p), true};
}

void CudaBackend::do_deallocate(const Segment& segment, Stream* stream) noexcept {
  const int device = segment.device.index;
  if (segment.kind == MemoryKind::Device && stream != nullptr &&
      impl_->devices[static_cast<std::size_t>(device)].stream_ordered_allocation) {
    without_throwing("deallocate", [&] {
      const DeviceGuard guard(device);
      check(cudaFreeAsync(segment.native, native_stream(*stream)), "cudaFreeAsync");
    });
    return;
  }
  // Anything else is freed at once, so the work that may still use it has to finish first: the stream's, or
  // without one the device's (cudaFree does not wait for memory that came from cudaMallocAsync).
  without_throwing("deallocate", [&] {
    if (stream != nullptr) {
      stream->synchronize();
    } else if (segment.kind == MemoryKind::Device) {
      const DeviceGuard guard(device);
      check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    }
  });
  if (segment.kind == MemoryKind::Host) {
    ::operator delete (segment.native, std::align_val_t{kDefaultAlignment});
    return;
  }
  without_throwing("deallocate", [&] {
    const DeviceGuard guard(device);
    const bool pinned = segment.kind == MemoryKind::PinnedHost;
    check(pinned ? cudaFreeHost(segment.native) : cudaFree(segment.native),
          pinned ? "cudaFreeHost" : "cudaFree");
  });
}

void CudaBackend::do_memset(const Segment& dst, std::size_t offset, std::uint8_t value, std::size_t bytes,
                            Stream* stream) {
  std::byte* target = address(dst, this) + offset;
  if (plain_host_memory(dst, this)) {
    if (stream != nullptr) stream->synchronize();
    std::memset(target, value, bytes);
    return;
  }
  run_ordered(stream, dst.device.index, [&](cudaStream_t queue) {
    check(cudaMemsetAsync(target, value, bytes, queue), "cudaMemsetAsync");
  });
}

void CudaBackend::do_copy(const Segment& dst, std::size_t dst_offset, const Segment& src,
                          std::size_t src_offset, std::size_t bytes, Stream* stream) {
  std::byte* to = address(dst, this) + dst_offset;
  const std::byte* from = address(src, this) + src_offset;
  if (plain_host_memory(dst, this) && plain_host_memory(src, this)) {
    if (stream != nullptr) stream->synchronize();
    std::memmove(to, from, bytes);  // the ranges may overlap
    return;
  }
  const auto to_address = reinterpret_cast<std::uintptr_t>(to);
  const auto from_address = reinterpret_cast<std::uintptr_t>(from);
  const bool upward = to_address > from_address;
  const std::size_t distance = upward ? to_address - from_address : from_address - to_address;
  if (distance == 0) return;
  // cudaMemcpy leaves overlapping ranges undefined, so those are copied in pieces no longer than the
  // distance, from the far end when moving up, so that no piece overwrites source bytes not yet copied.
  const std::size_t piece = distance < bytes ? distance : bytes;
  // With unified addressing cudaMemcpyDefault handles every pair, devices and host memory alike; the copy is
  // issued on the device of a segment it touches.
  const int device = plain_host_memory(dst, this) ? src.device.index : dst.device.index;
  run_ordered(stream, device, [&](cudaStream_t queue) {
    for (std::size_t done = 0; done < bytes; done += piece) {
      const std::size_t n = piece < bytes - done ? piece : bytes - done;
      const std::size_t at = upward ? bytes - done - n : done;
      check(cudaMemcpyAsync(to + at, from + at, n, cudaMemcpyDefault, queue), "cudaMemcpyAsync");
    }
  });
}

void CudaBackend::do_prefetch(const Segment& segment, std::size_t offset, std::size_t bytes,
                              PrefetchTarget target, Stream* stream) {
  if (segment.kind != MemoryKind::Unified) return;  // only managed memory migrates
  const int device = segment.device.index;
  // Without concurrent managed access (Windows, WSL2, older GPUs) the runtime rejects prefetches: the hint
  // then does not apply.
  int concurrent = 0;
  check(cudaDeviceGetAttribute(&concurrent, cudaDevAttrConcurrentManagedAccess, device),
        "cudaDeviceGetAttribute");
  if (concurrent == 0) return;
  const std::byte* start = static_cast<const std::byte*>(segment.native) + offset;
  run_ordered(stream, device, [&](cudaStream_t queue) {
#if CUDART_VERSION >= 13000
    cudaMemLocation location{};
    location.type = target == PrefetchTarget::Device ? cudaMemLocationTypeDevice : cudaMemLocationTypeHost;
    location.id = target == PrefetchTarget::Device ? device : 0;
    check(cudaMemPrefetchAsync(start, bytes, location, 0, queue), "cudaMemPrefetchAsync");
#else
    const int destination = target == PrefetchTarget::Device ? device : cudaCpuDeviceId;
    check(cudaMemPrefetchAsync(start, bytes, destination, queue), "cudaMemPrefetchAsync");
#endif
  });
}

void CudaBackend::do_enable_peer_access(int device, int peer) {
  const DeviceGuard guard(device);
  const cudaError_t status = cudaDeviceEnablePeerAccess(peer, 0);
  if (status == cudaErrorPeerAccessAlreadyEnabled) {
    (void)cudaGetLastError();  // enabled outside unimem: the state wanted all the same
    return;
  }
  check(status, "cudaDeviceEnablePeerAccess");
}

void CudaBackend::do_disable_peer_access(int device, int peer) {
  const DeviceGuard guard(device);
  const cudaError_t status = cudaDeviceDisablePeerAccess(peer);
  if (status == cudaErrorPeerAccessNotEnabled) {
    (void)cudaGetLastError();  // disabled outside unimem
    return;
  }
  check(status, "cudaDeviceDisablePeerAccess");
}

Backend::NativeAllocation CudaBackend::do_reserve_address_range(int device, std::size_t bytes) {
  const DriverApi& api = impl_->driver;
  const std::size_t granule = impl_->devices[static_cast<std::size_t>(device)].info.virtual_memory_granule;
  const DeviceGuard guard(device);
  CUdeviceptr base = 0;
  check_driver(api, api.address_reserve(&base, bytes, granule, 0, 0), "cuMemAddressReserve", device, bytes);
  return {reinterpret_cast<void*>(base), nullptr, true};  // NOLINT(performance-no-int-to-ptr)
}

void CudaBackend::do_map(const Segment& range, std::size_t offset, std::size_t bytes) {
  const DriverApi& api = impl_->driver;
  const int device = range.device.index;
  const std::size_t granule = impl_->devices[static_cast<std::size_t>(device)].info.virtual_memory_granule;
  const DeviceGuard guard(device);
  const CUmemAllocationProp prop = pinned_on(device);
  // The device itself and its peers may touch the memory, as they may cudaMalloc memory once peer access is
  // on: copies between devices read or write it from either side.
  std::vector<CUmemAccessDesc> access;
  const auto grant = [&access](int reader) {
    CUmemAccessDesc desc{};
    desc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    desc.location.id = reader;
    desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    access.push_back(desc);
  };
  grant(device);
  for (const int peer : impl_->devices[static_cast<std::size_t>(device)].info.peers) grant(peer);
  const CUdeviceptr first = device_address(range, offset);
  const std::string where = " (mapping " + std::to_string(bytes) + " bytes at offset " +
                            std::to_string(offset) + " of a reserved range)";

  const std::lock_guard lock(impl_->granules_mutex);
  std::vector<std::pair<CUdeviceptr, CUmemGenericAllocationHandle>> mapped;
  mapped.reserve(bytes / granule);  // so that recording a mapped granule below cannot fail
  try {
    for (std::size_t at = 0; at < bytes; at += granule) {
      CUmemGenericAllocationHandle handle = 0;
      check_driver(api, api.create(&handle, granule, &prop, 0), "cuMemCreate" + where, device, bytes);
      const CUresult status = api.map(first + at, granule, 0, handle, 0);
      if (status != CUDA_SUCCESS) (void)api.release(handle);
      check_driver(api, status, "cuMemMap" + where, device, bytes);
      mapped.emplace_back(first + at, handle);
      impl_->granules.emplace(first + at, handle);
    }
    check_driver(api, api.set_access(first, bytes, access.data(), access.size()), "cuMemSetAccess" + where,
                 device, bytes);
  } catch (...) {
    // All or nothing: what this call mapped goes again.
    for (const auto& [address, handle] : mapped) {
      (void)api.unmap(address, granule);
      (void)api.release(handle);
      impl_->granules.erase(address);
    }
    throw;
  }
}

void CudaBackend::do_unmap(const Segment& range, std::size_t offset, std::size_t bytes) {
  const DriverApi& api = impl_->driver;
  const int device = range.device.index;
  const std::size_t granule = impl_->devices[static_cast<std::size_t>(device)].info.virtual_memory_granule;
  const DeviceGuard guard(device);
  // Unmapping is not stream-ordered: work still queued on the memory finishes first, as before cudaFree.
  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  const CUdeviceptr first = device_address(range, offset);
  const std::lock_guard lock(impl_->granules_mutex);
  // Every granule is tried. One whose unmap failed stays recorded; one that a failed call did unmap is gone
  // from the record, so a repeated call skips it.
  CUresult failure = CUDA_SUCCESS;
  std::string failed_call;
  for (std::size_t at = 0; at < bytes; at += granule) {
    const auto it = impl_->granules.find(first + at);
    if (it == impl_->granules.end()) continue;
    CUresult status = api.unmap(it->first, granule);
    const char* call = "cuMemUnmap";
    if (status == CUDA_SUCCESS) {
      status = api.release(it->second);
      call = "cuMemRelease";
      impl_->granules.erase(it);
    }
    if (status != CUDA_SUCCESS && failure == CUDA_SUCCESS) {
      failure = status;
      failed_call = std::string(call) + " (unmapping the granule at offset " + std::to_string(offset + at) +
                    " of a reserved range)";
    }
  }
  check_driver(api, failure, failed_call, device, bytes);
}

void CudaBackend::do_release_address_range(const Segment& range) noexcept {
  without_throwing("deallocate", [&] {
    const DeviceGuard guard(range.device.index);
    check_driver(impl_->driver, impl_->driver.address_free(device_address(range, 0), range.size),
                 "cuMemAddressFree", range.device.index, range.size);
  });
}

std::unique_ptr<Stream> CudaBackend::do_create_stream(int device) {
  return std::make_unique<CudaStream>(*this, device);
}

std::unique_ptr<Stream> CudaBackend::do_wrap_native_stream(int device, void* native) {
  return std::make_unique<CudaStream>(*this, device, static_cast<cudaStream_t>(native));
}

std::unique_ptr<Event> CudaBackend::do_create_event(int device) {
  return std::make_unique<CudaEvent>(*this, device);
}

}  // namespace unimem
