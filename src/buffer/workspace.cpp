#include "unimem/buffer/workspace.hpp"

#include <string>
#include <utility>

#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {
std::string slot_name(std::string_view name) {
  return "workspace slot '" + std::string(name) + "'";
}
}  // namespace

Workspace::Lease::Lease(Workspace& workspace) noexcept : workspace_(&workspace) {
  ++workspace.live_leases_;
}

Workspace::Lease::Lease(Lease&& other) noexcept
    : workspace_(std::exchange(other.workspace_, nullptr)), slots_(std::move(other.slots_)) {
  for (Slot* slot : slots_) slot->holder = this;
}

Workspace::Lease::~Lease() {
  if (workspace_ == nullptr) return;
  for (Slot* slot : slots_) slot->holder = nullptr;
  --workspace_->live_leases_;
}

Workspace::Workspace(MemoryResource& resource, Stream* stream) : resource_(&resource), stream_(stream) {}

Workspace::~Workspace() {
  if (live_leases_ != 0) {
    report_misuse("Workspace on " + to_string(resource_->device()) + " destroyed while " +
                  std::to_string(live_leases_) + " lease(s) on it are alive; they must not be used again");
  }
  for (auto& [name, slot] : slots_) resource_->deallocate(slot.allocation, stream_);
}

void Workspace::reserve(std::string_view name, std::size_t bytes) {
  (void)ensure(name, bytes, nullptr);
}

void Workspace::prepare(std::span<const Request> requests) {
  for (const Request& request : requests) reserve(request.name, request.bytes);
}

Workspace::Slot& Workspace::ensure(std::string_view name, std::size_t bytes, const Lease* lease) {
  if (name.empty()) throw InvalidArgument("Workspace: a slot needs a name");
  if (bytes == 0) throw InvalidArgument("Workspace: zero bytes requested for " + slot_name(name));
  const auto it = slots_.find(name);
  if (it != slots_.end()) {
    Slot& slot = it->second;
    if (slot.allocation.size >= bytes) return slot;
    if (slot.holder != nullptr && slot.holder != lease) {
      throw InvalidArgument(slot_name(name) + " is held by a lease and cannot grow from " +
                            std::to_string(slot.allocation.size) + " to " + std::to_string(bytes) + " bytes");
    }
  }
  // Allocate before freeing, so that a slot whose growth fails keeps its memory.
  const Allocation grown = resource_->allocate(bytes, stream_);
  ++allocation_count_;
  if (it != slots_.end()) {
    Slot& slot = it->second;
    resource_->deallocate(slot.allocation, stream_);
    reserved_bytes_ -= slot.allocation.size;
    slot.allocation = grown;
    reserved_bytes_ += bytes;
    return slot;
  }
  try {
    Slot& slot = slots_.emplace(std::string(name), Slot{grown, ElementType{}, nullptr}).first->second;
    reserved_bytes_ += bytes;
    return slot;
  } catch (...) {
    resource_->deallocate(grown, stream_);
    throw;
  }
}

RawView Workspace::get_raw(std::string_view name, ElementType element, std::size_t count, Lease* lease) {
  if (count == 0) {
    throw InvalidArgument("Workspace::get: zero elements of " + std::string(element.name) +
                          " requested from " + slot_name(name));
  }
  const auto it = slots_.find(name);
  if (it != slots_.end()) {
    const Slot& slot = it->second;
    if (slot.holder != nullptr && slot.holder != lease) {
      throw InvalidArgument(slot_name(name) + (lease == nullptr
                                                   ? " is held by a lease; get it through that lease"
                                                   : " is held by another lease"));
    }
    if (slot.element.known()) require_element_type(slot.element, element, slot_name(name));
  }
  Slot& slot = ensure(name, checked_mul(count, element.size), lease);
  if (!slot.element.known()) slot.element = element;
  if (lease != nullptr && slot.holder == nullptr) {
    lease->slots_.push_back(&slot);
    slot.holder = lease;
  }
  return RawView(slot.allocation, element, count, stream_);
}

void Workspace::zero(std::string_view name) {
  const Slot& slot = find(name, "zero");
  RawView(slot.allocation, element_type_of<std::byte>(), slot.allocation.size, stream_).fill_bytes(0);
}

void Workspace::release() {
  for (const auto& [name, slot] : slots_) {
    if (slot.holder != nullptr)
      throw InvalidArgument("Workspace::release: " + slot_name(name) + " is held by a lease");
  }
  for (auto& [name, slot] : slots_) resource_->deallocate(slot.allocation, stream_);
  slots_.clear();
  reserved_bytes_ = 0;
}

const Allocation& Workspace::allocation(std::string_view name) const {
  return find(name, "allocation").allocation;
}

const Workspace::Slot& Workspace::find(std::string_view name, std::string_view operation) const {
  const auto it = slots_.find(name);
  if (it == slots_.end()) {
    throw InvalidArgument("Workspace::" + std::string(operation) + ": no " + slot_name(name) +
                          " (the workspace has " + std::to_string(slots_.size()) + " slots)");
  }
  return it->second;
}

}  // namespace unimem
