#include "unimem/resource/size_class_pool.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "resource/pool_support.hpp"
#include "unimem/backend/backend.hpp"
#include "unimem/core/cache_aligned.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {

constexpr std::uint32_t kNoRecord = std::numeric_limits<std::uint32_t>::max();
// Blocks moved between a thread's cache and the central list at once, at most.
constexpr std::size_t kMaxBatch = 16;

// Test-and-test-and-set lock. A thread cache's lists are taken by their own thread on every call and by other
// threads only when shrink(), stats() or a pool's destruction visits them, so it is almost never contended.
class SpinLock {
 public:
  void lock() noexcept {
    while (locked_.exchange(true, std::memory_order_acquire)) {
      while (locked_.load(std::memory_order_relaxed)) std::this_thread::yield();
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// One block's bookkeeping. The atomics are what deallocate() compares a caller's Allocation with before it
// owns the block (the generation in `state` changes every time the block is handed out); the other fields
// belong to whoever holds the block: a cache, or the thread allocating or freeing it.
struct alignas(kCacheLine) BlockRecord {
  std::atomic<std::uint64_t> state{0};  // generation << 1 | live
  std::atomic<const Segment*> segment{nullptr};
  std::atomic<std::size_t> offset{0};
  std::atomic<std::size_t> size{0};
  Allocation upstream;                // empty while the record holds no block
  std::size_t size_class = 0;         // class index; class_count for an oversized request
  Stream* freed_on = nullptr;         // set while the free's event may not have completed
  std::unique_ptr<Event> free_event;  // created on the first free on a stream, then recorded again each time
};
static_assert(sizeof(BlockRecord) <= 2 * kCacheLine, "a block's bookkeeping outgrew two cache lines");

// Records sit in chunks that never move (chunk k holds 64 << k of them), so deallocate() finds one by index
// without a lock while the table grows.
class BlockTable {
 public:
  BlockTable() = default;
  ~BlockTable() {
    for (auto& chunk : chunks_) delete[] chunk.load(std::memory_order_relaxed);
  }
  BlockTable(const BlockTable&) = delete;
  BlockTable& operator=(const BlockTable&) = delete;
  BlockTable(BlockTable&&) = delete;
  BlockTable& operator=(BlockTable&&) = delete;

  [[nodiscard]] std::uint32_t size() const noexcept { return size_.load(std::memory_order_acquire); }

  // The record at `index`, or nullptr when there is none.
  [[nodiscard]] BlockRecord* find(std::uint32_t index) const noexcept {
    return index < size() ? &at(index) : nullptr;
  }

  [[nodiscard]] BlockRecord& at(std::uint32_t index) const noexcept {
    const std::uint64_t position = std::uint64_t{index} + kFirstChunk;
    const auto chunk = static_cast<unsigned>(std::bit_width(position)) - 1U - kFirstChunkBits;
    return chunks_[chunk].load(std::memory_order_acquire)[position - (kFirstChunk << chunk)];
  }

  // A record for a new block: one retired earlier, or a new one.
  std::uint32_t acquire() {
    const std::lock_guard lock(mutex_);
    if (!retired_.empty()) {
      const std::uint32_t index = retired_.back();
      retired_.pop_back();
      return index;
    }
    const std::uint32_t index = size_.load(std::memory_order_relaxed);
    if (index == kNoRecord) throw Error("SizeClassPool: more than 4294967294 blocks");
    const std::uint64_t position = std::uint64_t{index} + kFirstChunk;
    if (std::has_single_bit(position)) {
      const auto chunk = static_cast<unsigned>(std::bit_width(position)) - 1U - kFirstChunkBits;
      chunks_[chunk].store(new BlockRecord[kFirstChunk << chunk], std::memory_order_release);
    }
    retired_.reserve(std::size_t{index} + 1);  // so that retire() never allocates
    size_.store(index + 1, std::memory_order_release);
    return index;
  }

  void retire(std::uint32_t index) noexcept {
    const std::lock_guard lock(mutex_);
    retired_.push_back(index);
  }

 private:
  static constexpr unsigned kFirstChunkBits = 6;
  static constexpr std::uint64_t kFirstChunk = std::uint64_t{1} << kFirstChunkBits;
  static constexpr std::size_t kChunks = 33 - kFirstChunkBits;  // enough for every 32-bit index

  std::array<std::atomic<BlockRecord*>, kChunks> chunks_{};
  std::atomic<std::uint32_t> size_{0};
  std::mutex mutex_;
  std::vector<std::uint32_t> retired_;
};

struct ClassCounters {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t returns = 0;
  std::size_t in_use_bytes = 0;  // modular: a block allocated through one cache may be freed through another

  void add(const ClassCounters& other) noexcept {
    hits += other.hits;
    misses += other.misses;
    returns += other.returns;
    in_use_bytes += other.in_use_bytes;
  }
};

// Free blocks of one class in one cache, and that cache's counts for the class.
struct ClassList {
  SpinLock lock;
  std::vector<std::uint32_t> blocks;
  ClassCounters counters;
};

// One list per class, plus one (never holding blocks) that counts oversized requests.
struct BlockCache {
  BlockCache(std::size_t lists, std::size_t reserve)
      : classes(std::make_unique<CacheAligned<ClassList>[]>(lists)) {
    for (std::size_t c = 0; c < lists; ++c) classes[c]->blocks.reserve(reserve);
  }
  ClassList& operator[](std::size_t c) noexcept { return *classes[c]; }

  std::unique_ptr<CacheAligned<ClassList>[]> classes;
};

std::atomic<std::uint64_t> g_next_pool_id{1};

}  // namespace

namespace detail {

struct ThreadCache;

// Shared by a pool and every thread cache of it, so that whichever goes first (the pool, or a thread that
// exits) can find the other safely.
struct CacheRegistry {
  std::mutex mutex;
  SizeClassState* state = nullptr;  // nullptr once the pool is gone
  std::vector<ThreadCache*> caches;
};

struct ThreadCache {
  ThreadCache(std::uint64_t pool, std::shared_ptr<CacheRegistry> owner, std::size_t lists,
              std::size_t reserve)
      : pool_id(pool), registry(std::move(owner)), cache(lists, reserve) {}

  std::uint64_t pool_id;
  std::shared_ptr<CacheRegistry> registry;
  BlockCache cache;
};

// The caches of the calling thread, one per pool it has used.
struct ThreadCaches {
  ThreadCaches() = default;
  ~ThreadCaches();
  ThreadCaches(const ThreadCaches&) = delete;
  ThreadCaches& operator=(const ThreadCaches&) = delete;
  ThreadCaches(ThreadCaches&&) = delete;
  ThreadCaches& operator=(ThreadCaches&&) = delete;

  BlockCache& find_or_create(SizeClassState& state);

  std::uint64_t last_pool = 0;
  BlockCache* last = nullptr;
  std::vector<std::unique_ptr<ThreadCache>> caches;
};

thread_local ThreadCaches t_caches;

struct SizeClassState {
  SizeClassState(SizeClassPool& owner, MemoryResource& upstream_resource, std::size_t classes)
      : pool(owner),
        upstream(upstream_resource),
        options(owner.options()),
        class_count(classes),
        batch(std::clamp<std::size_t>(options.max_pooled_per_bucket / 2, 1, kMaxBatch)),
        reserve(std::min<std::size_t>(options.max_pooled_per_bucket, 64)),
        id(g_next_pool_id.fetch_add(1, std::memory_order_relaxed)),
        central(classes + 1, reserve),
        registry(std::make_shared<CacheRegistry>()),
        retired(classes + 1),
        releases(std::make_unique<std::atomic<std::uint64_t>[]>(classes)) {
    registry->state = this;
  }

  SizeClassPool& pool;
  MemoryResource& upstream;
  const SizeClassPoolOptions& options;
  const std::size_t class_count;
  const std::size_t batch;
  const std::size_t reserve;  // list capacity set aside up front
  const std::uint64_t id;     // unique for the program's life: thread caches find their pool by it

  BlockTable table;
  BlockCache central;
  std::shared_ptr<CacheRegistry> registry;
  std::vector<ClassCounters> retired;  // counts of caches whose threads have exited (registry mutex)
  std::unique_ptr<std::atomic<std::uint64_t>[]> releases;  // per class
  std::atomic<std::size_t> reserved{0};
  std::atomic<std::uint64_t> upstream_allocations{0};
  std::atomic<std::uint64_t> upstream_deallocations{0};

  [[nodiscard]] std::size_t class_size(std::size_t c) const noexcept { return options.min_block << c; }

  BlockCache& local_cache() {
    if (!options.per_thread_cache) return central;
    ThreadCaches& mine = t_caches;
    if (mine.last_pool == id) [[likely]] {
      return *mine.last;
    }
    return mine.find_or_create(*this);
  }

  BlockCache& local_cache_or_central() noexcept {
    try {
      return local_cache();
    } catch (const std::exception&) {
      return central;  // no memory for a new thread cache: the central lists still work
    }
  }

  // --- allocation ---

  Allocation publish(std::uint32_t index, std::size_t bytes, std::size_t alignment) noexcept {
    BlockRecord& r = table.at(index);
    const std::size_t offset =
        r.upstream.offset + detail::alignment_padding(*r.upstream.segment, r.upstream.offset, alignment);
    r.segment.store(r.upstream.segment, std::memory_order_relaxed);
    r.offset.store(offset, std::memory_order_relaxed);
    r.size.store(bytes, std::memory_order_relaxed);
    const std::uint32_t generation =
        detail::next_generation(static_cast<std::uint32_t>(r.state.load(std::memory_order_relaxed) >> 1U));
    r.state.store((std::uint64_t{generation} << 1U) | 1U, std::memory_order_release);
    return Allocation{r.upstream.segment, offset, bytes, detail::make_cookie(index, generation)};
  }

  // Asks upstream; when it is out of memory, gives every cached block back and asks once more.
  Allocation allocate_upstream(std::size_t bytes, Stream* stream, std::size_t alignment) {
    try {
      return upstream.allocate(bytes, stream, alignment);
    } catch (const OutOfMemory&) {
      if (pool.shrink(0) == 0) throw;
    }
    return upstream.allocate(bytes, stream, alignment);
  }

  // A new block of class `c` from upstream, counted as a miss in `list`.
  std::uint32_t new_block(ClassList& list, std::size_t c) {
    const std::uint32_t index = table.acquire();
    BlockRecord& r = table.at(index);
    try {
      r.upstream = allocate_upstream(class_size(c), nullptr, kDefaultAlignment);
    } catch (...) {
      table.retire(index);
      throw;
    }
    r.size_class = c;
    reserved.fetch_add(class_size(c), std::memory_order_relaxed);
    upstream_allocations.fetch_add(1, std::memory_order_relaxed);
    list.lock.lock();
    ++list.counters.misses;
    list.counters.in_use_bytes += class_size(c);
    list.lock.unlock();
    return index;
  }

  // Moves up to a batch of class-`c` blocks from the central list into `cache`, counting a hit, and returns
  // one of them; kNoRecord when the central list is empty.
  std::uint32_t refill(BlockCache& cache, std::size_t c) noexcept {
    std::array<std::uint32_t, kMaxBatch> moved{};
    std::size_t count = 0;
    ClassList& shared = central[c];
    shared.lock.lock();
    while (count < batch && !shared.blocks.empty()) {
      moved[count++] = shared.blocks.back();
      shared.blocks.pop_back();
    }
    shared.lock.unlock();
    if (count == 0) return kNoRecord;
    ClassList& list = cache[c];
    list.lock.lock();
    list.blocks.insert(list.blocks.end(), moved.begin() + 1,
                       moved.begin() + static_cast<std::ptrdiff_t>(count));
    ++list.counters.hits;
    list.counters.in_use_bytes += class_size(c);
    list.lock.unlock();
    return moved[0];
  }

  Allocation allocate(std::size_t c, std::size_t bytes, Stream* stream, std::size_t alignment) {
    BlockCache& cache = local_cache();
    ClassList& list = cache[c];
    std::uint32_t index = kNoRecord;
    list.lock.lock();
    if (!list.blocks.empty()) {
      index = list.blocks.back();
      list.blocks.pop_back();
      ++list.counters.hits;
      list.counters.in_use_bytes += class_size(c);
    }
    list.lock.unlock();
    if (index == kNoRecord && &cache != &central) index = refill(cache, c);
    if (index == kNoRecord) return publish(new_block(list, c), bytes, alignment);
    BlockRecord& r = table.at(index);
    if (r.freed_on != nullptr && r.freed_on != stream) {
      try {
        if (!r.free_event->query()) detail::wait_for_event(*r.free_event, stream);
      } catch (...) {
        list.lock.lock();
        --list.counters.hits;
        list.counters.in_use_bytes -= class_size(c);
        list.blocks.push_back(index);
        list.lock.unlock();
        throw;
      }
    }
    r.freed_on = nullptr;
    return publish(index, bytes, alignment);
  }

  // Straight from upstream, at kDefaultAlignment with room to align inside, so that alignment follows the
  // pools' one rule whatever the upstream's is.
  Allocation allocate_oversized(std::size_t bytes, Stream* stream, std::size_t alignment) {
    const std::size_t footprint = checked_add(bytes, detail::alignment_slack(alignment));
    const std::uint32_t index = table.acquire();
    BlockRecord& r = table.at(index);
    try {
      r.upstream = allocate_upstream(footprint, stream, kDefaultAlignment);
    } catch (...) {
      table.retire(index);
      throw;
    }
    r.size_class = class_count;
    reserved.fetch_add(footprint, std::memory_order_relaxed);
    upstream_allocations.fetch_add(1, std::memory_order_relaxed);
    ClassList& list = local_cache_or_central()[class_count];
    list.lock.lock();
    ++list.counters.misses;
    list.counters.in_use_bytes += footprint;
    list.lock.unlock();
    return publish(index, bytes, alignment);
  }

  // --- deallocation ---

  // Claims the block `allocation` names for the caller: false (and nothing changed) unless it is live here.
  [[nodiscard]] bool claim(const Allocation& allocation) noexcept {
    BlockRecord* r = table.find(detail::cookie_index(allocation.cookie));
    std::uint64_t live = (std::uint64_t{detail::cookie_generation(allocation.cookie)} << 1U) | 1U;
    return r != nullptr && r->state.load(std::memory_order_acquire) == live &&
           r->segment.load(std::memory_order_relaxed) == allocation.segment &&
           r->offset.load(std::memory_order_relaxed) == allocation.offset &&
           r->size.load(std::memory_order_relaxed) == allocation.size &&
           r->state.compare_exchange_strong(live, live & ~std::uint64_t{1}, std::memory_order_acq_rel);
  }

  // Gives a block upstream. A block freed on `stream` itself goes back in that stream's order; one freed on
  // another stream is waited for first, since that stream may be gone by now.
  void release(std::uint32_t index, Stream* stream) noexcept {
    BlockRecord& r = table.at(index);
    Stream* order = nullptr;
    if (r.freed_on != nullptr) {
      if (r.freed_on == stream) {
        order = stream;
      } else {
        detail::settle_event(*r.free_event);
      }
      r.freed_on = nullptr;
    }
    upstream.deallocate(r.upstream, order);
    reserved.fetch_sub(r.upstream.size, std::memory_order_relaxed);
    upstream_deallocations.fetch_add(1, std::memory_order_relaxed);
    if (r.size_class < class_count) releases[r.size_class].fetch_add(1, std::memory_order_relaxed);
    r.upstream = Allocation{};
    table.retire(index);
  }

  // Records the free of `r` on `stream`; false when no event could be recorded.
  bool mark_free(BlockRecord& r, Stream& stream) noexcept {
    try {
      if (!r.free_event) r.free_event = pool.backend().create_event(pool.device().index);
      r.free_event->record(stream);
      r.freed_on = &stream;
      return true;
    } catch (const std::exception& e) {
      report_misuse(std::string("SizeClassPool::deallocate: no event to mark the free on ") +
                    to_string(stream.device()) + " (" + e.what() + "); the block goes back upstream instead");
      r.freed_on = &stream;  // so that release() frees it in the stream's order
      return false;
    }
  }

  // Puts blocks (the first one just freed) into the central list of class `c`; those that do not fit go
  // upstream.
  void spill(std::size_t c, const std::uint32_t* blocks, std::size_t count, Stream* stream) noexcept {
    std::size_t kept = 0;
    ClassList& shared = central[c];
    shared.lock.lock();
    while (kept < count && shared.blocks.size() < options.max_pooled_per_bucket) {
      shared.blocks.push_back(blocks[kept++]);
    }
    if (kept != 0) ++shared.counters.returns;
    shared.lock.unlock();
    for (std::size_t i = kept; i < count; ++i) release(blocks[i], stream);
  }

  void free_block(std::uint32_t index, Stream* stream) noexcept {
    BlockRecord& r = table.at(index);
    const std::size_t c = r.size_class;
    const bool fenced = stream == nullptr || mark_free(r, *stream);
    BlockCache& cache = local_cache_or_central();
    ClassList& list = cache[c];
    list.lock.lock();
    list.counters.in_use_bytes -= class_size(c);
    if (fenced && list.blocks.size() < options.max_pooled_per_bucket) {
      list.blocks.push_back(index);
      ++list.counters.returns;
      list.lock.unlock();
      return;
    }
    if (!fenced || &cache == &central) {
      list.lock.unlock();
      release(index, stream);
      return;
    }
    // The thread's cache of this class is full: a batch goes to the central list.
    std::array<std::uint32_t, kMaxBatch> moved{};
    std::size_t count = 0;
    moved[count++] = index;
    while (count < batch && !list.blocks.empty()) {
      moved[count++] = list.blocks.back();
      list.blocks.pop_back();
    }
    list.lock.unlock();
    spill(c, moved.data(), count, stream);
  }

  void free_oversized(std::uint32_t index, Stream* stream) noexcept {
    BlockRecord& r = table.at(index);
    ClassList& list = local_cache_or_central()[class_count];
    list.lock.lock();
    list.counters.in_use_bytes -= r.upstream.size;
    list.lock.unlock();
    upstream.deallocate(r.upstream, stream);
    reserved.fetch_sub(r.upstream.size, std::memory_order_relaxed);
    upstream_deallocations.fetch_add(1, std::memory_order_relaxed);
    r.upstream = Allocation{};
    table.retire(index);
  }

  // --- caches ---

  // Calls `visit(list, class)` for every list of every cache (central, live threads' caches), each under its
  // lock, with the registry mutex held.
  template <typename Visit>
  void for_each_list(Visit&& visit) {
    const auto visit_cache = [&](BlockCache& cache) {
      for (std::size_t c = 0; c <= class_count; ++c) {
        ClassList& list = cache[c];
        list.lock.lock();
        visit(list, c);
        list.lock.unlock();
      }
    };
    visit_cache(central);
    for (ThreadCache* cache : registry->caches) visit_cache(cache->cache);
  }

  // Takes the cache of a thread that exits (registry mutex held): its blocks go to the central lists, its
  // counts to `retired`.
  void adopt(ThreadCache& cache) noexcept {
    std::erase(registry->caches, &cache);
    for (std::size_t c = 0; c <= class_count; ++c) {
      ClassList& list = cache.cache[c];
      list.lock.lock();
      retired[c].add(list.counters);
      std::vector<std::uint32_t> blocks = std::move(list.blocks);
      list.lock.unlock();
      if (!blocks.empty()) spill_all(c, blocks);
    }
  }

  void spill_all(std::size_t c, const std::vector<std::uint32_t>& blocks) noexcept {
    ClassList& shared = central[c];
    std::size_t kept = 0;
    shared.lock.lock();
    while (kept < blocks.size() && shared.blocks.size() < options.max_pooled_per_bucket) {
      shared.blocks.push_back(blocks[kept++]);
    }
    shared.lock.unlock();
    for (std::size_t i = kept; i < blocks.size(); ++i) release(blocks[i], nullptr);
  }
};

ThreadCaches::~ThreadCaches() {
  // Taken out first: handing blocks back may free them into an upstream that is itself a size-class pool,
  // which would look its cache up here again.
  const std::vector<std::unique_ptr<ThreadCache>> mine = std::move(caches);
  last_pool = 0;
  last = nullptr;
  for (const auto& cache : mine) {
    const std::lock_guard lock(cache->registry->mutex);
    if (cache->registry->state != nullptr) cache->registry->state->adopt(*cache);
  }
}

BlockCache& ThreadCaches::find_or_create(SizeClassState& state) {
  for (const auto& cache : caches) {
    if (cache->pool_id == state.id) {
      last_pool = state.id;
      last = &cache->cache;
      return cache->cache;
    }
  }
  // First use of this pool on this thread: drop the caches of pools destroyed since, then register one.
  std::erase_if(caches, [](const std::unique_ptr<ThreadCache>& cache) {
    const std::lock_guard lock(cache->registry->mutex);
    return cache->registry->state == nullptr;
  });
  caches.reserve(caches.size() + 1);
  auto cache = std::make_unique<ThreadCache>(state.id, state.registry, state.class_count + 1, state.reserve);
  {
    const std::lock_guard lock(state.registry->mutex);
    state.registry->caches.push_back(cache.get());
  }
  caches.push_back(std::move(cache));
  last_pool = state.id;
  last = &caches.back()->cache;
  return *last;
}

}  // namespace detail

SizeClassPool::SizeClassPool(MemoryResource& upstream, SizeClassPoolOptions options)
    : MemoryResource(upstream.backend(), upstream.device(), upstream.kind()),
      upstream_(upstream),
      options_(options),
      min_shift_(0),
      class_count_(0) {
  if (!is_power_of_two(options_.min_block) || !is_power_of_two(options_.max_block) ||
      options_.min_block > options_.max_block) {
    throw InvalidArgument("SizeClassPool: min_block " + std::to_string(options_.min_block) +
                          " and max_block " + std::to_string(options_.max_block) +
                          " must be powers of two with min_block <= max_block");
  }
  min_shift_ = static_cast<unsigned>(std::countr_zero(options_.min_block));
  class_count_ = static_cast<std::size_t>(std::countr_zero(options_.max_block)) - min_shift_ + 1;
  state_ = std::make_unique<detail::SizeClassState>(*this, upstream_, class_count_);
}

SizeClassPool::~SizeClassPool() {
  detail::SizeClassState& s = *state_;
  {
    const std::lock_guard lock(s.registry->mutex);
    s.for_each_list([](ClassList& list, std::size_t /*c*/) { list.blocks.clear(); });
    s.registry->state = nullptr;
    s.registry->caches.clear();
  }
  // Every record that holds a block gives it back, live or cached.
  std::size_t live = 0;
  std::size_t live_bytes = 0;
  for (std::uint32_t i = 0; i < s.table.size(); ++i) {
    BlockRecord& r = s.table.at(i);
    if (!r.upstream) continue;
    if ((r.state.load(std::memory_order_relaxed) & 1U) != 0) {
      ++live;
      live_bytes += r.upstream.size;
    }
    if (r.freed_on != nullptr) detail::settle_event(*r.free_event);
    upstream_.deallocate(r.upstream);
  }
  if (live != 0) {
    report_misuse("SizeClassPool on " + to_string(device()) + " destroyed with " + std::to_string(live) +
                  " live allocation(s) of " + std::to_string(live_bytes) + " bytes; returned them upstream");
  }
}

std::size_t SizeClassPool::block_size(std::size_t bytes, std::size_t alignment) const {
  const std::size_t footprint = checked_add(bytes, detail::alignment_slack(alignment));
  if (footprint > options_.max_block) return 0;
  const std::size_t c = footprint <= options_.min_block
                            ? 0
                            : static_cast<std::size_t>(std::bit_width(footprint - 1)) - min_shift_;
  return options_.min_block << c;
}

Allocation SizeClassPool::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  detail::check_pool_stream(*this, stream, "SizeClassPool");
  const std::size_t block = block_size(bytes, alignment);
  if (block == 0) return state_->allocate_oversized(bytes, stream, alignment);
  return state_->allocate(static_cast<std::size_t>(std::countr_zero(block)) - min_shift_, bytes, stream,
                          alignment);
}

bool SizeClassPool::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  detail::SizeClassState& s = *state_;
  if (!s.claim(allocation)) [[unlikely]] {
    report_misuse("SizeClassPool::deallocate on " + to_string(device()) + ": allocation of " +
                  std::to_string(allocation.size) + " bytes at offset " + std::to_string(allocation.offset) +
                  " is not live here: already freed, or allocated by another resource");
    return false;
  }
  if (!detail::is_pool_stream(*this, stream)) [[unlikely]] {
    report_misuse("SizeClassPool::deallocate on " + to_string(device()) + ": a stream of " +
                  to_string(stream->device()) + " cannot order this free; synchronizing it instead");
    try {
      stream->synchronize();
    } catch (const std::exception& e) {
      report_misuse(std::string("SizeClassPool::deallocate: ") + e.what() + "; the block stays out of use");
      return false;
    }
    stream = nullptr;
  }
  const std::uint32_t index = detail::cookie_index(allocation.cookie);
  if (s.table.at(index).size_class == s.class_count) {
    s.free_oversized(index, stream);
  } else {
    s.free_block(index, stream);
  }
  return true;
}

void SizeClassPool::clear() {
  (void)shrink(0);
}

std::size_t SizeClassPool::shrink(std::size_t max_blocks_per_class) {
  detail::SizeClassState& s = *state_;
  std::vector<std::uint32_t> excess;
  {
    const std::lock_guard lock(s.registry->mutex);
    s.for_each_list([&](ClassList& list, std::size_t /*c*/) {
      if (list.blocks.size() <= max_blocks_per_class) return;
      // The oldest frees (the front) are the coldest.
      const auto end = list.blocks.end() - static_cast<std::ptrdiff_t>(max_blocks_per_class);
      excess.insert(excess.end(), list.blocks.begin(), end);
      list.blocks.erase(list.blocks.begin(), end);
    });
  }
  std::size_t released = 0;
  for (const std::uint32_t index : excess) {
    released += s.table.at(index).upstream.size;
    s.release(index, nullptr);
  }
  return released;
}

SizeClassPoolStats SizeClassPool::stats() const {
  detail::SizeClassState& s = *state_;
  SizeClassPoolStats stats;
  stats.classes.resize(class_count_);
  std::vector<ClassCounters> totals;
  {
    const std::lock_guard lock(s.registry->mutex);
    totals = s.retired;
    s.for_each_list([&](ClassList& list, std::size_t c) {
      totals[c].add(list.counters);
      if (c < class_count_) stats.classes[c].cached_blocks += list.blocks.size();
    });
    stats.thread_caches = s.registry->caches.size();
  }
  for (std::size_t c = 0; c < class_count_; ++c) {
    SizeClassStats& figures = stats.classes[c];
    figures.block_size = s.class_size(c);
    figures.hits = totals[c].hits;
    figures.misses = totals[c].misses;
    figures.returns = totals[c].returns;
    figures.releases = s.releases[c].load(std::memory_order_relaxed);
    stats.hits += figures.hits;
    stats.misses += figures.misses;
    stats.returns += figures.returns;
    stats.releases += figures.releases;
    stats.cached_blocks += figures.cached_blocks;
    stats.cached_bytes += figures.cached_blocks * figures.block_size;
  }
  stats.oversized = totals[class_count_].misses;
  stats.misses += stats.oversized;
  return stats;
}

ResourceUsage SizeClassPool::do_usage() const {
  detail::SizeClassState& s = *state_;
  ResourceUsage usage;
  {
    const std::lock_guard lock(s.registry->mutex);
    for (const ClassCounters& counters : s.retired) {
      usage.cache_hits += counters.hits;
      usage.cache_misses += counters.misses;
      usage.in_use_bytes += counters.in_use_bytes;
    }
    s.for_each_list([&](ClassList& list, std::size_t c) {
      usage.cache_hits += list.counters.hits;
      usage.cache_misses += list.counters.misses;
      usage.in_use_bytes += list.counters.in_use_bytes;
      if (!list.blocks.empty())
        usage.largest_free_range = std::max(usage.largest_free_range, s.class_size(c));
    });
  }
  usage.reserved_bytes = s.reserved.load(std::memory_order_relaxed);
  usage.upstream_allocations = s.upstream_allocations.load(std::memory_order_relaxed);
  usage.upstream_deallocations = s.upstream_deallocations.load(std::memory_order_relaxed);
  return usage;
}

}  // namespace unimem

namespace unimem {

PoolSnapshot SizeClassPool::snapshot() const {
  const detail::SizeClassState& s = *state_;
  PoolSnapshot snapshot;
  snapshot.device = device();
  snapshot.kind = kind();
  snapshot.usage = usage();
  const std::uint32_t records = s.table.size();
  for (std::uint32_t index = 0; index < records; ++index) {
    const BlockRecord& r = s.table.at(index);
    if (!r.upstream) continue;  // the record holds no block
    const bool live = (r.state.load(std::memory_order_acquire) & 1U) != 0;
    RangeSnapshot range;
    range.size = r.upstream.size;
    range.allocated = live;
    range.requested = live ? r.size.load(std::memory_order_relaxed) : 0;
    range.stream = live ? 0 : reinterpret_cast<std::uintptr_t>(r.freed_on);
    snapshot.segments.push_back(SegmentSnapshot{r.upstream.segment->id,
                                                reinterpret_cast<std::uintptr_t>(r.upstream.address()),
                                                r.upstream.size,
                                                r.upstream.kind(),
                                                "size_class",
                                                {range}});
  }
  std::sort(snapshot.segments.begin(), snapshot.segments.end(),
            [](const SegmentSnapshot& a, const SegmentSnapshot& b) { return a.id < b.id; });
  return snapshot;
}

}  // namespace unimem
