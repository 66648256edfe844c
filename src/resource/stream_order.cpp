#include "resource/stream_order.hpp"

#include <mutex>
#include <string>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem::detail {

FenceSlot* StreamOrder::attach_slot() {
  const std::lock_guard lock(mutex_);
  if (!unused_.empty()) {
    FenceSlot* slot = unused_.back();
    unused_.pop_back();
    slot->holders = 1;
    return slot;
  }
  unused_.reserve(slots_.size() + 1);  // so that drop() never allocates
  auto slot = std::make_unique<FenceSlot>();
  slot->event = pool_.backend().create_event(pool_.device().index);
  slot->holders = 1;
  slots_.push_back(std::move(slot));
  return slots_.back().get();
}

void StreamOrder::mark_free_on(FreeFence& fence, Stream& stream) {
  try {
    if (fence.slot != nullptr && fence.slot->holders != 1) drop(fence);
    if (fence.slot == nullptr) fence.slot = attach_slot();
    fence.slot->event->record(stream);
    fence.stream = &stream;
  } catch (const std::exception& e) {
    // No event to order the reuse by: wait for the stream, so that the range is free in host order.
    report_misuse(std::string(pool_name_) + "::deallocate: no event to mark the free on " +
                  to_string(stream.device()) + " (" + e.what() + "); synchronizing the stream instead");
    stream.synchronize();
    drop(fence);
  }
}

bool StreamOrder::completed(const FreeFence& fence) noexcept {
  if (fence.stream == nullptr) return true;
  try {
    return fence.slot->event->query();
  } catch (const std::exception&) {
    return false;
  }
}

void StreamOrder::wait_pending(const FreeFence& fence, Stream* user) {
  if (completed(fence)) return;
  if (user != nullptr) {
    fence.slot->event->make_wait(*user);
  } else {
    fence.slot->event->synchronize();
  }
}

void StreamOrder::release_slot(FenceSlot* slot) noexcept {
  const std::lock_guard lock(mutex_);
  unused_.push_back(slot);  // never allocates: attach_slot() reserved room
}

FenceMerge StreamOrder::merge_plan_pending(const FreeFence& own, const FreeFence& neighbour) noexcept {
  if (completed(neighbour)) return FenceMerge::KeepOwn;
  if (completed(own)) return FenceMerge::TakeNeighbours;
  return FenceMerge::No;
}

void StreamOrder::settle(FreeFence& fence, const Stream* releasing) noexcept {
  if (fence.stream != nullptr && fence.stream != releasing) {
    try {
      fence.slot->event->synchronize();
    } catch (const std::exception& e) {
      report_misuse(std::string(pool_name_) +
                    ": waiting for a free's event before returning memory upstream: " + e.what());
    }
  }
  drop(fence);
}

}  // namespace unimem::detail
