// unimem._unimem: the MemoryManager, its buffers (buffer protocol through __array_interface__, DLPack through
// nanobind's ndarray), the exception hierarchy, and the CLI's info and replay commands (tools/unimem).
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/string_view.h>
#include <nanobind/stl/vector.h>

#include <array>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/size.hpp"
#include "unimem/device_option.hpp"
#include "unimem/info_command.hpp"
#include "unimem/manager/memory_manager.hpp"
#include "unimem/replay_command.hpp"
#include "unimem/resource/memory_stats.hpp"
#include "unimem/resource/resource_spec.hpp"

namespace nb = nanobind;

namespace {

using unimem::AllocationMode;
using unimem::BackendKind;
using unimem::DeviceId;
using unimem::MemoryKind;

// DLPack device types (dlpack.h's DLDeviceType); simulated memory has no DLPack type of its own.
constexpr int kDLCPU = 1;
constexpr int kDLCUDA = 2;
constexpr int kDLCUDAHost = 3;
constexpr int kDLOpenCL = 4;
constexpr int kDLCUDAManaged = 13;
constexpr int kDLExtDev = 12;

std::string json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

AllocationMode parse_mode(std::string_view text) {
  if (text == "pooled") return AllocationMode::Pooled;
  if (text == "unpooled") return AllocationMode::Unpooled;
  if (text == "pinned") return AllocationMode::Pinned;
  if (text == "unified") return AllocationMode::Unified;
  throw unimem::InvalidArgument("mode " + unimem::quoted(text) +
                                ": expected 'pooled', 'unpooled', 'pinned' or 'unified'");
}

// The manager and every buffer share it, so that the manager outlives the last buffer and view.
using SharedManager = std::shared_ptr<unimem::MemoryManager>;

// One allocation; DLPack capsules and NumPy arrays keep it alive through a shared_ptr of their own.
struct Allocation {
  SharedManager manager;
  unimem::RawBuffer buffer;

  ~Allocation() {
    // Freeing may run pressure callbacks, which take the GIL themselves.
    nb::gil_scoped_release release;
    buffer = unimem::RawBuffer();
  }
};

struct PyBuffer {
  std::shared_ptr<Allocation> allocation;
  std::vector<std::size_t> shape;
  nb::dlpack::dtype dtype;
  std::string dtype_name;
  std::string format;  // the buffer protocol's element format

  [[nodiscard]] const unimem::RawView& view() const { return allocation->buffer.view(); }
  [[nodiscard]] std::size_t nbytes() const { return allocation->buffer.bytes(); }
  [[nodiscard]] bool host_visible() const { return view().host_visible(); }

  [[nodiscard]] std::pair<int, int> dlpack_device() const {
    const DeviceId device = allocation->buffer.device();
    const MemoryKind kind = allocation->buffer.kind();
    if (device.backend == BackendKind::Cuda) {
      if (kind == MemoryKind::PinnedHost) return {kDLCUDAHost, 0};
      if (kind == MemoryKind::Unified) return {kDLCUDAManaged, device.index};
      return {kDLCUDA, device.index};
    }
    if (host_visible()) return {kDLCPU, 0};
    if (device.backend == BackendKind::OpenCL) return {kDLOpenCL, device.index};
    return {kDLExtDev, device.index};
  }

  [[nodiscard]] std::byte* host_data(std::string_view what) const {
    if (!host_visible()) {
      throw unimem::NotSupported(std::string(what) + ": the buffer's memory (" + view().describe() +
                                 ") is not host-visible; use copy_to/copy_from");
    }
    return view().host_data();
  }

  // The whole buffer as nanobind's array-API object (DLPack), holding a reference to the allocation.
  [[nodiscard]] nb::object as_array_api() const {
    std::byte* data = host_data("__dlpack__");
    auto* owner_ref = new std::shared_ptr<Allocation>(allocation);
    nb::capsule owner(owner_ref,
                      [](void* p) noexcept { delete static_cast<std::shared_ptr<Allocation>*>(p); });
    const auto [device_type, device_id] = dlpack_device();
    nb::ndarray<nb::array_api> array(data, shape.size(), shape.data(), owner, nullptr, dtype, device_type,
                                     device_id);
    return nb::cast(array, nb::rv_policy::reference);
  }
};

// What a copy moves: the whole buffer, to or from a C-contiguous object of at least that many bytes.
class HostBytes {
 public:
  HostBytes(nb::handle object, bool writable, std::size_t needed, std::string_view what) {
    const int flags = PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(object.ptr(), &view_, flags) != 0) {
      PyErr_Clear();
      const std::string type = nb::type_name(object.type()).c_str();
      if (PyObject_CheckBuffer(object.ptr()) == 0) {
        throw unimem::TypeMismatch(std::string(what) + ": a " + unimem::quoted(type) +
                                   " object does not support the buffer protocol");
      }
      throw unimem::InvalidArgument(std::string(what) + ": the " + unimem::quoted(type) +
                                    " object is not a " + (writable ? "writable " : "") +
                                    "C-contiguous buffer");
    }
    if (static_cast<std::size_t>(view_.len) < needed) {
      const auto length = static_cast<std::size_t>(view_.len);
      PyBuffer_Release(&view_);
      throw unimem::InvalidArgument(std::string(what) + ": the object holds " + std::to_string(length) +
                                    " bytes, the buffer " + std::to_string(needed));
    }
  }
  ~HostBytes() { PyBuffer_Release(&view_); }
  HostBytes(const HostBytes&) = delete;
  HostBytes& operator=(const HostBytes&) = delete;
  HostBytes(HostBytes&&) = delete;
  HostBytes& operator=(HostBytes&&) = delete;

  [[nodiscard]] void* data() const noexcept { return view_.buf; }
  [[nodiscard]] std::size_t size() const noexcept { return static_cast<std::size_t>(view_.len); }

 private:
  Py_buffer view_{};
};

struct DtypeInfo {
  nb::dlpack::dtype dtype;
  std::string typestr;  // NumPy's array-interface spelling
  std::string
      format;  // the struct module's native spelling, for the buffer protocol (memoryview indexes only those)
};

DtypeInfo parse_dtype(nb::handle dtype) {
  // A name ("float32"), a NumPy-like dtype object with a name (numpy.dtype('f4')), or a scalar type
  // (numpy.float32).
  std::string name;
  if (nb::isinstance<nb::str>(dtype)) {
    name = nb::cast<std::string>(dtype);
  } else if (!nb::isinstance<nb::type_object>(dtype) && nb::hasattr(dtype, "name")) {
    name = nb::cast<std::string>(nb::str(dtype.attr("name")));
  } else if (nb::hasattr(dtype, "__name__")) {
    name = nb::cast<std::string>(nb::str(dtype.attr("__name__")));
  } else {
    name = nb::cast<std::string>(nb::repr(dtype));
  }
  using Code = nb::dlpack::dtype_code;
  struct Known {
    const char* name;
    Code code;
    std::uint8_t bits;
    const char* typestr;
    const char* format;
  };
  static constexpr Known kKnown[] = {
      {"bool", Code::Bool, 8, "|b1", "?"},      {"int8", Code::Int, 8, "|i1", "b"},
      {"int16", Code::Int, 16, "<i2", "h"},     {"int32", Code::Int, 32, "<i4", "i"},
      {"int64", Code::Int, 64, "<i8", "q"},     {"uint8", Code::UInt, 8, "|u1", "B"},
      {"uint16", Code::UInt, 16, "<u2", "H"},   {"uint32", Code::UInt, 32, "<u4", "I"},
      {"uint64", Code::UInt, 64, "<u8", "Q"},   {"float16", Code::Float, 16, "<f2", "e"},
      {"float32", Code::Float, 32, "<f4", "f"}, {"float64", Code::Float, 64, "<f8", "d"},
  };
  for (const Known& known : kKnown) {
    if (name == known.name) {
      return {nb::dlpack::dtype{static_cast<std::uint8_t>(known.code), known.bits, 1}, known.typestr,
              known.format};
    }
  }
  throw unimem::InvalidArgument("dtype " + unimem::quoted(name) +
                                ": expected bool, int8..int64, uint8..uint64, float16, float32 or float64");
}

// A count or size from Python, which must be positive; InvalidArgument naming `what` and the value.
std::size_t positive_size(long long value, std::string_view what) {
  if (value <= 0) {
    throw unimem::InvalidArgument(std::string(what) + " " + std::to_string(value) + " (must be positive)");
  }
  return static_cast<std::size_t>(value);
}

struct PyManager {
  SharedManager manager;

  PyManager(std::optional<std::string> config, const std::vector<std::string>& simulated,
            std::optional<std::string> default_device) {
    unimem::ManagerOptions options;
    if (config) options.config = unimem::MemoryConfig::parse(*config);
    for (const auto& spec : simulated)
      options.registry.simulated_devices.push_back(unimem::SimulatedDeviceSpec::parse(spec));
    if (default_device) options.default_device = unimem::cli::parse_device_id(*default_device);
    nb::gil_scoped_release release;
    manager = std::make_shared<unimem::MemoryManager>(std::move(options));
  }

  [[nodiscard]] std::optional<DeviceId> device_of(const std::optional<std::string>& text) const {
    if (!text) return std::nullopt;
    return unimem::cli::parse_device_id(*text);
  }

  PyBuffer allocate(nb::handle size, std::string_view mode, const std::optional<std::string>& device) {
    PyBuffer result;
    std::size_t count = 1;
    std::size_t element = 1;
    if (nb::isinstance<nb::tuple>(size)) {
      const auto pair = nb::borrow<nb::tuple>(size);
      if (pair.size() != 2) throw unimem::InvalidArgument("allocate: expected nbytes or (shape, dtype)");
      const DtypeInfo dtype = parse_dtype(pair[1]);
      result.dtype = dtype.dtype;
      result.dtype_name = dtype.typestr;
      result.format = dtype.format;
      element = dtype.dtype.bits / 8;
      nb::object shape = pair[0];
      if (nb::isinstance<nb::int_>(shape)) shape = nb::make_tuple(shape);
      for (nb::handle extent : shape) {
        const std::size_t value = positive_size(nb::cast<long long>(extent), "allocate: shape extent");
        result.shape.push_back(value);
        count = unimem::checked_mul(count, value);
      }
      if (result.shape.empty()) throw unimem::InvalidArgument("allocate: an empty shape");
    } else {
      count = positive_size(nb::cast<long long>(size), "allocate: nbytes");
      result.shape = {count};
      result.dtype = nb::dtype<std::uint8_t>();
      result.dtype_name = "|u1";
      result.format = "B";
    }
    const std::size_t bytes = unimem::checked_mul(count, element);
    const AllocationMode allocation_mode = parse_mode(mode);
    const std::optional<DeviceId> target = device_of(device);
    auto allocation = std::make_shared<Allocation>();
    allocation->manager = manager;
    {
      nb::gil_scoped_release release;
      unimem::MemoryResource& from = manager->resource(allocation_mode, target);
      allocation->buffer = unimem::RawBuffer(from, unimem::element_type_of<std::byte>(), bytes);
    }
    result.allocation = std::move(allocation);
    return result;
  }
};

// A named buffer, reached by name on every call: it never holds memory that free() or a growth gave back.
struct PyNamedBuffer {
  SharedManager manager;
  std::string name;

  [[nodiscard]] unimem::RawView view() const { return manager->named().get<std::byte>(name).raw(); }

  // `source`'s bytes into the buffer from its first byte, on the buffer's own stream, waited for.
  void copy_from(nb::handle source) const {
    const HostBytes bytes(source, false, 0, "copy_from");
    if (bytes.size() == 0) throw unimem::InvalidArgument("copy_from: the object holds 0 bytes");
    nb::gil_scoped_release release;
    manager->named()
        .copy_from_host_async<std::byte>(name, {static_cast<const std::byte*>(bytes.data()), bytes.size()})
        .wait();
  }
  void copy_to(nb::handle target) const {
    const HostBytes bytes(target, true, 0, "copy_to");
    if (bytes.size() == 0) throw unimem::InvalidArgument("copy_to: the object holds 0 bytes");
    nb::gil_scoped_release release;
    manager->named()
        .copy_to_host_async<std::byte>(name, {static_cast<std::byte*>(bytes.data()), bytes.size()})
        .wait();
  }
};

// The fields of MemoryStats as a dict, from the one field list its JSON form has (docs/snapshot.md).
nb::object stats_dict(const unimem::MemoryStats& stats) {
  return nb::module_::import_("json").attr("loads")(unimem::to_json(stats));
}

nb::tuple shape_tuple(const std::vector<std::size_t>& shape) {
  nb::list out;
  for (const std::size_t extent : shape) out.append(extent);
  return nb::tuple(out);
}

// A Python callable kept by C++ code that may copy or drop it without the GIL.
std::shared_ptr<nb::object> keep(nb::object callable) {
  return {new nb::object(std::move(callable)), [](nb::object* object) {
            nb::gil_scoped_acquire acquire;
            delete object;
          }};
}

// unimem's exception types, in the order translate_error() uses: Error, InvalidArgument, TypeMismatch,
// NotSupported, OutOfMemory, BackendError. Created once, by register_exceptions().
std::array<PyObject*, 6> error_types{};  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables)

// Sets the Python error for a unimem error; rethrows anything else.
void translate_error(const std::exception_ptr& failure, void* /*payload*/) {
  try {
    std::rethrow_exception(failure);
  } catch (const unimem::InvalidArgument& e) {
    PyErr_SetString(error_types[1], e.what());
  } catch (const unimem::TypeMismatch& e) {
    PyErr_SetString(error_types[2], e.what());
  } catch (const unimem::NotSupported& e) {
    PyErr_SetString(error_types[3], e.what());
  } catch (const unimem::OutOfMemory& e) {
    PyErr_SetString(error_types[4], e.what());
  } catch (const unimem::BackendError& e) {
    PyErr_SetString(error_types[5], e.what());
  } catch (const unimem::Error& e) {
    PyErr_SetString(error_types[0], e.what());
  }
}

// Where a slot function (which must not throw) turns the exception in flight into a Python error.
void set_python_error() noexcept {
  try {
    translate_error(std::current_exception(), nullptr);
  } catch (nb::python_error& e) {
    e.restore();
  } catch (const std::exception& e) {
    PyErr_SetString(PyExc_RuntimeError, e.what());
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "unimem: an unknown C++ exception");
  }
}

// The shape and strides a Py_buffer of a Buffer points at, alive until the consumer releases the view.
struct BufferLayout {
  std::vector<Py_ssize_t> shape;
  std::vector<Py_ssize_t> strides;
};

// The buffer protocol of host-visible buffers: writable, C-contiguous, the buffer's shape and element format
// (bytes, for consumers that ask for no shape). The view holds a reference to the Buffer, which holds the
// memory. NotSupported for memory the host cannot address.
int get_buffer(PyObject* self, Py_buffer* view, int flags) noexcept {
  view->obj = nullptr;
  try {
    const auto& buffer = nb::cast<const PyBuffer&>(nb::handle(self));
    std::byte* data = buffer.host_data("the buffer protocol");
    const auto item = static_cast<Py_ssize_t>(buffer.dtype.bits / 8);
    auto layout = std::make_unique<BufferLayout>();
    std::size_t extents_above_one = 0;
    for (const std::size_t extent : buffer.shape) extents_above_one += extent > 1 ? 1 : 0;
    if ((flags & PyBUF_F_CONTIGUOUS) == PyBUF_F_CONTIGUOUS && extents_above_one > 1) {
      PyErr_SetString(PyExc_BufferError, "unimem.Buffer: the memory is C-contiguous, not Fortran-contiguous");
      return -1;
    }
    const bool shaped = (flags & PyBUF_ND) == PyBUF_ND;
    if (shaped) {
      layout->shape.resize(buffer.shape.size());
      layout->strides.resize(buffer.shape.size());
      Py_ssize_t stride = item;
      for (std::size_t i = buffer.shape.size(); i-- > 0;) {
        layout->shape[i] = static_cast<Py_ssize_t>(buffer.shape[i]);
        layout->strides[i] = stride;
        stride *= layout->shape[i];
      }
    }
    view->buf = data;
    view->len = static_cast<Py_ssize_t>(buffer.nbytes());
    view->readonly = 0;
    view->itemsize = shaped ? item : 1;
    const char* format = shaped ? buffer.format.c_str() : "B";
    view->format = (flags & PyBUF_FORMAT) == PyBUF_FORMAT ? const_cast<char*>(format) : nullptr;
    view->ndim = shaped ? static_cast<int>(buffer.shape.size()) : 1;
    view->shape = shaped ? layout->shape.data() : nullptr;
    view->strides = (flags & PyBUF_STRIDES) == PyBUF_STRIDES ? layout->strides.data() : nullptr;
    view->suboffsets = nullptr;
    view->internal = layout.release();
    Py_INCREF(self);
    view->obj = self;
    return 0;
  } catch (...) {
    set_python_error();
    return -1;
  }
}

void release_buffer(PyObject* /*self*/, Py_buffer* view) noexcept {
  delete static_cast<BufferLayout*>(view->internal);
}

PyType_Slot buffer_slots[] = {  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables): nanobind's API
    {Py_bf_getbuffer, reinterpret_cast<void*>(get_buffer)},
    {Py_bf_releasebuffer, reinterpret_cast<void*>(release_buffer)},
    {0, nullptr}};

void register_exceptions(nb::module_& m) {
  auto make = [&m](const char* name, PyObject* bases, const char* doc) {
    PyObject* type = PyErr_NewExceptionWithDoc((std::string("unimem.") + name).c_str(), doc, bases, nullptr);
    Py_DECREF(bases);
    m.attr(name) = nb::steal(type);
    return type;
  };
  PyObject* error = make("Error", Py_BuildValue("(O)", PyExc_Exception), "Base of every unimem error.");
  PyObject* invalid = make("InvalidArgument", Py_BuildValue("(OO)", error, PyExc_ValueError),
                           "A value the function cannot accept; the message names it.");
  PyObject* mismatch = make("TypeMismatch", Py_BuildValue("(OO)", error, PyExc_TypeError),
                            "An object or element type other than the one required.");
  PyObject* unsupported = make("NotSupported", Py_BuildValue("(OO)", error, PyExc_NotImplementedError),
                               "The operation exists but not for this backend, device or kind of memory.");
  PyObject* oom = make("OutOfMemory", Py_BuildValue("(OO)", error, PyExc_MemoryError),
                       "A memory request could not be satisfied; the message has the device's figures.");
  PyObject* backend = make("BackendError", Py_BuildValue("(OO)", error, PyExc_RuntimeError),
                           "The native API (OpenCL, CUDA, the OS) returned an error.");
  error_types = {error, invalid, mismatch, unsupported, oom, backend};
  nb::register_exception_translator(translate_error);
}

}  // namespace

NB_MODULE(_unimem, m) {
  m.doc() = "unimem's C++ core; use the unimem package, which documents and wraps it.";
  register_exceptions(m);

  m.def(
      "info_json",
      [](const std::vector<std::string>& simulated) {
        unimem::BackendRegistryOptions options;
        for (const auto& spec : simulated)
          options.simulated_devices.push_back(unimem::SimulatedDeviceSpec::parse(spec));
        std::string text;
        {
          nb::gil_scoped_release release;
          const unimem::BackendRegistry registry(options);
          text = json_text(unimem::cli::info_json(registry, unimem::detect_platform()));
        }
        return text;
      },
      nb::arg("simulated") = std::vector<std::string>{});

  m.def(
      "replay_json",
      [](const std::string& path, const std::vector<std::string>& stacks, const std::string& device,
         int repeat, std::optional<nb::object> progress, int streams) {
        if (stacks.empty()) throw unimem::InvalidArgument("replay: no stacks given");
        for (const auto& spec : stacks) (void)unimem::parse_resource_spec(spec);
        unimem::cli::ReplayOptions options{.repeat = repeat, .progress = {}, .streams = streams};
        unimem::cli::check_replay_options(options);
        if (progress) {
          std::shared_ptr<nb::object> callback = keep(*progress);
          options.progress = [callback](std::string_view phase, double fraction) {
            nb::gil_scoped_acquire acquire;
            (*callback)(phase, fraction);
          };
        }
        nb::gil_scoped_release release;
        // The CLI's own path: a directory is every *.csv in it, replayed into one document with a summary.
        const auto paths = unimem::cli::expand_trace_paths({path});
        const unimem::cli::DeviceSelection selection({device});
        const auto replays = unimem::cli::replay_traces(paths, selection.front(), stacks, options);
        return json_text(unimem::cli::replay_document(replays, selection.front(), options));
      },
      nb::arg("path"), nb::arg("stacks"), nb::arg("device"), nb::arg("repeat"), nb::arg("progress").none(),
      nb::arg("streams") = 1);

  nb::class_<PyBuffer>(m, "Buffer", nb::type_slots(buffer_slots))
      .def_prop_ro("nbytes", &PyBuffer::nbytes)
      .def_prop_ro("device",
                   [](const PyBuffer& b) { return unimem::to_string(b.allocation->buffer.device()); })
      .def_prop_ro(
          "kind",
          [](const PyBuffer& b) { return std::string(unimem::to_string(b.allocation->buffer.kind())); })
      .def_prop_ro("host_visible", &PyBuffer::host_visible)
      .def_prop_ro("shape", [](const PyBuffer& b) { return shape_tuple(b.shape); })
      .def_prop_ro("address",
                   [](const PyBuffer& b) { return reinterpret_cast<std::uintptr_t>(b.host_data("address")); })
      .def("copy_from",
           [](const PyBuffer& b, nb::handle source) {
             const HostBytes bytes(source, false, b.nbytes(), "copy_from");
             nb::gil_scoped_release release;
             b.view().copy_from_host(bytes.data(), b.view().size(), 0);
           })
      .def("copy_to",
           [](const PyBuffer& b, nb::handle target) {
             const HostBytes bytes(target, true, b.nbytes(), "copy_to");
             nb::gil_scoped_release release;
             b.view().copy_to_host(bytes.data(), b.view().size(), 0);
           })
      .def("__dlpack_device__", &PyBuffer::dlpack_device)
      .def("__dlpack__",
           // nanobind's array-API object answers the protocol's versions and keyword arguments.
           [](const PyBuffer& b, const nb::args& args, const nb::kwargs& kwargs) {
             return b.as_array_api().attr("__dlpack__")(*args, **kwargs);
           })
      .def_prop_ro("__array_interface__", [](const PyBuffer& b) {
        nb::dict out;
        out["shape"] = shape_tuple(b.shape);
        out["typestr"] = b.dtype_name;
        out["data"] =
            nb::make_tuple(reinterpret_cast<std::uintptr_t>(b.host_data("__array_interface__")), false);
        out["version"] = 3;
        return out;
      });

  nb::class_<PyNamedBuffer>(m, "NamedBuffer")
      .def_prop_ro("name", [](const PyNamedBuffer& b) { return b.name; })
      .def_prop_ro("nbytes", [](const PyNamedBuffer& b) { return b.view().size(); })
      .def_prop_ro("device", [](const PyNamedBuffer& b) { return unimem::to_string(b.view().device()); })
      .def_prop_ro("kind",
                   [](const PyNamedBuffer& b) { return std::string(unimem::to_string(b.view().kind())); })
      .def("copy_from", &PyNamedBuffer::copy_from, nb::arg("source"))
      .def("copy_to", &PyNamedBuffer::copy_to, nb::arg("target"))
      .def("ensure_capacity",
           [](const PyNamedBuffer& b, long long nbytes) {
             const std::size_t bytes = positive_size(nbytes, "ensure_capacity: nbytes");
             nb::gil_scoped_release release;
             (void)b.manager->named().grow<std::byte>(b.name, bytes);
           })
      .def("free",
           [](const PyNamedBuffer& b) {
             nb::gil_scoped_release release;
             b.manager->named().free(b.name);
           })
      .def("__repr__", [](const PyNamedBuffer& b) {
        return "<unimem.NamedBuffer " + unimem::quoted(b.name) +
               (b.manager->named().contains(b.name) ? ", " + std::to_string(b.view().size()) + " bytes>"
                                                    : ", freed>");
      });

  nb::class_<PyManager>(m, "MemoryManager")
      .def(
          nb::init<std::optional<std::string>, const std::vector<std::string>&, std::optional<std::string>>(),
          nb::arg("config").none() = nb::none(), nb::arg("simulated") = std::vector<std::string>{},
          nb::arg("default_device").none() = nb::none())
      .def("allocate", &PyManager::allocate, nb::arg("size"), nb::arg("mode") = "pooled",
           nb::arg("device").none() = nb::none())
      .def("devices",
           [](const PyManager& self) {
             std::vector<std::string> out;
             for (const DeviceId& id : self.manager->devices()) out.push_back(unimem::to_string(id));
             return out;
           })
      .def_prop_ro("default_device",
                   [](const PyManager& self) { return unimem::to_string(self.manager->default_device()); })
      .def(
          "stats",
          [](const PyManager& self, const std::optional<std::string>& device) {
            const std::optional<DeviceId> id = self.device_of(device);
            return stats_dict(id ? self.manager->stats(*id) : self.manager->stats());
          },
          nb::arg("device").none() = nb::none())
      .def("pressure",
           [](const PyManager& self, const std::string& device) {
             return std::string(
                 unimem::to_string(self.manager->pressure(unimem::cli::parse_device_id(device))));
           })
      .def("on_pressure_change",
           [](PyManager& self, nb::object callback) {
             if (!PyCallable_Check(callback.ptr()))
               throw unimem::TypeMismatch("on_pressure_change: the callback is not callable");
             std::shared_ptr<nb::object> kept = keep(std::move(callback));
             return self.manager->on_pressure_change(
                 [kept](DeviceId device, unimem::PressureLevel previous, unimem::PressureLevel current) {
                   nb::gil_scoped_acquire acquire;
                   try {
                     (*kept)(unimem::to_string(device), std::string(unimem::to_string(previous)),
                             std::string(unimem::to_string(current)));
                   } catch (nb::python_error& e) {
                     // The allocation that changed the level must not fail for it: report it as Python
                     // reports errors it cannot raise (sys.unraisablehook).
                     e.discard_as_unraisable(kept->ptr());
                   }
                 });
           })
      .def("remove_pressure_callback",
           [](PyManager& self, std::uint64_t id) { return self.manager->remove_pressure_callback(id); })
      .def("leak_report", [](const PyManager& self) { return self.manager->leak_report(); })
      .def("trim",
           [](PyManager& self) {
             nb::gil_scoped_release release;
             return self.manager->trim();
           })
      .def(
          "create_named",
          [](PyManager& self, const std::string& name, long long nbytes, std::string_view mode,
             const std::optional<std::string>& device) {
            unimem::BufferConfig config;
            config.mode = parse_mode(mode);
            config.device = self.device_of(device);
            const std::size_t bytes = positive_size(nbytes, "create_named: nbytes");
            {
              nb::gil_scoped_release release;
              (void)self.manager->named().create<std::byte>(name, bytes, config);
            }
            return PyNamedBuffer{self.manager, name};
          },
          nb::arg("name"), nb::arg("nbytes"), nb::arg("mode") = "pooled",
          nb::arg("device").none() = nb::none())
      .def("named",
           [](const PyManager& self, const std::string& name) {
             (void)self.manager->named().get<std::byte>(name);  // InvalidArgument naming an unknown name
             return PyNamedBuffer{self.manager, name};
           })
      .def("free_named",
           [](PyManager& self, const std::string& name) {
             nb::gil_scoped_release release;
             self.manager->named().free(name);
           })
      .def("has_named", [](const PyManager& self,
                           const std::string& name) { return self.manager->named().contains(name); })
      .def("named_bytes", [](const PyManager& self) { return self.manager->named().bytes(); });
}
