#pragma once
// The memory the buffer tests run against: every backend of the shared test registry (host, the backed
// simulated device, OpenCL, CUDA) and every kind of memory with bytes behind it. A target whose backend,
// device or memory kind is missing skips with the reason.

#include <gtest/gtest.h>

#include <memory>
#include <numeric>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "backend/backend_fixture.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem::test {

struct MemoryTarget {
  const char* label;
  BackendKind backend;
  int device;
  MemoryKind kind;
};

// gtest prints a parameter that fails a test; the label says which target it was.
inline void PrintTo(const MemoryTarget& target, std::ostream* out) {
  *out << target.label;
}

inline std::string target_name(const ::testing::TestParamInfo<MemoryTarget>& info) {
  return info.param.label;
}

inline const std::vector<MemoryTarget>& memory_targets() {
  static const std::vector<MemoryTarget> targets = {
      {"host", BackendKind::Host, 0, MemoryKind::Device},
      {"sim_backed", BackendKind::Simulated, 0, MemoryKind::Device},
      {"opencl_device", BackendKind::OpenCL, 0, MemoryKind::Device},
      {"opencl_second_device", BackendKind::OpenCL, 1, MemoryKind::Device},
      {"opencl_pinned", BackendKind::OpenCL, 0, MemoryKind::PinnedHost},
      {"opencl_unified", BackendKind::OpenCL, 0, MemoryKind::Unified},
      {"cuda_device", BackendKind::Cuda, 0, MemoryKind::Device},
      {"cuda_pinned", BackendKind::Cuda, 0, MemoryKind::PinnedHost},
      {"cuda_unified", BackendKind::Cuda, 0, MemoryKind::Unified},
  };
  return targets;
}

// The shared registry's unbacked simulated device: allocations succeed, every copy throws NotSupported.
inline constexpr int kUnbackedSimDevice = 2;

// A resource for `target`, or nullptr with `why` saying what is missing.
inline std::unique_ptr<BackendResource> make_resource(const MemoryTarget& target, std::string& why) {
  Backend* backend = backend_with_devices(target.backend, why);
  if (backend == nullptr) return nullptr;
  if (target.device >= backend->device_count()) {
    why = std::string(to_string(target.backend)) + " has " + std::to_string(backend->device_count()) +
          " device(s), no device " + std::to_string(target.device);
    return nullptr;
  }
  if (!backend->supports(target.device, target.kind)) {
    why = to_string(DeviceId{target.backend, target.device}) + " does not serve " +
          std::string(to_string(target.kind)) + " memory";
    return nullptr;
  }
  return std::make_unique<BackendResource>(*backend, target.device, target.kind);
}

// A test that runs once per memory target, with a fresh resource for it.
class OnEveryTarget : public ::testing::TestWithParam<MemoryTarget> {
 protected:
  void SetUp() override {
    std::string why;
    resource_ = make_resource(GetParam(), why);
    if (resource_ == nullptr) GTEST_SKIP() << why;
  }

  [[nodiscard]] BackendResource& resource() const { return *resource_; }
  [[nodiscard]] Backend& backend() const { return resource_->backend(); }

 private:
  std::unique_ptr<BackendResource> resource_;
};

// Consecutive values from `start`: a copy of the wrong range, or at the wrong offset, shows as a wrong value.
template <typename T>
std::vector<T> ramp(std::size_t count, T start = T{1}) {
  std::vector<T> values(count);
  std::iota(values.begin(), values.end(), start);
  return values;
}

// The message of the E that `operation` throws; a test failure (and "") when it throws nothing.
template <typename E, typename Operation>
std::string message_of(Operation&& operation) {
  try {
    operation();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception, nothing was thrown";
  return {};
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

}  // namespace unimem::test
