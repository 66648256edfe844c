#pragma once
// Workspace: named scratch memory that is allocated once and reused, for the temporary buffers of a layer or
// a kernel sequence that runs again and again. Each name is a slot that only grows:
//
//   Workspace ws(device_resource);
//   ws.prepare({{"im2col", 64 * MiB}, {"partials", 4 * MiB}});  // before the loop: the largest sizes
//   for (...) {
//     BufferView<float> cols = ws.get<float>("im2col", n);       // no allocation: the slot is big enough
//     ws.zero("partials");                                        // in place
//   }
//
// reserve() and prepare() allocate only for a new name or a larger size, so calling them again with the same
// or smaller sizes allocates nothing. A slot that grows is reallocated (its contents are not kept). A slot
// remembers the element type of its first get<T>(); getting it as another type throws TypeMismatch naming
// both. Views returned by get() stay valid until their slot grows or the workspace is released.
//
// A Lease takes slots for its lifetime, so that two users of one workspace cannot scribble over each other:
// a slot a lease holds cannot be taken by another lease, obtained through Workspace::get, grown or released
// (InvalidArgument); the lease gives its slots back when it goes out of scope.
//
// The resource (and the stream, when given) must outlive the workspace; the memory goes back through
// resource.deallocate, ordered on that stream. NOT thread-safe, by design: a workspace belongs to one thread
// (one stream of work) at a time, which keeps get() a map lookup. Leases must not outlive their workspace.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "unimem/buffer/buffer_view.hpp"
#include "unimem/buffer/element_type.hpp"
#include "unimem/buffer/raw_view.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem {

class Workspace {
  struct Slot;

 public:
  struct Request {
    std::string_view name;
    std::size_t bytes = 0;
  };

  // Takes named slots for its lifetime and gives them back on destruction. Move-only.
  class Lease {
   public:
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;

    // As Workspace::get, and takes the slot: InvalidArgument when another lease holds it. Getting a slot
    // this lease already holds again is fine (it may grow while this lease is its only holder).
    template <typename T>
    [[nodiscard]] BufferView<T> get(std::string_view name, std::size_t count) {
      return BufferView<T>(workspace_->get_raw(name, element_type_of<T>(), count, this));
    }
    // Slots this lease holds.
    [[nodiscard]] std::size_t held() const noexcept { return slots_.size(); }

   private:
    friend class Workspace;
    explicit Lease(Workspace& workspace) noexcept;

    Workspace* workspace_;
    std::vector<Slot*> slots_;
  };

  explicit Workspace(MemoryResource& resource, Stream* stream = nullptr);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  Workspace(Workspace&&) = delete;
  Workspace& operator=(Workspace&&) = delete;

  // Makes slot `name` at least `bytes` long. Throws InvalidArgument for an empty name, zero bytes, or a slot
  // a lease holds that would have to grow; what the resource throws when it has no room (the slot then keeps
  // its old memory).
  void reserve(std::string_view name, std::size_t bytes);
  // reserve() for each request, in order (a name given twice ends up with the larger size). A failure leaves
  // the requests before it done.
  void prepare(std::span<const Request> requests);
  void prepare(std::initializer_list<Request> requests) {
    prepare(std::span(requests.begin(), requests.size()));
  }

  // The first `count` elements of slot `name`, reserving or growing it as needed. Throws InvalidArgument for
  // a zero count or a slot a lease holds, TypeMismatch when the slot already holds another element type.
  template <typename T>
  [[nodiscard]] BufferView<T> get(std::string_view name, std::size_t count) {
    return BufferView<T>(get_raw(name, element_type_of<T>(), count, nullptr));
  }
  // Sets every byte of slot `name` to zero, in place. Throws InvalidArgument for an unknown name.
  void zero(std::string_view name);

  // A lease that takes slots through Lease::get.
  [[nodiscard]] Lease lease() { return Lease(*this); }

  // Gives every slot's memory back. Throws InvalidArgument while a lease holds a slot.
  void release();

  [[nodiscard]] bool contains(std::string_view name) const { return slots_.find(name) != slots_.end(); }
  // The slot's memory, exactly as the resource returned it (its identity does not change until it grows).
  // Throws InvalidArgument for an unknown name.
  [[nodiscard]] const Allocation& allocation(std::string_view name) const;
  // The slot's size in bytes. Throws InvalidArgument for an unknown name.
  [[nodiscard]] std::size_t capacity(std::string_view name) const { return allocation(name).size; }
  [[nodiscard]] std::size_t slot_count() const noexcept { return slots_.size(); }
  // Bytes held by all slots.
  [[nodiscard]] std::size_t reserved_bytes() const noexcept { return reserved_bytes_; }
  // Allocations made from the resource since construction (growing a slot counts one).
  [[nodiscard]] std::uint64_t allocation_count() const noexcept { return allocation_count_; }
  [[nodiscard]] MemoryResource& resource() const noexcept { return *resource_; }

 private:
  struct Slot {
    Allocation allocation;
    ElementType element;  // unknown until the first get<T>()
    const Lease* holder = nullptr;
  };
  using SlotMap = std::map<std::string, Slot, std::less<>>;

  RawView get_raw(std::string_view name, ElementType element, std::size_t count, Lease* lease);
  // The slot `name`, at least `bytes` long; `lease` (may be null) is the caller. Validates as reserve().
  Slot& ensure(std::string_view name, std::size_t bytes, const Lease* lease);
  const Slot& find(std::string_view name, std::string_view operation) const;

  MemoryResource* resource_;
  Stream* stream_;
  SlotMap slots_;
  std::size_t reserved_bytes_ = 0;
  std::uint64_t allocation_count_ = 0;
  std::size_t live_leases_ = 0;
};

}  // namespace unimem
