#pragma once
// ResourceStack: owns a chain of resources built bottom-up (upstream first, then pools and adaptors that wrap
// it) and destroys them top-down, so no resource outlives what it wraps. Resources themselves hold their
// upstream by reference and own nothing; the stack is what owns them.

#include <memory>
#include <utility>
#include <vector>

#include "unimem/core/error.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem {

class ResourceStack {
 public:
  ResourceStack() = default;
  ~ResourceStack() {
    while (!layers_.empty()) layers_.pop_back();
  }
  ResourceStack(const ResourceStack&) = delete;
  ResourceStack& operator=(const ResourceStack&) = delete;
  ResourceStack(ResourceStack&&) noexcept = default;
  ResourceStack& operator=(ResourceStack&& other) noexcept {
    while (!layers_.empty()) layers_.pop_back();
    layers_ = std::move(other.layers_);
    return *this;
  }

  // Constructs R from `args` and puts it on top. Typically: stack.push<CoalescingPool>(stack.top(), options).
  template <typename R, typename... Args>
  R& push(Args&&... args) {
    auto layer = std::make_unique<R>(std::forward<Args>(args)...);
    R& ref = *layer;
    layers_.push_back(std::move(layer));
    return ref;
  }

  [[nodiscard]] bool empty() const noexcept { return layers_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return layers_.size(); }
  // The resource users allocate from. Throws InvalidArgument on an empty stack.
  [[nodiscard]] MemoryResource& top() const {
    if (layers_.empty()) throw InvalidArgument("ResourceStack::top: the stack is empty");
    return *layers_.back();
  }
  // Layer i, 0 being the upstream.
  [[nodiscard]] MemoryResource& layer(std::size_t i) const {
    if (i >= layers_.size()) {
      throw InvalidArgument("ResourceStack::layer: index " + std::to_string(i) + " is past the " +
                            std::to_string(layers_.size()) + " layers");
    }
    return *layers_[i];
  }

 private:
  std::vector<std::unique_ptr<MemoryResource>> layers_;
};

}  // namespace unimem
