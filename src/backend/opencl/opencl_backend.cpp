// clCreateCommandQueue is the only way to create a queue on an OpenCL 1.2 platform.
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS

#include "unimem/backend/opencl_backend.hpp"

#include <CL/cl.h>
#include <CL/cl_ext.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#include "unimem/core/aligned_buffer.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {

constexpr const char* kName = "opencl";
// Cross-device copies go through host memory in pieces of this size.
constexpr std::size_t kStagingChunk = 4 * MiB;

const char* error_name(cl_int code) noexcept {
  switch (code) {
#define UNIMEM_CL_ERROR(name) \
  case name:                  \
    return #name;
    UNIMEM_CL_ERROR(CL_SUCCESS)
    UNIMEM_CL_ERROR(CL_DEVICE_NOT_FOUND)
    UNIMEM_CL_ERROR(CL_DEVICE_NOT_AVAILABLE)
    UNIMEM_CL_ERROR(CL_COMPILER_NOT_AVAILABLE)
    UNIMEM_CL_ERROR(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    UNIMEM_CL_ERROR(CL_OUT_OF_RESOURCES)
    UNIMEM_CL_ERROR(CL_OUT_OF_HOST_MEMORY)
    UNIMEM_CL_ERROR(CL_PROFILING_INFO_NOT_AVAILABLE)
    UNIMEM_CL_ERROR(CL_MEM_COPY_OVERLAP)
    UNIMEM_CL_ERROR(CL_IMAGE_FORMAT_MISMATCH)
    UNIMEM_CL_ERROR(CL_IMAGE_FORMAT_NOT_SUPPORTED)
    UNIMEM_CL_ERROR(CL_BUILD_PROGRAM_FAILURE)
    UNIMEM_CL_ERROR(CL_MAP_FAILURE)
    UNIMEM_CL_ERROR(CL_MISALIGNED_SUB_BUFFER_OFFSET)
    UNIMEM_CL_ERROR(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST)
    UNIMEM_CL_ERROR(CL_COMPILE_PROGRAM_FAILURE)
    UNIMEM_CL_ERROR(CL_LINKER_NOT_AVAILABLE)
    UNIMEM_CL_ERROR(CL_LINK_PROGRAM_FAILURE)
    UNIMEM_CL_ERROR(CL_DEVICE_PARTITION_FAILED)
    UNIMEM_CL_ERROR(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
    UNIMEM_CL_ERROR(CL_INVALID_VALUE)
    UNIMEM_CL_ERROR(CL_INVALID_DEVICE_TYPE)
    UNIMEM_CL_ERROR(CL_INVALID_PLATFORM)
    UNIMEM_CL_ERROR(CL_INVALID_DEVICE)
    UNIMEM_CL_ERROR(CL_INVALID_CONTEXT)
    UNIMEM_CL_ERROR(CL_INVALID_QUEUE_PROPERTIES)
    UNIMEM_CL_ERROR(CL_INVALID_COMMAND_QUEUE)
    UNIMEM_CL_ERROR(CL_INVALID_HOST_PTR)
    UNIMEM_CL_ERROR(CL_INVALID_MEM_OBJECT)
    UNIMEM_CL_ERROR(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR)
    UNIMEM_CL_ERROR(CL_INVALID_IMAGE_SIZE)
    UNIMEM_CL_ERROR(CL_INVALID_SAMPLER)
    UNIMEM_CL_ERROR(CL_INVALID_BINARY)
    UNIMEM_CL_ERROR(CL_INVALID_BUILD_OPTIONS)
    UNIMEM_CL_ERROR(CL_INVALID_PROGRAM)
    UNIMEM_CL_ERROR(CL_INVALID_PROGRAM_EXECUTABLE)
    UNIMEM_CL_ERROR(CL_INVALID_KERNEL_NAME)
    UNIMEM_CL_ERROR(CL_INVALID_KERNEL_DEFINITION)
    UNIMEM_CL_ERROR(CL_INVALID_KERNEL)
    UNIMEM_CL_ERROR(CL_INVALID_ARG_INDEX)
    UNIMEM_CL_ERROR(CL_INVALID_ARG_VALUE)
    UNIMEM_CL_ERROR(CL_INVALID_ARG_SIZE)
    UNIMEM_CL_ERROR(CL_INVALID_KERNEL_ARGS)
    UNIMEM_CL_ERROR(CL_INVALID_WORK_DIMENSION)
    UNIMEM_CL_ERROR(CL_INVALID_WORK_GROUP_SIZE)
    UNIMEM_CL_ERROR(CL_INVALID_WORK_ITEM_SIZE)
    UNIMEM_CL_ERROR(CL_INVALID_GLOBAL_OFFSET)
    UNIMEM_CL_ERROR(CL_INVALID_EVENT_WAIT_LIST)
    UNIMEM_CL_ERROR(CL_INVALID_EVENT)
    UNIMEM_CL_ERROR(CL_INVALID_OPERATION)
    UNIMEM_CL_ERROR(CL_INVALID_GL_OBJECT)
    UNIMEM_CL_ERROR(CL_INVALID_BUFFER_SIZE)
    UNIMEM_CL_ERROR(CL_INVALID_MIP_LEVEL)
    UNIMEM_CL_ERROR(CL_INVALID_GLOBAL_WORK_SIZE)
    UNIMEM_CL_ERROR(CL_INVALID_PROPERTY)
    UNIMEM_CL_ERROR(CL_INVALID_IMAGE_DESCRIPTOR)
    UNIMEM_CL_ERROR(CL_INVALID_COMPILER_OPTIONS)
    UNIMEM_CL_ERROR(CL_INVALID_LINKER_OPTIONS)
    UNIMEM_CL_ERROR(CL_INVALID_DEVICE_PARTITION_COUNT)
    UNIMEM_CL_ERROR(CL_INVALID_PIPE_SIZE)
    UNIMEM_CL_ERROR(CL_INVALID_DEVICE_QUEUE)
    UNIMEM_CL_ERROR(CL_INVALID_SPEC_ID)
    UNIMEM_CL_ERROR(CL_MAX_SIZE_RESTRICTION_EXCEEDED)
    UNIMEM_CL_ERROR(CL_PLATFORM_NOT_FOUND_KHR)
#undef UNIMEM_CL_ERROR
    default:
      return "CL_UNKNOWN_ERROR";
  }
}

[[noreturn]] void fail(cl_int code, const char* what) {
  throw BackendError(kName, code, error_name(code), what);
}

void check(cl_int code, const char* what) {
  if (code != CL_SUCCESS) fail(code, what);
}

// For paths that must not throw (deallocation, destructors): one line on stderr.
void report(cl_int code, const char* what) noexcept {
  if (code != CL_SUCCESS) {
    std::fprintf(stderr, "unimem: opencl: %s failed: %s (%d)\n", what, error_name(code), code);
  }
}

std::string describe_error(const char* what, cl_int code) {
  return std::string(what) + " failed: " + error_name(code) + " (" + std::to_string(code) + ")";
}

[[noreturn]] void out_of_memory(std::size_t bytes, const DeviceId& device, const MemoryInfo& mem,
                                const std::string& why) {
  throw OutOfMemory(bytes, to_string(device), mem.free_bytes, mem.total_bytes, why);
}

// Throws OutOfMemory for the errors that mean the memory is not there, BackendError for the others.
[[noreturn]] void allocation_failed(cl_int err, const char* what, std::size_t bytes, const DeviceId& device,
                                    const MemoryInfo& mem) {
  if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_RESOURCES || err == CL_OUT_OF_HOST_MEMORY) {
    out_of_memory(bytes, device, mem, describe_error(what, err));
  }
  fail(err, what);
}

struct EventRelease {
  void operator()(cl_event event) const noexcept { report(clReleaseEvent(event), "clReleaseEvent"); }
};
using EventHandle = std::unique_ptr<std::remove_pointer_t<cl_event>, EventRelease>;

struct MemRelease {
  void operator()(cl_mem mem) const noexcept { report(clReleaseMemObject(mem), "clReleaseMemObject"); }
};
using MemHandle = std::unique_ptr<std::remove_pointer_t<cl_mem>, MemRelease>;

// Blocks until `event` completes; a failed command throws with its own error code where the driver gives one.
void wait_for(cl_event event, const char* what) {
  const cl_int err = clWaitForEvents(1, &event);
  if (err == CL_SUCCESS) return;
  cl_int status = CL_SUCCESS;
  if (clGetEventInfo(event, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, nullptr) ==
          CL_SUCCESS &&
      status < 0) {
    fail(status, what);
  }
  fail(err, what);
}

// True once the command behind `event` has completed; throws when it failed.
bool completed(cl_event event, const char* what) {
  cl_int status = CL_QUEUED;
  check(clGetEventInfo(event, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, nullptr),
        "clGetEventInfo");
  if (status < 0) fail(status, what);
  return status == CL_COMPLETE;
}

template <typename Info, typename Object>
std::string info_string(Info query, Object object, cl_uint param) {
  std::size_t size = 0;
  if (query(object, param, 0, nullptr, &size) != CL_SUCCESS || size == 0) return {};
  std::string value(size, '\0');
  if (query(object, param, size, value.data(), nullptr) != CL_SUCCESS) return {};
  value.resize(std::strlen(value.c_str()));
  return value;
}

template <typename T>
T device_value(cl_device_id device, cl_device_info param) {
  T value{};
  return clGetDeviceInfo(device, param, sizeof value, &value, nullptr) == CL_SUCCESS ? value : T{};
}

// "OpenCL 3.0 PoCL ..." -> 300; 0 when unreadable.
int version_number(const std::string& version) {
  int major = 0;
  int minor = 0;
  return std::sscanf(version.c_str(), "OpenCL %d.%d", &major, &minor) == 2 ? major * 100 + minor * 10 : 0;
}

cl_command_queue create_queue(cl_context context, cl_device_id device, bool opencl2, cl_int* err) {
  if (opencl2) {
    const cl_queue_properties properties[] = {CL_QUEUE_PROPERTIES, CL_QUEUE_PROFILING_ENABLE, 0};
    return clCreateCommandQueueWithProperties(context, device, properties, err);
  }
  return clCreateCommandQueue(context, device, CL_QUEUE_PROFILING_ENABLE, err);
}

class OpenCLStream final : public Stream {
 public:
  OpenCLStream(const Backend& backend, DeviceId device, cl_command_queue queue) noexcept
      : Stream(backend, device), queue_(queue) {}
  ~OpenCLStream() override {
    // Work still queued may use host memory the caller frees right after the stream.
    report(clFinish(queue_), "clFinish");
    report(clReleaseCommandQueue(queue_), "clReleaseCommandQueue");
  }
  OpenCLStream(const OpenCLStream&) = delete;
  OpenCLStream& operator=(const OpenCLStream&) = delete;
  OpenCLStream(OpenCLStream&&) = delete;
  OpenCLStream& operator=(OpenCLStream&&) = delete;

  [[nodiscard]] cl_command_queue queue() const noexcept { return queue_; }

  // Takes the event of a command just enqueued on this stream and starts the work now, not at the next
  // blocking call.
  void submitted(EventHandle command) {
    check(clFlush(queue_), "clFlush");
    const std::lock_guard lock(mutex_);
    last_ = std::move(command);
  }

 private:
  void do_synchronize() override { check(clFinish(queue_), "clFinish"); }

  bool do_query() override {
    // The queue is in order, so its last command completes after all the others. (A fresh marker would not
    // do: it is itself queued and may not have run yet even on an idle queue.)
    const std::lock_guard lock(mutex_);
    return last_ == nullptr || completed(last_.get(), "stream query");
  }

  cl_command_queue queue_;
  std::mutex mutex_;  // streams may be shared between threads
  EventHandle last_;
};

OpenCLStream& opencl_stream(Stream& stream) {
  auto* s = dynamic_cast<OpenCLStream*>(&stream);
  if (s == nullptr) {
    throw InvalidArgument("opencl: the stream of " + to_string(stream.device()) + " is not an OpenCL stream");
  }
  return *s;
}

// Host clock reading taken by a completion callback, for drivers that do not profile markers. Shared with the
// callback, which may run after the event object is gone.
struct CompletionStamp {
  static constexpr std::int64_t kPending = -1;
  std::atomic<std::int64_t> nanoseconds{kPending};

  std::int64_t wait() const noexcept {
    std::int64_t value = nanoseconds.load();
    while (value == kPending) {
      nanoseconds.wait(kPending);
      value = nanoseconds.load();
    }
    return value;
  }
};

void CL_CALLBACK stamp_completion(cl_event /*event*/, cl_int /*status*/, void* user) {
  const std::unique_ptr<std::shared_ptr<CompletionStamp>> stamp(
      static_cast<std::shared_ptr<CompletionStamp>*>(user));
  (*stamp)->nanoseconds.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count());
  (*stamp)->nanoseconds.notify_all();
}

class OpenCLEvent final : public Event {
 public:
  OpenCLEvent(const Backend& backend, DeviceId device) noexcept : Event(backend, device) {}

 private:
  void do_record(Stream& stream) override {
    const cl_command_queue queue = opencl_stream(stream).queue();
    cl_event raw = nullptr;
    check(clEnqueueMarkerWithWaitList(queue, 0, nullptr, &raw), "clEnqueueMarkerWithWaitList");
    EventHandle marker(raw);
    auto stamp = std::make_shared<CompletionStamp>();
    auto callback_stamp = std::make_unique<std::shared_ptr<CompletionStamp>>(stamp);
    check(clSetEventCallback(marker.get(), CL_COMPLETE, &stamp_completion, callback_stamp.get()),
          "clSetEventCallback");
    (void)callback_stamp.release();  // the callback frees it
    marker_ = std::move(marker);
    stamp_ = std::move(stamp);
    // No flush of its own: the commands before the marker were flushed as they were enqueued
    // (OpenCLStream::submitted), and the marker itself is issued by the first of synchronize()
    // (clWaitForEvents flushes implicitly), query() or make_wait() (which flush first). A staged copy records
    // one event per chunk and waits on it, so each chunk costs the one flush of its copy.
    queue_ = queue;
    unflushed_ = true;
  }

  // Issues the marker to the device, once, where no blocking call will. A marker that has completed needs
  // none, and its queue may be gone (a stream finishes its queue before releasing it).
  void flush_marker() {
    if (!unflushed_) return;
    if (!completed(marker_.get(), "event query")) check(clFlush(queue_), "clFlush");
    unflushed_ = false;
  }

  bool do_query() override {
    flush_marker();
    return completed(marker_.get(), "event query");
  }

  void do_synchronize() override {
    wait_for(marker_.get(), "clWaitForEvents");
    unflushed_ = false;
  }

  void do_make_wait(Stream& stream) override {
    OpenCLStream& waiter = opencl_stream(stream);
    if (stream.device() != device()) {
      // Each device has its own context and events do not cross contexts: wait on the host instead.
      do_synchronize();
      return;
    }
    flush_marker();  // another queue may wait only on commands that have been flushed
    cl_event marker = marker_.get();
    cl_event raw = nullptr;
    check(clEnqueueBarrierWithWaitList(waiter.queue(), 1, &marker, &raw), "clEnqueueBarrierWithWaitList");
    waiter.submitted(EventHandle(raw));
  }

  double do_elapsed_ms_since(Event& start) override {
    auto* begin = dynamic_cast<OpenCLEvent*>(&start);
    if (begin == nullptr) {
      throw InvalidArgument("opencl: elapsed_ms_since: the start event is not an OpenCL event");
    }
    begin->do_synchronize();
    do_synchronize();
    cl_ulong t0 = 0;
    cl_ulong t1 = 0;
    const cl_int e0 =
        clGetEventProfilingInfo(begin->marker_.get(), CL_PROFILING_COMMAND_END, sizeof t0, &t0, nullptr);
    const cl_int e1 =
        clGetEventProfilingInfo(marker_.get(), CL_PROFILING_COMMAND_END, sizeof t1, &t1, nullptr);
    if (e0 == CL_SUCCESS && e1 == CL_SUCCESS) {
      return static_cast<double>(static_cast<std::int64_t>(t1 - t0)) / 1e6;
    }
    for (const cl_int e : {e0, e1}) {
      if (e != CL_SUCCESS && e != CL_PROFILING_INFO_NOT_AVAILABLE) fail(e, "clGetEventProfilingInfo");
    }
    // Some drivers do not profile markers: use the host clock read when each marker completed.
    return static_cast<double>(stamp_->wait() - begin->stamp_->wait()) / 1e6;
  }

  EventHandle marker_;
  std::shared_ptr<CompletionStamp> stamp_;
  cl_command_queue queue_ = nullptr;  // the queue of the marker, while it may be unflushed
  bool unflushed_ = false;
};

// Where an operation runs: a stream, which the caller does not wait for, or a default queue, which it does.
struct Target {
  cl_command_queue queue;
  OpenCLStream* stream;  // nullptr for a default queue
};

// Enqueues through `enqueue(queue, event_out)` and waits for the command unless it went to a stream.
template <typename Enqueue>
void run(const Target& target, const char* what, Enqueue enqueue) {
  cl_event raw = nullptr;
  check(enqueue(target.queue, &raw), what);
  EventHandle done(raw);
  if (target.stream != nullptr) {
    target.stream->submitted(std::move(done));
    return;
  }
  wait_for(done.get(), what);
}

void drain(Stream& stream) {
  check(clFinish(opencl_stream(stream).queue()), "clFinish");
}

// Finishes two queues when it goes out of scope: host memory their commands use may be freed after it.
class QueuesDrained {
 public:
  QueuesDrained(cl_command_queue first, cl_command_queue second) noexcept : first_(first), second_(second) {}
  ~QueuesDrained() {
    report(clFinish(first_), "clFinish");
    report(clFinish(second_), "clFinish");
  }
  QueuesDrained(const QueuesDrained&) = delete;
  QueuesDrained& operator=(const QueuesDrained&) = delete;
  QueuesDrained(QueuesDrained&&) = delete;
  QueuesDrained& operator=(QueuesDrained&&) = delete;

 private:
  cl_command_queue first_;
  cl_command_queue second_;
};

// The SVM under a buffer, freed by the buffer's destructor callback once no command uses the buffer any more.
struct SvmStorage {
  cl_context context;
  void* memory;
};

void CL_CALLBACK free_svm_storage(cl_mem /*mem*/, void* user) {
  const std::unique_ptr<SvmStorage> storage(static_cast<SvmStorage*>(user));
  clSVMFree(storage->context, storage->memory);
}

bool is_buffer(const Segment& segment, const Backend* self) {
  return segment.owner == self && segment.kind == MemoryKind::Device;
}

}  // namespace

struct OpenCLBackend::Impl {
  struct Device {
    cl_device_id id = nullptr;
    cl_context context = nullptr;
    cl_command_queue queue = nullptr;  // the default queue: work without a stream
    bool opencl2 = false;              // the platform has clCreateCommandQueueWithProperties
    bool svm_migration = false;        // the platform has clEnqueueSVMMigrateMem (OpenCL 2.1)
    // Device buffers live in fine-grained SVM wrapped in a cl_mem (the device's memory is host RAM and it has
    // such SVM): synchronous copies and memsets then run on the calling thread, without a command.
    bool host_memory_buffers = false;
    DeviceInfo info;  // all but the free memory, which changes
  };

  std::vector<Device> devices;
  std::string detail;

  Impl() { discover(); }
  ~Impl() {
    for (const Device& d : devices) {
      report(clFinish(d.queue), "clFinish");
      report(clReleaseCommandQueue(d.queue), "clReleaseCommandQueue");
      report(clReleaseContext(d.context), "clReleaseContext");
    }
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  Impl(Impl&&) = delete;
  Impl& operator=(Impl&&) = delete;

  void discover() {
    cl_uint count = 0;
    cl_int err = clGetPlatformIDs(0, nullptr, &count);
    if (err == CL_PLATFORM_NOT_FOUND_KHR || (err == CL_SUCCESS && count == 0)) {
      detail = "no OpenCL platform found (no ICD registered in /etc/OpenCL/vendors or OCL_ICD_VENDORS)";
      return;
    }
    std::vector<cl_platform_id> platforms(count);
    if (err == CL_SUCCESS) err = clGetPlatformIDs(count, platforms.data(), nullptr);
    if (err != CL_SUCCESS) {
      detail = describe_error("clGetPlatformIDs", err);
      return;
    }
    std::string found;
    std::string problems;
    for (cl_platform_id platform : platforms) {
      const std::string name = info_string(clGetPlatformInfo, platform, CL_PLATFORM_NAME);
      const std::string version = info_string(clGetPlatformInfo, platform, CL_PLATFORM_VERSION);
      const std::size_t before = devices.size();
      add_platform(platform, name, version, problems);
      if (devices.size() > before) {
        found += found.empty() ? "" : ", ";
        found.append(name).append(" (").append(version).append(")");
      }
    }
    const std::size_t n = devices.size();
    detail = n == 0 ? "no usable OpenCL device on " + std::to_string(platforms.size()) + " platform(s)"
                    : std::to_string(n) + (n == 1 ? " device on " : " devices on ") + found;
    detail += problems;
  }

  void add_platform(cl_platform_id platform, const std::string& name, const std::string& version,
                    std::string& problems) {
    const int level = version_number(version);
    if (level < 120) {
      // Fill, marker and barrier commands are OpenCL 1.2.
      problems += "; " + name + " skipped (" + version + ", unimem needs OpenCL 1.2)";
      return;
    }
    cl_uint count = 0;
    cl_int err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 0, nullptr, &count);
    if (err == CL_DEVICE_NOT_FOUND || (err == CL_SUCCESS && count == 0)) return;
    std::vector<cl_device_id> ids(count);
    if (err == CL_SUCCESS) err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, count, ids.data(), nullptr);
    if (err != CL_SUCCESS) {
      problems += "; " + name + ": " + describe_error("clGetDeviceIDs", err);
      return;
    }
    for (cl_device_id id : ids) add_device(id, level, problems);
  }

  void add_device(cl_device_id id, int level, std::string& problems) {
    Device d;
    d.id = id;
    d.opencl2 = level >= 200;
    d.svm_migration = level >= 210;
    d.info.name = info_string(clGetDeviceInfo, id, CL_DEVICE_NAME);
    cl_int err = CL_SUCCESS;
    d.context = clCreateContext(nullptr, 1, &id, nullptr, nullptr, &err);
    if (err != CL_SUCCESS) {
      problems += "; device " + d.info.name + " skipped: " + describe_error("clCreateContext", err);
      return;
    }
    d.queue = create_queue(d.context, id, d.opencl2, &err);
    if (err != CL_SUCCESS) {
      report(clReleaseContext(d.context), "clReleaseContext");
      problems += "; device " + d.info.name + " skipped: " + describe_error("clCreateCommandQueue", err);
      return;
    }
    d.info.id = DeviceId{BackendKind::OpenCL, static_cast<int>(devices.size())};
    d.info.vendor = info_string(clGetDeviceInfo, id, CL_DEVICE_VENDOR);
    d.info.driver = info_string(clGetDeviceInfo, id, CL_DRIVER_VERSION) + " (" +
                    info_string(clGetDeviceInfo, id, CL_DEVICE_VERSION) + ")";
    d.info.memory.total_bytes = device_value<cl_ulong>(id, CL_DEVICE_GLOBAL_MEM_SIZE);
    d.info.memory.estimated = true;
    d.info.max_allocation_bytes = device_value<cl_ulong>(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
    // Unified memory is fine-grained SVM: the host may touch it while the device uses it, without map calls.
    const bool fine_grain_svm =
        d.opencl2 && (device_value<cl_device_svm_capabilities>(id, CL_DEVICE_SVM_CAPABILITIES) &
                      CL_DEVICE_SVM_FINE_GRAIN_BUFFER) != 0;
    d.info.capabilities = Capabilities{
        .device_memory = true,
        .pinned_host = true,
        .unified = fine_grain_svm,
        .host_visible_device = false,
        .host_unified_memory = device_value<cl_bool>(id, CL_DEVICE_HOST_UNIFIED_MEMORY) != CL_FALSE};
    d.host_memory_buffers = d.info.capabilities.host_unified_memory && fine_grain_svm;
    devices.push_back(std::move(d));
  }

  // Where the host reaches byte 0 of one of this backend's device buffers: the SVM under it on a device with
  // host_memory_buffers, nullptr otherwise (the buffer is then only reached by commands).
  [[nodiscard]] std::byte* host_address(const Segment& buffer) const {
    if (!devices[static_cast<std::size_t>(buffer.device.index)].host_memory_buffers) return nullptr;
    void* storage = nullptr;
    check(clGetMemObjectInfo(static_cast<cl_mem>(buffer.native), CL_MEM_HOST_PTR, sizeof storage, &storage,
                             nullptr),
          "clGetMemObjectInfo");
    return static_cast<std::byte*>(storage);
  }

  // A window of a device buffer, for copy_between_devices.
  struct BufferAt {
    cl_mem mem;
    std::size_t offset;
    int device;
  };

  // Copies between buffers of two devices through two host buffers of kStagingChunk: the read of chunk n + 1
  // on the source's queue runs while chunk n is written on the destination's, so that the two drivers' copies
  // overlap. The host waits between the hops, as an event cannot make a queue of another context wait. (The
  // transfer engine's HostStaged strategy pipelines the same way through pooled pinned buffers, without this
  // copy's allocation of its staging memory; it is what copies between devices above the backend layer use.)
  void copy_between_devices(const BufferAt& dst, const BufferAt& src, std::size_t bytes) {
    const cl_command_queue from = devices[static_cast<std::size_t>(src.device)].queue;
    const cl_command_queue to = devices[static_cast<std::size_t>(dst.device)].queue;
    const std::size_t chunk = std::min(bytes, kStagingChunk);
    const std::size_t chunks = bytes / chunk + (bytes % chunk != 0 ? 1 : 0);
    const std::size_t slots = std::min<std::size_t>(chunks, 2);
    AlignedBuffer staging(slots * chunk);
    // On every path, the commands that use the staging memory end before it is freed.
    const QueuesDrained drained(from, to);
    std::array<EventHandle, 2> reads;
    std::array<EventHandle, 2> writes;
    const auto buffer = [&](std::size_t i) { return staging.data() + (i % slots) * chunk; };
    const auto length = [&](std::size_t i) { return std::min(chunk, bytes - i * chunk); };
    const auto read = [&](std::size_t i) {
      cl_event raw = nullptr;
      check(clEnqueueReadBuffer(from, src.mem, CL_FALSE, src.offset + i * chunk, length(i), buffer(i), 0,
                                nullptr, &raw),
            "clEnqueueReadBuffer");
      reads[i % slots].reset(raw);
      check(clFlush(from), "clFlush");
    };
    read(0);
    for (std::size_t i = 0; i < chunks; ++i) {
      wait_for(reads[i % slots].get(), "clEnqueueReadBuffer");
      cl_event raw = nullptr;
      check(clEnqueueWriteBuffer(to, dst.mem, CL_FALSE, dst.offset + i * chunk, length(i), buffer(i), 0,
                                 nullptr, &raw),
            "clEnqueueWriteBuffer");
      writes[i % slots].reset(raw);
      check(clFlush(to), "clFlush");
      if (i + 1 == chunks) break;
      // The next chunk's buffer is free once the write of the chunk before this one has left it.
      if (const EventHandle& previous = writes[(i + 1) % slots]; previous != nullptr) {
        wait_for(previous.get(), "clEnqueueWriteBuffer");
      }
      read(i + 1);
    }
    for (const EventHandle& write : writes) {
      if (write != nullptr) wait_for(write.get(), "clEnqueueWriteBuffer");
    }
  }

  // The stream's queue when it belongs to `device`; otherwise the device's default queue, synchronously and
  // after the stream's earlier work (a queue only runs commands on objects of its own context).
  Target target(int device, Stream* stream) const {
    const cl_command_queue fallback = devices[static_cast<std::size_t>(device)].queue;
    if (stream == nullptr) return {fallback, nullptr};
    OpenCLStream& s = opencl_stream(*stream);
    if (s.device().index == device) return {s.queue(), &s};
    drain(s);
    return {fallback, nullptr};
  }
};

OpenCLBackend::OpenCLBackend() : Backend(BackendKind::OpenCL), impl_(std::make_unique<Impl>()) {}

OpenCLBackend::~OpenCLBackend() = default;

BackendStatus OpenCLBackend::status() const {
  return {true, !impl_->devices.empty(), impl_->detail};
}

int OpenCLBackend::device_count() const noexcept {
  return static_cast<int>(impl_->devices.size());
}

DeviceInfo OpenCLBackend::do_device_info(int device) const {
  DeviceInfo info = impl_->devices[static_cast<std::size_t>(device)].info;
  info.memory = do_memory_info(device);
  return info;
}

MemoryInfo OpenCLBackend::do_memory_info(int device) const {
  // OpenCL has no free-memory query. Count what unimem allocated through the device's context; plain host
  // memory (MemoryKind::Host) does not come from the device.
  MemoryInfo info = impl_->devices[static_cast<std::size_t>(device)].info.memory;
  const std::size_t used = live_device_bytes(device);
  info.free_bytes = info.total_bytes - std::min(used, info.total_bytes);
  return info;
}

Backend::NativeAllocation OpenCLBackend::do_allocate(int device, MemoryKind kind, std::size_t bytes,
                                                     Stream* /*stream*/) {
  // OpenCL has no stream-ordered allocation: the memory is usable at once, which also satisfies a stream.
  const Impl::Device& d = impl_->devices[static_cast<std::size_t>(device)];
  switch (kind) {
    case MemoryKind::Host: {
      void* p = ::operator new (bytes, std::align_val_t{kDefaultAlignment}, std::nothrow);
      if (p == nullptr) out_of_memory(bytes, d.info.id, do_memory_info(device), "host allocation failed");
      return {p, static_cast<std::byte*>(p), true};
    }
    case MemoryKind::Unified: {
      // clSVMAlloc accepts alignments only up to the largest OpenCL data type (128 bytes on PoCL), so
      // allocate kDefaultAlignment more and align inside; native keeps the pointer clSVMFree needs.
      void* p = clSVMAlloc(d.context, CL_MEM_READ_WRITE | CL_MEM_SVM_FINE_GRAIN_BUFFER,
                           checked_add(bytes, kDefaultAlignment), 0);
      if (p == nullptr) out_of_memory(bytes, d.info.id, do_memory_info(device), "clSVMAlloc returned null");
      const auto address = reinterpret_cast<std::uintptr_t>(p);
      // native is what clSVMFree needs, not the segment's first byte: not an address in Segment's sense.
      return {p, static_cast<std::byte*>(p) + (align_up(address, kDefaultAlignment) - address), false};
    }
    case MemoryKind::Device: {
      cl_int err = CL_SUCCESS;
      if (d.host_memory_buffers) {
        // A buffer made with CL_MEM_USE_HOST_PTR over fine-grained SVM has that memory as its storage (OpenCL
        // 2.0, clCreateBuffer), which the host may touch between commands without mapping it. The SVM is
        // freed when the buffer is destroyed, after the last command using it.
        auto storage = std::make_unique<SvmStorage>();
        void* svm = clSVMAlloc(d.context, CL_MEM_READ_WRITE | CL_MEM_SVM_FINE_GRAIN_BUFFER, bytes, 0);
        if (svm == nullptr) {
          out_of_memory(bytes, d.info.id, do_memory_info(device), "clSVMAlloc returned null");
        }
        const cl_mem mem =
            clCreateBuffer(d.context, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, bytes, svm, &err);
        if (err != CL_SUCCESS) {
          clSVMFree(d.context, svm);
          allocation_failed(err, "clCreateBuffer over SVM", bytes, d.info.id, do_memory_info(device));
        }
        MemHandle buffer(mem);
        *storage = SvmStorage{d.context, svm};
        err = clSetMemObjectDestructorCallback(mem, &free_svm_storage, storage.get());
        if (err != CL_SUCCESS) {
          buffer.reset();  // no command has used it yet: the SVM can go at once
          clSVMFree(d.context, svm);
          fail(err, "clSetMemObjectDestructorCallback");
        }
        (void)storage.release();  // the callback frees it
        return {buffer.release(), nullptr, false};
      }
      const cl_mem mem = clCreateBuffer(d.context, CL_MEM_READ_WRITE, bytes, nullptr, &err);
      if (err != CL_SUCCESS) {
        allocation_failed(err, "clCreateBuffer", bytes, d.info.id, do_memory_info(device));
      }
      return {mem, nullptr, false};
    }
    case MemoryKind::PinnedHost:
      break;
  }
  // Pinned memory is a CL_MEM_ALLOC_HOST_PTR buffer kept mapped for its whole life. The mapping is only as
  // aligned as the driver makes it (128 bytes on PoCL), so map kDefaultAlignment more and hand out the
  // aligned sub-buffer inside it: byte 0 of native is then the byte at host_ptr.
  const std::size_t padded = checked_add(bytes, kDefaultAlignment);
  cl_int err = CL_SUCCESS;
  MemHandle parent(
      clCreateBuffer(d.context, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, padded, nullptr, &err));
  if (err != CL_SUCCESS) allocation_failed(err, "clCreateBuffer", bytes, d.info.id, do_memory_info(device));
  void* mapped = clEnqueueMapBuffer(d.queue, parent.get(), CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, padded, 0,
                                    nullptr, nullptr, &err);
  if (err != CL_SUCCESS) {
    allocation_failed(err, "clEnqueueMapBuffer", bytes, d.info.id, do_memory_info(device));
  }
  const auto address = reinterpret_cast<std::uintptr_t>(mapped);
  const cl_buffer_region region{align_up(address, kDefaultAlignment) - address, bytes};
  const cl_mem sub =
      clCreateSubBuffer(parent.get(), CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
  if (err != CL_SUCCESS) {
    report(clEnqueueUnmapMemObject(d.queue, parent.get(), mapped, 0, nullptr, nullptr),
           "clEnqueueUnmapMemObject");
    allocation_failed(err, "clCreateSubBuffer", bytes, d.info.id, do_memory_info(device));
  }
  (void)parent.release();  // do_deallocate finds it again through the sub-buffer
  return {sub, static_cast<std::byte*>(mapped) + region.origin, false};
}

void OpenCLBackend::do_deallocate(const Segment& segment, Stream* stream) noexcept {
  const Impl::Device& d = impl_->devices[static_cast<std::size_t>(segment.device.index)];
  // A released cl_mem lives until the commands using it finish, but host-visible memory goes at once: let the
  // stream finish with it first.
  if (stream != nullptr && segment.kind != MemoryKind::Device) {
    if (auto* s = dynamic_cast<OpenCLStream*>(stream)) report(clFinish(s->queue()), "clFinish");
  }
  switch (segment.kind) {
    case MemoryKind::Device:
      report(clReleaseMemObject(static_cast<cl_mem>(segment.native)), "clReleaseMemObject");
      break;
    case MemoryKind::PinnedHost: {
      // Undo do_allocate: unmap the padded parent buffer, then release both it and the sub-buffer.
      const auto sub = static_cast<cl_mem>(segment.native);
      cl_mem parent = nullptr;
      std::size_t origin = 0;
      report(clGetMemObjectInfo(sub, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof(cl_mem), &parent, nullptr),
             "clGetMemObjectInfo");
      report(clGetMemObjectInfo(sub, CL_MEM_OFFSET, sizeof origin, &origin, nullptr), "clGetMemObjectInfo");
      report(clEnqueueUnmapMemObject(d.queue, parent, segment.host_ptr - origin, 0, nullptr, nullptr),
             "clEnqueueUnmapMemObject");
      report(clReleaseMemObject(sub), "clReleaseMemObject");
      report(clReleaseMemObject(parent), "clReleaseMemObject");
      report(clFlush(d.queue), "clFlush");
      break;
    }
    case MemoryKind::Unified:
      clSVMFree(d.context, segment.native);
      break;
    case MemoryKind::Host:
      ::operator delete (segment.native, std::align_val_t{kDefaultAlignment});
      break;
  }
}

void OpenCLBackend::do_memset(const Segment& dst, std::size_t offset, std::uint8_t value, std::size_t bytes,
                              Stream* stream) {
  if (std::byte* storage = stream == nullptr && is_buffer(dst, this) ? impl_->host_address(dst) : nullptr) {
    // Synchronous, on memory the host reaches: no command to hand to the driver's thread and wait for.
    std::memset(storage + offset, value, bytes);
    return;
  }
  if (is_buffer(dst, this)) {
    const auto mem = static_cast<cl_mem>(dst.native);
    run(impl_->target(dst.device.index, stream), "clEnqueueFillBuffer",
        [&](cl_command_queue q, cl_event* done) {
          return clEnqueueFillBuffer(q, mem, &value, 1, offset, bytes, 0, nullptr, done);
        });
    return;
  }
  // Host-visible memory: the host writes it, after the stream's earlier work so that the memset is ordered.
  if (stream != nullptr) drain(*stream);
  std::memset(dst.host_ptr + offset, value, bytes);
}

void OpenCLBackend::do_copy(const Segment& dst, std::size_t dst_offset, const Segment& src,
                            std::size_t src_offset, std::size_t bytes, Stream* stream) {
  const bool dst_buffer = is_buffer(dst, this);
  const bool src_buffer = is_buffer(src, this);
  if (stream == nullptr && (dst_buffer || src_buffer)) {
    // A synchronous copy between memory the host reaches (device buffers over SVM included, of any two
    // devices) runs on the calling thread: a command would cost a hand-off to the driver's thread and back,
    // more than a megabyte's memcpy.
    std::byte* to = dst_buffer ? impl_->host_address(dst) : dst.host_ptr;
    const std::byte* from = src_buffer ? impl_->host_address(src) : src.host_ptr;
    if (to != nullptr && from != nullptr) {
      std::memmove(to + dst_offset, from + src_offset, bytes);
      return;
    }
  }

  if (!dst_buffer && !src_buffer) {
    // Both host-visible (pinned, SVM, host, views): the host copies, after the stream's earlier work.
    if (stream != nullptr) drain(*stream);
    std::memmove(dst.host_ptr + dst_offset, src.host_ptr + src_offset, bytes);
    return;
  }
  const auto dst_mem = static_cast<cl_mem>(dst.native);
  const auto src_mem = static_cast<cl_mem>(src.native);
  if (!src_buffer) {
    const std::byte* from = src.host_ptr + src_offset;
    run(impl_->target(dst.device.index, stream), "clEnqueueWriteBuffer",
        [&](cl_command_queue q, cl_event* done) {
          return clEnqueueWriteBuffer(q, dst_mem, CL_FALSE, dst_offset, bytes, from, 0, nullptr, done);
        });
    return;
  }
  if (!dst_buffer) {
    std::byte* to = dst.host_ptr + dst_offset;
    run(impl_->target(src.device.index, stream), "clEnqueueReadBuffer",
        [&](cl_command_queue q, cl_event* done) {
          return clEnqueueReadBuffer(q, src_mem, CL_FALSE, src_offset, bytes, to, 0, nullptr, done);
        });
    return;
  }

  if (dst.device != src.device) {
    // Devices sit in separate contexts, so no queue sees both buffers: stage through host memory,
    // synchronously even with a stream (after draining it; the copy has then completed, which orders it on
    // the stream too).
    if (stream != nullptr) drain(*stream);
    impl_->copy_between_devices({dst_mem, dst_offset, dst.device.index},
                                {src_mem, src_offset, src.device.index}, bytes);
    return;
  }

  const Target target = impl_->target(dst.device.index, stream);
  const bool overlap =
      dst_mem == src_mem && dst_offset < src_offset + bytes && src_offset < dst_offset + bytes;
  if (!overlap) {
    run(target, "clEnqueueCopyBuffer", [&](cl_command_queue q, cl_event* done) {
      return clEnqueueCopyBuffer(q, src_mem, dst_mem, src_offset, dst_offset, bytes, 0, nullptr, done);
    });
    return;
  }
  if (dst_offset == src_offset) return;
  // clEnqueueCopyBuffer rejects overlapping ranges of one buffer: go through a scratch buffer, which OpenCL
  // keeps alive until the commands using it have finished.
  cl_int err = CL_SUCCESS;
  const MemHandle scratch(clCreateBuffer(impl_->devices[static_cast<std::size_t>(dst.device.index)].context,
                                         CL_MEM_READ_WRITE, bytes, nullptr, &err));
  if (err != CL_SUCCESS) {
    allocation_failed(err, "clCreateBuffer (scratch for an overlapping copy)", bytes, dst.device,
                      do_memory_info(dst.device.index));
  }
  run(target, "clEnqueueCopyBuffer", [&](cl_command_queue q, cl_event* done) {
    return clEnqueueCopyBuffer(q, src_mem, scratch.get(), src_offset, 0, bytes, 0, nullptr, done);
  });
  run(target, "clEnqueueCopyBuffer", [&](cl_command_queue q, cl_event* done) {
    return clEnqueueCopyBuffer(q, scratch.get(), dst_mem, 0, dst_offset, bytes, 0, nullptr, done);
  });
}

void OpenCLBackend::do_prefetch(const Segment& segment, std::size_t offset, std::size_t bytes,
                                PrefetchTarget target, Stream* stream) {
  const Impl::Device& d = impl_->devices[static_cast<std::size_t>(segment.device.index)];
  // Only SVM migrates; cl_mem buffers move when a command uses them, and pinned memory stays on the host.
  if (segment.kind != MemoryKind::Unified || !d.svm_migration) return;
  const void* start = segment.host_ptr + offset;
  const cl_mem_migration_flags flags = target == PrefetchTarget::Host ? CL_MIGRATE_MEM_OBJECT_HOST : 0;
  run(impl_->target(segment.device.index, stream), "clEnqueueSVMMigrateMem",
      [&](cl_command_queue q, cl_event* done) {
        return clEnqueueSVMMigrateMem(q, 1, &start, &bytes, flags, 0, nullptr, done);
      });
}

std::unique_ptr<Stream> OpenCLBackend::do_create_stream(int device) {
  const Impl::Device& d = impl_->devices[static_cast<std::size_t>(device)];
  cl_int err = CL_SUCCESS;
  const cl_command_queue queue = create_queue(d.context, d.id, d.opencl2, &err);
  check(err, "clCreateCommandQueue");
  // Released here if constructing the stream throws; the stream owns the queue afterwards.
  std::unique_ptr<std::remove_pointer_t<cl_command_queue>, decltype(&clReleaseCommandQueue)> guard(
      queue, &clReleaseCommandQueue);
  auto stream = std::make_unique<OpenCLStream>(*this, d.info.id, queue);
  (void)guard.release();
  return stream;
}

std::unique_ptr<Event> OpenCLBackend::do_create_event(int device) {
  return std::make_unique<OpenCLEvent>(*this, DeviceId{BackendKind::OpenCL, device});
}

}  // namespace unimem
