#pragma once
// StreamOrder: the one place where the pools apply the stream-ordering contract of memory_resource.hpp.
//
// A range freed on a stream carries a FreeFence: the stream, and an event recorded there at the free. The
// rule, written once here:
//   - a range freed in host order (no stream) is ready for every stream at once;
//   - a range freed on stream A is ready at once for A, and for any other user once the fence's event has
//     completed;
//   - otherwise the user is made to wait for the event (Event::make_wait: the host is not blocked; a null
//     user, host order, blocks the host);
//   - two adjacent free ranges merge when they share a stream, when one of them is ready for every stream,
//     or when one side's event has completed, and the merged range keeps the fence of the side still
//     pending;
//   - memory going back upstream is waited for first, unless it goes back on the very stream that freed it.
//
// Events are pooled per StreamOrder and reused: a fence's slot is recorded again at the next free of the
// same range (a block keeps its slot for its life), and ranges split from one freed range share its slot.
// Slots have stable addresses, so a fence is read without the StreamOrder's lock; the lock guards only the
// pool of unused slots. A fence is used by whoever holds its range (a pool's lock, or the thread that owns a
// cached block), never by two threads at once.

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "resource/pool_support.hpp"
#include "unimem/backend/stream.hpp"
#include "unimem/resource/memory_resource.hpp"

namespace unimem::detail {

struct FenceSlot {
  std::unique_ptr<Event> event;
  std::uint32_t holders = 0;  // fences that name this slot
};

struct FreeFence {
  Stream* stream = nullptr;   // the stream the range was freed on; nullptr once ready for every stream
  FenceSlot* slot = nullptr;  // the event recorded at the free; may stay attached after the fence cleared

  // True when `user` may take the range without asking the event: host order, or the freeing stream.
  [[nodiscard]] bool ready_at_once(const Stream* user) const noexcept {
    return stream == nullptr || stream == user;
  }
};

// What becomes of two adjacent free ranges' fences when they merge.
enum class FenceMerge : std::uint8_t { No, KeepOwn, TakeNeighbours };

class StreamOrder {
 public:
  // `pool` creates the events (its backend and device); `pool_name` names it in reports.
  StreamOrder(const MemoryResource& pool, std::string_view pool_name) noexcept
      : pool_(pool), pool_name_(pool_name) {}
  ~StreamOrder() = default;
  StreamOrder(const StreamOrder&) = delete;
  StreamOrder& operator=(const StreamOrder&) = delete;
  StreamOrder(StreamOrder&&) = delete;
  StreamOrder& operator=(StreamOrder&&) = delete;

  // Marks a free of the range holding `fence`, ordered on `stream` (nullptr: host order). The fence's slot is
  // recorded again when this fence alone holds it. When no event can be recorded the stream is synchronized
  // instead and the free counts as host-ordered (reported through report_misuse). Throws only what that
  // synchronize throws; the fence is then unchanged.
  void mark_free(FreeFence& fence, Stream* stream) {
    if (stream == nullptr) {
      drop(fence);
    } else {
      mark_free_on(fence, *stream);
    }
  }

  // True when the fence's event has completed (a fence without a stream always has); a failing query counts
  // as not yet.
  [[nodiscard]] bool completed(const FreeFence& fence) noexcept;
  // ready_at_once() or completed().
  [[nodiscard]] bool ready_for(const FreeFence& fence, const Stream* user) noexcept {
    return fence.ready_at_once(user) || completed(fence);
  }

  // Makes `user` (the host for nullptr) wait for the fence unless ready_for(user). Throws what the backend
  // throws. The fence stays: other parts of a split range are still ready only for their own stream.
  void wait(const FreeFence& fence, Stream* user) {
    if (!fence.ready_at_once(user)) wait_pending(fence, user);
  }
  // wait(), then clears the stream: the whole range is the user's. The slot stays attached for its next
  // free.
  void take(FreeFence& fence, Stream* user) {
    wait(fence, user);
    fence.stream = nullptr;
  }

  // A fence for a range split from the one holding `fence`: the same stream and slot.
  [[nodiscard]] static FreeFence share(const FreeFence& fence) noexcept {
    if (fence.slot != nullptr) ++fence.slot->holders;
    return fence;
  }
  // Detaches the fence from its slot (returned to the pool of slots when no fence holds it) and clears it.
  void drop(FreeFence& fence) noexcept {
    if (fence.slot != nullptr && --fence.slot->holders == 0) release_slot(fence.slot);
    fence = FreeFence{};
  }

  // Whether two adjacent free ranges may merge, and whose fence the merged range keeps.
  [[nodiscard]] FenceMerge merge_plan(const FreeFence& own, const FreeFence& neighbour) noexcept {
    if (own.stream == neighbour.stream || neighbour.stream == nullptr) return FenceMerge::KeepOwn;
    if (own.stream == nullptr) return FenceMerge::TakeNeighbours;
    return merge_plan_pending(own, neighbour);
  }

  // For memory about to go back upstream in the order of `releasing` (nullptr: host order): waits for the
  // fence's event unless the range was freed on `releasing` itself, then drops the fence. Never throws: a
  // failed wait is reported.
  void settle(FreeFence& fence, const Stream* releasing) noexcept;

 private:
  // The parts of mark_free, wait, drop and merge_plan past the host-order case, which pools take on every
  // call.
  void mark_free_on(FreeFence& fence, Stream& stream);
  void wait_pending(const FreeFence& fence, Stream* user);
  void release_slot(FenceSlot* slot) noexcept;
  [[nodiscard]] FenceMerge merge_plan_pending(const FreeFence& own, const FreeFence& neighbour) noexcept;
  FenceSlot* attach_slot();

  const MemoryResource& pool_;
  std::string_view pool_name_;
  PoolMutex mutex_;
  std::vector<std::unique_ptr<FenceSlot>> slots_;  // every slot made; addresses never move
  std::vector<FenceSlot*> unused_;
};

}  // namespace unimem::detail
