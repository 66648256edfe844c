#include "unimem/resource/size_class_pool.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "resource/pool_support.hpp"
#include "resource/stream_order.hpp"
#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {

constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
// Blocks moved between a thread's cache and the central lists at once, at most.
constexpr std::size_t kMaxBatch = 16;

// A counter written by one thread and read by any: a plain load and store, no read-modify-write.
template <typename T>
[[gnu::always_inline]] inline void bump(std::atomic<T>& counter, T by = 1) noexcept {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace

namespace detail {

// One block's bookkeeping, one cache line. The atomics are what deallocate() compares a caller's Allocation
// with before it owns the block (`state` steps by one at every hand-out and every free); the other fields
// belong to whoever holds the block: a cache, its chunk, or the thread allocating or freeing it.
struct alignas(kCacheLine) BlockRecord {
  // Odd while live. The value handed out is the cookie's generation: odd, so never 0, and 2^31 hand-outs
  // apart before it repeats.
  std::atomic<std::uint32_t> state{0};
  std::atomic<const Segment*> segment{nullptr};
  // Where the range handed out starts: the block's start + padding. A block not live has no padding
  // (deallocate_slow takes it off), so a cache hit hands it out as it is.
  std::atomic<std::size_t> offset{0};
  std::atomic<std::uint64_t> shape{0};  // bytes requested, padding and size class, packed (see Shape)
  BlockRecord* next = nullptr;          // the next block of the list holding this one
  detail::FreeFence fence;
  std::uint32_t index = 0;      // in the pool's table: what cookies name
  std::uint32_t chunk = kNone;  // the chunk it was carved from; kNone while the record holds no block
};

}  // namespace detail

namespace {

using detail::BlockRecord;

static_assert(sizeof(BlockRecord) == kCacheLine, "a block's bookkeeping outgrew its cache line");

// BlockRecord::shape: bits 0-5 the size class (class_count for an oversized request), 6-9 the padding in
// units of kDefaultAlignment, 10-63 the bytes requested. Packing keeps the record in one cache line.
struct Shape {
  static constexpr unsigned kPaddingShift = 6;
  static constexpr unsigned kBytesShift = 10;
  static constexpr std::uint64_t kMaxBytes = (std::uint64_t{1} << (64U - kBytesShift)) - 1;
  static constexpr std::size_t kMaxClasses = 63;  // class_count itself marks an oversized request

  static constexpr std::uint64_t make(std::size_t bytes, std::size_t size_class,
                                      std::size_t padding) noexcept {
    return (std::uint64_t{bytes} << kBytesShift) | ((padding / kDefaultAlignment) << kPaddingShift) |
           size_class;
  }
  static constexpr std::size_t bytes(std::uint64_t shape) noexcept { return shape >> kBytesShift; }
  static constexpr std::size_t size_class(std::uint64_t shape) noexcept { return shape & 63U; }
  // size_class() when the padding is 0, else 64 or more (above every class).
  static constexpr std::size_t class_unless_padded(std::uint64_t shape) noexcept {
    return shape & ((std::uint64_t{1} << kBytesShift) - 1);
  }
  static constexpr std::size_t padding(std::uint64_t shape) noexcept {
    return ((shape >> kPaddingShift) & 15U) * kDefaultAlignment;
  }
};
static_assert(MemoryResource::kMaxAlignment - kDefaultAlignment <= 15 * kDefaultAlignment,
              "the padding field cannot hold the largest alignment's padding");

// Records sit in chunks that never move (chunk k holds 64 << k of them), so deallocate() finds one by index
// without a lock while the table grows.
class BlockTable {
 public:
  BlockTable() = default;
  ~BlockTable() {
    for (BlockRecord* chunk : chunks_) delete[] chunk;
  }
  BlockTable(const BlockTable&) = delete;
  BlockTable& operator=(const BlockTable&) = delete;
  BlockTable(BlockTable&&) = delete;
  BlockTable& operator=(BlockTable&&) = delete;

  [[nodiscard]] std::uint32_t size() const noexcept { return size_.load(std::memory_order_acquire); }

  // The record at `index`, or nullptr when there is none.
  [[nodiscard, gnu::always_inline]] BlockRecord* find(std::uint32_t index) const noexcept {
    return index < size() ? &at(index) : nullptr;
  }

  // Chunk k holds positions (index + kFirstChunk) from kFirstChunk << k, so a position's top bit names its
  // chunk, and the chunk's start less its first position's records (`biased_`, kept as an integer: the
  // difference may point before the chunk) plus the position's records is the record.
  [[nodiscard, gnu::always_inline]] BlockRecord& at(std::uint32_t index) const noexcept {
    const std::uint64_t position = std::uint64_t{index} + kFirstChunk;
    const auto top = static_cast<unsigned>(std::countl_zero(position)) ^ 63U;
    // A builtin rather than std::atomic::load, which GCC may leave out of line on this hot path.
    const std::uintptr_t biased = __atomic_load_n(&biased_[top], __ATOMIC_ACQUIRE);
    // NOLINTNEXTLINE(performance-no-int-to-ptr): an address inside a live chunk, computed as an integer
    return *reinterpret_cast<BlockRecord*>(biased + position * sizeof(BlockRecord));
  }

  // A record for a new block: one retired earlier, or a new one. Called under the pool's central lock.
  BlockRecord* acquire() {
    if (!retired_.empty()) {
      BlockRecord* r = retired_.back();
      retired_.pop_back();
      return r;
    }
    const std::uint32_t index = size_.load(std::memory_order_relaxed);
    if (index == kNone) throw Error("SizeClassPool: more than 4294967294 blocks");
    const std::uint64_t position = std::uint64_t{index} + kFirstChunk;
    if (std::has_single_bit(position)) {
      const auto top = static_cast<unsigned>(std::bit_width(position)) - 1U;
      BlockRecord* chunk = new BlockRecord[position];  // chunk top - kFirstChunkBits holds `position` records
      chunks_[top - kFirstChunkBits] = chunk;
      __atomic_store_n(&biased_[top],
                       reinterpret_cast<std::uintptr_t>(chunk) - position * sizeof(BlockRecord),
                       __ATOMIC_RELEASE);
    }
    if (retired_.capacity() <= index) {  // so that retire() never allocates; doubling keeps this amortized
      retired_.reserve(std::max<std::size_t>(std::size_t{index} + 1, 2 * retired_.capacity()));
    }
    BlockRecord& r = at(index);
    r.index = index;
    size_.store(index + 1, std::memory_order_release);
    return &r;
  }

  // Called under the pool's central lock.
  void retire(BlockRecord* r) noexcept { retired_.push_back(r); }

 private:
  static constexpr unsigned kFirstChunkBits = 6;
  static constexpr std::uint64_t kFirstChunk = std::uint64_t{1} << kFirstChunkBits;
  static constexpr std::size_t kChunks = 33 - kFirstChunkBits;  // enough for every 32-bit index

  std::array<BlockRecord*, kChunks> chunks_{};  // for the destructor; at() reads biased_
  // By the position's top bit (chunk + kFirstChunkBits); read and written with __atomic builtins.
  std::array<std::uintptr_t, kChunks + kFirstChunkBits> biased_{};
  std::atomic<std::uint32_t> size_{0};
  std::vector<BlockRecord*> retired_;
};

// One class's list of free blocks in one cache, and that cache's counts for the class. In a thread's cache
// only its thread writes; the atomics are there so that stats() may read them from any thread.
struct ClassList {
  BlockRecord* head = nullptr;
  std::atomic<std::uint32_t> count{0};
  std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};
  std::atomic<std::uint64_t> returns{0};
};

// One list per class, plus one (never holding blocks) that counts oversized requests.
struct BlockCache {
  explicit BlockCache(std::size_t lists) : classes(std::make_unique<ClassList[]>(lists)) {}
  ClassList& operator[](std::size_t c) noexcept { return classes[c]; }
  const ClassList& operator[](std::size_t c) const noexcept { return classes[c]; }

  std::unique_ptr<ClassList[]> classes;
  std::uint64_t flushed = 0;  // the pool's trim count when this cache was last emptied for a trim
};

// Counts of caches whose threads have exited.
struct RetiredCounts {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t returns = 0;

  RetiredCounts& operator+=(const ClassList& list) noexcept {
    hits += list.hits.load(std::memory_order_relaxed);
    misses += list.misses.load(std::memory_order_relaxed);
    returns += list.returns.load(std::memory_order_relaxed);
    return *this;
  }
};

// An upstream allocation that blocks of one class are carved from, in order from its start and only when
// handed out (a chunk of 8192 blocks costs nothing per block until they are used). An oversized request is a
// chunk of one block of its own size.
struct Chunk {
  Allocation upstream;  // empty: an unused slot
  std::uint32_t size_class = 0;
  std::uint32_t blocks = 0;      // it holds
  std::uint32_t carved = 0;      // blocks that have a record: the first `carved` of the chunk
  std::uint32_t free_count = 0;  // blocks not handed out nor cached: its free list, and those not carved yet
  BlockRecord* free_head = nullptr;
  std::uint32_t partial_position = kNone;  // where it sits in its class's list of chunks with free blocks
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
  ThreadCache(std::uint64_t pool, std::shared_ptr<CacheRegistry> owner, std::size_t lists)
      : pool_id(pool), registry(std::move(owner)), cache(lists) {}

  std::uint64_t pool_id;
  std::shared_ptr<CacheRegistry> registry;
  BlockCache cache;
};

// The calling thread's most recently used cache. Constant-initialized, so reaching it needs no TLS guard.
struct LastCache {
  std::uint64_t pool = 0;
  BlockCache* cache = nullptr;
};
// (src/CMakeLists.txt reaches thread-locals through TLS descriptors, which keeps the fast paths short.)
constinit thread_local LastCache t_last;

// The caches of the calling thread, one per pool it has used.
struct ThreadCaches {
  ThreadCaches() = default;
  ~ThreadCaches();
  ThreadCaches(const ThreadCaches&) = delete;
  ThreadCaches& operator=(const ThreadCaches&) = delete;
  ThreadCaches(ThreadCaches&&) = delete;
  ThreadCaches& operator=(ThreadCaches&&) = delete;

  BlockCache& find_or_create(SizeClassState& state);
  // The calling thread's cache of pool `pool_id`, or nullptr when it has none.
  [[nodiscard]] BlockCache* find(std::uint64_t pool_id) noexcept {
    for (const auto& cache : caches) {
      if (cache->pool_id == pool_id) return &cache->cache;
    }
    return nullptr;
  }

  std::vector<std::unique_ptr<ThreadCache>> caches;
};

thread_local ThreadCaches t_caches;

struct SizeClassState {
  SizeClassState(SizeClassPool& owner, MemoryResource& upstream_resource, std::size_t classes)
      : pool(owner),
        upstream(upstream_resource),
        options(owner.options()),
        class_count(classes),
        bound(static_cast<std::uint32_t>(std::min<std::size_t>(options.max_pooled_per_bucket, kNone - 1))),
        batch(std::clamp<std::size_t>(options.max_pooled_per_bucket / 2, 1, kMaxBatch)),
        id(g_next_pool_id.fetch_add(1, std::memory_order_relaxed)),
        order(owner, "SizeClassPool"),
        central(classes + 1),
        partial(classes),
        registry(std::make_shared<CacheRegistry>()),
        retired(classes + 1),
        releases(classes),
        chunk_counts(classes) {
    registry->state = this;
  }

  SizeClassPool& pool;
  MemoryResource& upstream;
  const SizeClassPoolOptions& options;
  const std::size_t class_count;
  const std::uint32_t bound;  // blocks each cache keeps per class
  const std::size_t batch;
  const std::uint64_t id;  // unique for the program's life: thread caches find their pool by it
  StreamOrder order;
  BlockTable table;

  // Everything below is guarded by `mutex`, except the registry (its own mutex, taken before this one).
  PoolMutex mutex;
  BlockCache central;
  std::vector<Chunk> chunks;
  std::vector<std::uint32_t> unused_chunks;
  std::vector<std::vector<std::uint32_t>> partial;  // per class: chunks with free blocks
  std::shared_ptr<CacheRegistry> registry;
  std::vector<RetiredCounts> retired;
  std::vector<std::uint64_t> releases;
  std::vector<std::size_t> chunk_counts;
  std::size_t reserved = 0;
  std::size_t oversized_in_use = 0;
  std::uint64_t upstream_allocations = 0;
  std::uint64_t upstream_deallocations = 0;
  std::atomic<std::uint64_t> trims{0};

  [[nodiscard]] std::size_t class_size(std::size_t c) const noexcept { return options.min_block << c; }
  [[nodiscard]] std::size_t chunk_bytes(std::size_t c) const noexcept {
    return std::max(class_size(c), options.chunk_size);
  }
  // Blocks of the next chunk of class `c`: twice as many as each chunk the class holds already (1, 2, 4, ...)
  // up to a full chunk_size. A class then never holds more idle blocks in a part-used chunk than it has
  // blocks in use, however small its use, while a class with many blocks still reaches whole chunks after
  // log2(chunk_size / block) upstream calls.
  [[nodiscard]] std::size_t blocks_for_next_chunk(std::size_t c) const noexcept {
    const std::size_t most = chunk_bytes(c) / class_size(c);  // a power of two
    const auto doublings = static_cast<std::size_t>(std::countr_zero(most));
    return chunk_counts[c] >= doublings ? most : std::size_t{1} << chunk_counts[c];
  }

  BlockCache& local_cache() {
    if (t_last.pool == id) [[likely]] {
      return *t_last.cache;
    }
    return t_caches.find_or_create(*this);
  }

  // --- handing blocks out ---

  // Hands block `r` out as `bytes` of class `c`, `padding` bytes into the block (r.offset is always the
  // block's start plus the padding in r.shape).
  [[gnu::always_inline]] static Allocation hand_out(BlockRecord& r, std::size_t bytes, std::size_t c,
                                                    std::size_t padding) noexcept {
    r.shape.store(Shape::make(bytes, c, padding), std::memory_order_relaxed);
    const std::uint32_t generation = r.state.load(std::memory_order_relaxed) + 1U;  // even to odd
    r.state.store(generation, std::memory_order_release);
    return Allocation{r.segment.load(std::memory_order_relaxed), r.offset.load(std::memory_order_relaxed),
                      bytes, detail::make_cookie(r.index, generation)};
  }

  // Where the block starts in its segment: the range's start less its padding.
  static std::size_t block_start(const BlockRecord& r) noexcept {
    return r.offset.load(std::memory_order_relaxed) - Shape::padding(r.shape.load(std::memory_order_relaxed));
  }

  Allocation publish(BlockRecord& r, std::size_t c, std::size_t bytes, std::size_t alignment) noexcept {
    const std::size_t start = block_start(r);
    const std::size_t padding =
        alignment > kDefaultAlignment
            ? detail::alignment_padding(*r.segment.load(std::memory_order_relaxed), start, alignment)
            : 0;
    r.offset.store(start + padding, std::memory_order_relaxed);
    return hand_out(r, bytes, c, padding);
  }

  // Pops the head of `list` for `stream`, waiting for its free's event if need be; nullptr when empty.
  // Throws what the wait throws, leaving the block in the list.
  BlockRecord* pop(ClassList& list, Stream* stream) {
    BlockRecord* r = list.head;
    if (r == nullptr) return nullptr;
    order.take(r->fence, stream);
    list.head = r->next;
    bump(list.count, std::uint32_t{0} - 1U);
    return r;
  }

  static void push(ClassList& list, BlockRecord* r) noexcept {
    r->next = list.head;
    list.head = r;
    bump(list.count);
  }

  Allocation allocate(std::size_t c, std::size_t bytes, Stream* stream, std::size_t alignment) {
    if (options.per_thread_cache) {
      BlockCache* cache = nullptr;
      try {
        cache = &local_cache();
      } catch (const std::bad_alloc&) {
        cache = nullptr;  // no memory for a new thread cache: the central lists still work
      }
      if (cache != nullptr) {
        ClassList& list = (*cache)[c];
        BlockRecord* r = pop(list, stream);
        if (r != nullptr) {
          bump(list.hits);
        } else {
          r = refill(*cache, c, stream);
        }
        return publish(*r, c, bytes, alignment);
      }
    }
    const std::lock_guard lock(mutex);
    ClassList& list = central[c];
    BlockRecord* r = pop(list, stream);
    if (r != nullptr) {
      bump(list.hits);
    } else {
      r = take_from_chunks(list, c, stream, /*extra=*/0);
    }
    return publish(*r, c, bytes, alignment);
  }

  // A thread's list of class `c` is empty: moves up to a batch of blocks from the central list, or from the
  // class's chunks (a new one if need be), into it and returns one more for `stream`.
  BlockRecord* refill(BlockCache& cache, std::size_t c, Stream* stream) {
    ClassList& list = cache[c];
    std::vector<Allocation> released;
    BlockRecord* r = nullptr;
    {
      const std::lock_guard lock(mutex);
      flush_if_trimmed(cache, released);
      ClassList& shared = central[c];
      r = pop(shared, stream);
      if (r != nullptr) {
        for (std::size_t moved = 1; moved < batch && shared.head != nullptr; ++moved) {
          BlockRecord* block = shared.head;
          shared.head = block->next;
          bump(shared.count, std::uint32_t{0} - 1U);
          push(list, block);
        }
        bump(list.hits);
      } else {
        r = take_from_chunks(list, c, stream, batch - 1);
      }
    }
    give_back(released, nullptr);
    return r;
  }

  // One block of class `c` for `stream` from the class's chunks, plus up to `extra` more into `list`; a new
  // chunk from upstream when none has a free block (counted as a miss in `list`, else a hit). Mutex held;
  // released while the upstream is asked.
  BlockRecord* take_from_chunks(ClassList& list, std::size_t c, Stream* stream, std::size_t extra) {
    const bool miss = partial[c].empty();
    if (miss) add_chunk(c);
    const std::uint32_t slot = partial[c].back();
    if (chunks[slot].free_head != nullptr) order.take(chunks[slot].free_head->fence, stream);
    BlockRecord* r = take_block(slot);
    for (std::size_t moved = 0; moved < extra && chunks[slot].free_count != 0; ++moved) {
      BlockRecord* block = nullptr;
      try {
        block = take_block(slot);
      } catch (...) {
        break;  // no record for another block: the one asked for is enough
      }
      push(list, block);
    }
    bump(miss ? list.misses : list.hits);
    return r;
  }

  // A block of chunk `slot` (which has a free one): from its free list, else the next one carved. Throws only
  // when no record can be made for a new block, changing nothing.
  BlockRecord* take_block(std::uint32_t slot) {
    Chunk& chunk = chunks[slot];
    BlockRecord* r = chunk.free_head;
    if (r != nullptr) {
      chunk.free_head = r->next;
    } else {
      r = table.acquire();
      const std::size_t block =
          chunk.size_class < class_count ? class_size(chunk.size_class) : chunk.upstream.size;
      r->segment.store(chunk.upstream.segment, std::memory_order_relaxed);
      r->offset.store(chunk.upstream.offset + std::size_t{chunk.carved} * block, std::memory_order_relaxed);
      r->shape.store(Shape::make(0, chunk.size_class, 0), std::memory_order_relaxed);
      r->chunk = slot;
      ++chunk.carved;
    }
    if (--chunk.free_count == 0 && chunk.partial_position != kNone) remove_partial(chunk);
    return r;
  }

  void remove_partial(Chunk& chunk) noexcept {
    std::vector<std::uint32_t>& list = partial[chunk.size_class];
    const std::uint32_t last = list.back();
    list[chunk.partial_position] = last;
    chunks[last].partial_position = chunk.partial_position;
    list.pop_back();
    chunk.partial_position = kNone;
  }

  // Asks upstream for `bytes` with the mutex released; when it is out of memory, trims and asks once more.
  Allocation allocate_upstream(std::size_t bytes, Stream* stream) {
    mutex.unlock();
    Allocation got;
    try {
      try {
        got = upstream.allocate(bytes, stream, kDefaultAlignment);
      } catch (const OutOfMemory&) {
        if (pool.trim() == 0) throw;
        got = upstream.allocate(bytes, stream, kDefaultAlignment);
      }
    } catch (...) {
      mutex.lock();
      throw;
    }
    mutex.lock();
    return got;
  }

  // A new chunk of class `c` (`oversized_bytes` of one block for an oversized request), its blocks in its
  // free list and the chunk in the class's partial list. When upstream cannot give a whole chunk (a small or
  // nearly full device), halves it down to one block. Mutex held, released while the upstream is asked.
  std::uint32_t add_chunk(std::size_t c, std::size_t oversized_bytes = 0, Stream* stream = nullptr) {
    const bool oversized = c == class_count;
    const std::size_t block = oversized ? oversized_bytes : class_size(c);
    std::size_t bytes = oversized ? oversized_bytes : block * blocks_for_next_chunk(c);
    Allocation got;
    for (;;) {
      try {
        got = allocate_upstream(bytes, stream);
        break;
      } catch (const OutOfMemory&) {
        if (bytes == block) throw;
        bytes /= 2;
      }
    }
    // Room for everything the chunk's life may add to the lists, so that frees never allocate.
    try {
      chunks.reserve(chunks.size() + 1);
      unused_chunks.reserve(chunks.size() + 1);
      if (!oversized) partial[c].reserve(chunk_counts[c] + 1);
    } catch (...) {
      mutex.unlock();
      upstream.deallocate(got, stream);
      mutex.lock();
      throw;
    }
    std::uint32_t slot = 0;
    if (unused_chunks.empty()) {
      slot = static_cast<std::uint32_t>(chunks.size());
      chunks.emplace_back();
    } else {
      slot = unused_chunks.back();
      unused_chunks.pop_back();
    }
    const auto blocks = static_cast<std::uint32_t>(bytes / block);
    chunks[slot] = Chunk{got, static_cast<std::uint32_t>(c), blocks, 0, blocks, nullptr, kNone};
    reserved += bytes;
    ++upstream_allocations;
    if (!oversized) {
      chunks[slot].partial_position = static_cast<std::uint32_t>(partial[c].size());
      partial[c].push_back(slot);
      ++chunk_counts[c];
    }
    return slot;
  }

  // Straight from upstream, at kDefaultAlignment with room to align inside, so that alignment follows the
  // pools' one rule whatever the upstream's is.
  Allocation allocate_oversized(std::size_t bytes, Stream* stream, std::size_t alignment) {
    const std::size_t footprint = checked_add(bytes, detail::alignment_slack(alignment));
    if (footprint > Shape::kMaxBytes) {
      throw InvalidArgument("SizeClassPool on " + to_string(pool.device()) + ": a request of " +
                            std::to_string(bytes) + " bytes is above the largest it records, " +
                            std::to_string(Shape::kMaxBytes));
    }
    BlockRecord* r = nullptr;
    std::vector<Allocation> released;
    {
      const std::lock_guard lock(mutex);
      const std::uint32_t slot = add_chunk(class_count, footprint, stream);
      try {
        r = take_block(slot);
      } catch (...) {
        release_chunk(slot, released, stream);  // no record for its block: the chunk goes back unused
      }
      if (r != nullptr) {
        oversized_in_use += footprint;
        bump(central[class_count].misses);
      }
    }
    give_back(released, stream);
    if (r == nullptr) throw Error("SizeClassPool: more than 4294967294 blocks");
    return publish(*r, class_count, bytes, alignment);
  }

  // --- taking blocks back ---

  // Claims the block `allocation` names for the caller: its record, or nullptr (and nothing changed) unless
  // it is live here.
  [[nodiscard, gnu::always_inline]] BlockRecord* claim(const Allocation& allocation) noexcept {
    BlockRecord* r = table.find(detail::cookie_index(allocation.cookie));
    std::uint32_t live = detail::cookie_generation(allocation.cookie);
    // An even value is a free block's state, never a cookie's.
    const bool claimed = r != nullptr && (live & 1U) != 0 &&
                         r->state.load(std::memory_order_acquire) == live &&
                         r->segment.load(std::memory_order_relaxed) == allocation.segment &&
                         r->offset.load(std::memory_order_relaxed) == allocation.offset &&
                         Shape::bytes(r->shape.load(std::memory_order_relaxed)) == allocation.size &&
                         r->state.compare_exchange_strong(live, live + 1U, std::memory_order_acq_rel);
    return claimed ? r : nullptr;
  }

  // Puts a freed class block (already claimed, its fence marked) into the calling thread's cache, or the
  // central list, or back into its chunk.
  void free_block(BlockRecord& r, std::size_t c, Stream* stream) noexcept {
    BlockCache* cache = nullptr;
    if (options.per_thread_cache) {
      try {
        cache = &local_cache();
      } catch (const std::bad_alloc&) {
        cache = nullptr;
      }
    }
    if (cache != nullptr) {
      ClassList& list = (*cache)[c];
      bump(list.returns);
      if (list.count.load(std::memory_order_relaxed) < bound) {
        push(list, &r);
        return;
      }
      spill(*cache, c, &r, stream);
      return;
    }
    std::vector<Allocation> released;
    {
      const std::lock_guard lock(mutex);
      ClassList& list = central[c];
      bump(list.returns);
      if (list.count.load(std::memory_order_relaxed) < bound) {
        push(list, &r);
      } else {
        return_to_chunk(&r, released, stream);
      }
    }
    give_back(released, stream);
  }

  // The thread's list of class `c` is full: the block just freed and up to a batch from the list go to the
  // central list while it has room, the rest to their chunks.
  void spill(BlockCache& cache, std::size_t c, BlockRecord* freed, Stream* stream) noexcept {
    ClassList& list = cache[c];
    std::vector<Allocation> released;
    {
      const std::lock_guard lock(mutex);
      ClassList& shared = central[c];
      BlockRecord* block = freed;
      for (std::size_t moved = 0; block != nullptr && moved < batch; ++moved) {
        if (shared.count.load(std::memory_order_relaxed) < bound) {
          push(shared, block);
        } else {
          return_to_chunk(block, released, stream);
        }
        block = list.head;
        if (block != nullptr) {
          list.head = block->next;
          bump(list.count, std::uint32_t{0} - 1U);
        }
      }
      if (block != nullptr) push(list, block);  // taken one too many
      flush_if_trimmed(cache, released);
    }
    give_back(released, stream);
  }

  // A block leaves the caches for its chunk; a chunk wholly back goes to `released` (given back upstream
  // once the mutex is released, by give_back). Mutex held.
  void return_to_chunk(BlockRecord* r, std::vector<Allocation>& released, Stream* stream) noexcept {
    Chunk& chunk = chunks[r->chunk];
    ++releases[chunk.size_class];
    r->next = chunk.free_head;
    chunk.free_head = r;
    if (++chunk.free_count == 1) {
      chunk.partial_position = static_cast<std::uint32_t>(partial[chunk.size_class].size());
      partial[chunk.size_class].push_back(r->chunk);  // never allocates: add_chunk reserved room
    }
    if (chunk.free_count == chunk.blocks) release_chunk(r->chunk, released, stream);
  }

  // Takes a wholly free chunk out of the pool: its blocks' fences settled, its records retired, its upstream
  // allocation added to `released`. Mutex held.
  void release_chunk(std::uint32_t slot, std::vector<Allocation>& released, Stream* stream) noexcept {
    Chunk& chunk = chunks[slot];
    for (BlockRecord* r = chunk.free_head; r != nullptr;) {
      BlockRecord* next = r->next;
      order.settle(r->fence, stream);
      r->chunk = kNone;
      r->next = nullptr;
      r->segment.store(nullptr, std::memory_order_relaxed);
      table.retire(r);
      r = next;
    }
    if (chunk.partial_position != kNone) remove_partial(chunk);
    if (chunk.size_class < class_count) --chunk_counts[chunk.size_class];
    reserved -= chunk.upstream.size;
    ++upstream_deallocations;
    try {
      released.push_back(chunk.upstream);
    } catch (const std::bad_alloc&) {
      upstream.deallocate(chunk.upstream, stream);  // no room to defer it: give it back under the lock
    }
    chunk = Chunk{};
    unused_chunks.push_back(slot);  // never allocates: add_chunk reserved room
  }

  void give_back(const std::vector<Allocation>& released, Stream* stream) noexcept {
    for (const Allocation& chunk : released) upstream.deallocate(chunk, stream);
  }

  void free_oversized(BlockRecord& r, Stream* stream) noexcept {
    std::vector<Allocation> released;
    {
      const std::lock_guard lock(mutex);
      Chunk& chunk = chunks[r.chunk];
      oversized_in_use -= chunk.upstream.size;
      bump(central[class_count].returns);
      r.next = nullptr;
      chunk.free_head = &r;
      chunk.free_count = 1;
      release_chunk(r.chunk, released, stream);
    }
    give_back(released, stream);
  }

  // --- caches ---

  // Empties `cache` into the chunks when a trim happened since it was last emptied. Mutex held.
  void flush_if_trimmed(BlockCache& cache, std::vector<Allocation>& released) noexcept {
    const std::uint64_t now = trims.load(std::memory_order_relaxed);
    if (cache.flushed == now) return;
    cache.flushed = now;
    empty_into_chunks(cache, released);
  }

  // Every block of `cache` back to its chunk. Mutex held.
  void empty_into_chunks(BlockCache& cache, std::vector<Allocation>& released) noexcept {
    for (std::size_t c = 0; c < class_count; ++c) {
      ClassList& list = cache[c];
      while (list.head != nullptr) {
        BlockRecord* r = list.head;
        list.head = r->next;
        return_to_chunk(r, released, nullptr);
      }
      list.count.store(0, std::memory_order_relaxed);
    }
  }

  // Takes the cache of a thread that exits (registry mutex held): its blocks go to the central lists while
  // they have room, the rest to their chunks; its counts to `retired`.
  void adopt(ThreadCache& thread_cache) noexcept {
    std::erase(registry->caches, &thread_cache);
    std::vector<Allocation> released;
    {
      const std::lock_guard lock(mutex);
      BlockCache& cache = thread_cache.cache;
      for (std::size_t c = 0; c <= class_count; ++c) {
        ClassList& list = cache[c];
        retired[c] += list;
        while (list.head != nullptr) {
          BlockRecord* r = list.head;
          list.head = r->next;
          if (central[c].count.load(std::memory_order_relaxed) < bound) {
            push(central[c], r);
          } else {
            return_to_chunk(r, released, nullptr);
          }
        }
      }
    }
    give_back(released, nullptr);
  }

  std::size_t trim() noexcept {
    std::vector<Allocation> released;
    {
      const std::lock_guard lock(mutex);
      trims.fetch_add(1, std::memory_order_relaxed);
      if (BlockCache* own = t_caches.find(id); own != nullptr) flush_if_trimmed(*own, released);
      empty_into_chunks(central, released);
    }
    std::size_t bytes = 0;
    for (const Allocation& chunk : released) bytes += chunk.size;
    give_back(released, nullptr);
    return bytes;
  }

  // The pool's figures, from every cache, under both locks; with `usage`, its ResourceUsage too.
  SizeClassPoolStats collect(ResourceUsage* usage) {
    SizeClassPoolStats stats;
    stats.classes.resize(class_count);
    std::vector<RetiredCounts> totals;
    const auto add_cache = [&](const BlockCache& cache) {
      for (std::size_t c = 0; c <= class_count; ++c) {
        totals[c] += cache[c];
        if (c < class_count) stats.classes[c].cached_blocks += cache[c].count.load(std::memory_order_relaxed);
      }
    };
    const std::lock_guard registry_lock(registry->mutex);
    const std::lock_guard lock(mutex);
    totals = retired;
    add_cache(central);
    for (const ThreadCache* cache : registry->caches) add_cache(cache->cache);
    stats.thread_caches = registry->caches.size();
    for (const Chunk& chunk : chunks) {
      if (chunk.upstream && chunk.size_class < class_count)
        stats.classes[chunk.size_class].free_blocks += chunk.free_count;
    }
    std::size_t in_use = oversized_in_use;
    std::size_t largest_free = 0;
    for (std::size_t c = 0; c < class_count; ++c) {
      SizeClassStats& figures = stats.classes[c];
      figures.block_size = class_size(c);
      figures.cache_hits = totals[c].hits;
      figures.cache_misses = totals[c].misses;
      figures.returns = totals[c].returns;
      figures.releases = releases[c];
      figures.chunks = chunk_counts[c];
      stats.cache_hits += figures.cache_hits;
      stats.cache_misses += figures.cache_misses;
      stats.returns += figures.returns;
      stats.releases += figures.releases;
      stats.cached_blocks += figures.cached_blocks;
      stats.free_blocks += figures.free_blocks;
      stats.free_bytes += (figures.cached_blocks + figures.free_blocks) * figures.block_size;
      stats.chunks += figures.chunks;
      // Modular: a block allocated through one cache may be freed through another.
      in_use += static_cast<std::size_t>(figures.cache_hits + figures.cache_misses - figures.returns) *
                figures.block_size;
      if (figures.cached_blocks + figures.free_blocks != 0) largest_free = figures.block_size;
    }
    stats.oversized = totals[class_count].misses;
    stats.cache_misses += stats.oversized;
    if (usage != nullptr) {
      usage->cache_hits = stats.cache_hits;
      usage->cache_misses = stats.cache_misses;
      usage->in_use_bytes = in_use;
      usage->largest_free_range = largest_free;
      usage->reserved_bytes = reserved;
      usage->upstream_allocations = upstream_allocations;
      usage->upstream_deallocations = upstream_deallocations;
    }
    return stats;
  }
};

ThreadCaches::~ThreadCaches() {
  // Taken out first: handing blocks back may free them into an upstream that is itself a size-class pool,
  // which would look its cache up here again.
  const std::vector<std::unique_ptr<ThreadCache>> mine = std::move(caches);
  t_last = LastCache{};
  for (const auto& cache : mine) {
    const std::lock_guard lock(cache->registry->mutex);
    if (cache->registry->state != nullptr) cache->registry->state->adopt(*cache);
  }
}

BlockCache& ThreadCaches::find_or_create(SizeClassState& state) {
  for (const auto& cache : caches) {
    if (cache->pool_id == state.id) {
      t_last = LastCache{state.id, &cache->cache};
      return cache->cache;
    }
  }
  // First use of this pool on this thread: drop the caches of pools destroyed since, then register one.
  std::erase_if(caches, [](const std::unique_ptr<ThreadCache>& cache) {
    const std::lock_guard lock(cache->registry->mutex);
    return cache->registry->state == nullptr;
  });
  caches.reserve(caches.size() + 1);
  auto cache = std::make_unique<ThreadCache>(state.id, state.registry, state.class_count + 1);
  cache->cache.flushed = state.trims.load(std::memory_order_relaxed);
  {
    const std::lock_guard lock(state.registry->mutex);
    state.registry->caches.push_back(cache.get());
  }
  caches.push_back(std::move(cache));
  t_last = LastCache{state.id, &caches.back()->cache};
  return *t_last.cache;
}

}  // namespace detail

SizeClassPool::SizeClassPool(MemoryResource& upstream, SizeClassPoolOptions options)
    : MemoryResource(upstream.backend(), upstream.device(), upstream.kind()),
      upstream_(upstream),
      options_(options),
      class_top_(0),
      class_count_(0) {
  if (!is_power_of_two(options_.min_block) || !is_power_of_two(options_.max_block) ||
      options_.min_block > options_.max_block) {
    throw InvalidArgument("SizeClassPool: min_block " + std::to_string(options_.min_block) +
                          " and max_block " + std::to_string(options_.max_block) +
                          " must be powers of two with min_block <= max_block");
  }
  // Blocks sit side by side in their chunk, so a class below the default alignment would hand out
  // misaligned ranges.
  if (options_.min_block < kDefaultAlignment) {
    throw InvalidArgument("SizeClassPool: min_block " + std::to_string(options_.min_block) +
                          " is below the default alignment of " + std::to_string(kDefaultAlignment) +
                          " bytes");
  }
  if (!is_power_of_two(options_.chunk_size) || options_.chunk_size < kDefaultAlignment) {
    throw InvalidArgument("SizeClassPool: chunk_size " + std::to_string(options_.chunk_size) +
                          " must be a power of two of at least " + std::to_string(kDefaultAlignment));
  }
  const auto min_shift = static_cast<unsigned>(std::countr_zero(options_.min_block));
  class_top_ = 64U - min_shift;
  class_count_ = static_cast<std::size_t>(std::countr_zero(options_.max_block)) - min_shift + 1;
  if (class_count_ > Shape::kMaxClasses) {
    throw InvalidArgument("SizeClassPool: min_block " + std::to_string(options_.min_block) +
                          " to max_block " + std::to_string(options_.max_block) + " makes " +
                          std::to_string(class_count_) + " classes; at most " +
                          std::to_string(Shape::kMaxClasses));
  }
  state_ = std::make_unique<detail::SizeClassState>(*this, upstream_, class_count_);
}

SizeClassPool::~SizeClassPool() {
  detail::SizeClassState& s = *state_;
  {
    const std::lock_guard lock(s.registry->mutex);
    s.registry->state = nullptr;
    s.registry->caches.clear();
  }
  // Every chunk goes back, whatever its blocks are doing.
  std::size_t live = 0;
  std::size_t live_bytes = 0;
  for (std::uint32_t i = 0; i < s.table.size(); ++i) {
    BlockRecord& r = s.table.at(i);
    if (r.chunk == kNone) continue;
    if ((r.state.load(std::memory_order_relaxed) & 1U) != 0) {
      ++live;
      live_bytes += Shape::bytes(r.shape.load(std::memory_order_relaxed));
    }
    s.order.settle(r.fence, nullptr);
  }
  for (const Chunk& chunk : s.chunks) {
    if (chunk.upstream) upstream_.deallocate(chunk.upstream);
  }
  if (live != 0) {
    report_misuse("SizeClassPool on " + to_string(device()) + " destroyed with " + std::to_string(live) +
                  " live allocation(s) of " + std::to_string(live_bytes) + " bytes; returned them upstream");
  }
}

std::size_t SizeClassPool::block_size(std::size_t bytes, std::size_t alignment) const {
  const std::size_t footprint = checked_add(bytes, detail::alignment_slack(alignment));
  return footprint > options_.max_block ? 0 : options_.min_block << class_of(footprint);
}

// The fast paths: a hit in the calling thread's cache, and a free into it, each touching the block's record
// once and the thread's list once, with no lock and no read-modify-write atomic but the free's claim. Every
// other case (a stream, an aligned or oversized request, a miss, a full cache, a misuse) goes to the
// out-of-line slow paths, which keep the fast ones short.
Allocation SizeClassPool::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  const detail::LastCache last = detail::t_last;
  if (last.pool == state_->id && stream == nullptr && alignment <= kDefaultAlignment &&
      bytes <= options_.max_block) [[likely]] {
    const std::size_t c = class_of(bytes);
    ClassList& list = (*last.cache)[c];
    BlockRecord* r = list.head;
    if (r != nullptr && r->fence.stream == nullptr) [[likely]] {
      list.head = r->next;
      bump(list.count, std::uint32_t{0} - 1U);
      bump(list.hits);
      return detail::SizeClassState::hand_out(*r, bytes, c, 0);
    }
  }
  return allocate_slow(bytes, stream, alignment);
}

Allocation SizeClassPool::allocate_slow(std::size_t bytes, Stream* stream, std::size_t alignment) {
  detail::check_pool_stream(*this, stream, "SizeClassPool");
  const std::size_t footprint = checked_add(bytes, detail::alignment_slack(alignment));
  if (footprint > options_.max_block) return state_->allocate_oversized(bytes, stream, alignment);
  return state_->allocate(class_of(footprint), bytes, stream, alignment);
}

bool SizeClassPool::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  detail::SizeClassState& s = *state_;
  BlockRecord* r = s.claim(allocation);
  if (r == nullptr) [[unlikely]] {
    return reject(allocation);
  }
  const detail::LastCache last = detail::t_last;
  // The class when the block has no padding; otherwise above every class, so that deallocate_slow takes the
  // padding off (a padded block, like an oversized one, is not for the fast path).
  const std::size_t c = Shape::class_unless_padded(r->shape.load(std::memory_order_relaxed));
  if (stream == nullptr && last.pool == s.id && c < class_count_) [[likely]] {
    ClassList& list = (*last.cache)[c];
    if (list.count.load(std::memory_order_relaxed) < s.bound) [[likely]] {
      bump(list.returns);
      r->next = list.head;
      list.head = r;
      bump(list.count);
      return true;
    }
  }
  return deallocate_slow(*r, stream);
}

bool SizeClassPool::reject(const Allocation& allocation) const noexcept {
  detail::report_not_live(*this, "SizeClassPool", allocation);
  return false;
}

bool SizeClassPool::deallocate_slow(BlockRecord& r, Stream* stream) noexcept {
  detail::SizeClassState& s = *state_;
  return detail::ordered_free(*this, "SizeClassPool", stream, [&](Stream* order) {
    // A host-order free leaves the fence as it is (as the fast path does); a stream's, or a foreign stream's
    // now synchronized, marks it.
    if (stream != nullptr) s.order.mark_free(r.fence, order);
    const std::uint64_t shape = r.shape.load(std::memory_order_relaxed);
    if (Shape::padding(shape) != 0) {
      r.offset.store(detail::SizeClassState::block_start(r), std::memory_order_relaxed);
      r.shape.store(Shape::make(Shape::bytes(shape), Shape::size_class(shape), 0), std::memory_order_relaxed);
    }
    const std::size_t c = Shape::size_class(shape);
    if (c == s.class_count) {
      s.free_oversized(r, order);
    } else {
      s.free_block(r, c, order);
    }
  });
}

std::size_t SizeClassPool::do_trim() {
  return state_->trim();
}

SizeClassPoolStats SizeClassPool::stats() const {
  return state_->collect(nullptr);
}

ResourceUsage SizeClassPool::do_usage() const {
  ResourceUsage usage;
  (void)state_->collect(&usage);
  return usage;
}

PoolSnapshot SizeClassPool::snapshot() const {
  detail::SizeClassState& s = *state_;
  PoolSnapshot snapshot;
  snapshot.device = device();
  snapshot.kind = kind();
  snapshot.usage = usage();
  const std::lock_guard lock(s.mutex);
  std::vector<std::size_t> place(s.chunks.size(), s.chunks.size());
  for (std::size_t slot = 0; slot < s.chunks.size(); ++slot) {
    const Chunk& chunk = s.chunks[slot];
    if (!chunk.upstream) continue;
    place[slot] = snapshot.segments.size();
    snapshot.segments.push_back(
        SegmentSnapshot{chunk.upstream.segment->id,
                        reinterpret_cast<std::uintptr_t>(chunk.upstream.native_plus_offset()),
                        chunk.upstream.size,
                        chunk.upstream.kind(),
                        "size_class",
                        {}});
    if (chunk.carved < chunk.blocks) {  // the blocks not carved yet, free, at the chunk's end
      const std::size_t block = chunk.upstream.size / chunk.blocks;
      RangeSnapshot tail;
      tail.offset = chunk.carved * block;
      tail.size = (chunk.blocks - chunk.carved) * block;
      snapshot.segments.back().ranges.push_back(tail);
    }
  }
  const std::uint32_t records = s.table.size();
  for (std::uint32_t index = 0; index < records; ++index) {
    const BlockRecord& r = s.table.at(index);
    if (r.chunk == kNone) continue;
    const Chunk& chunk = s.chunks[r.chunk];
    const bool live = (r.state.load(std::memory_order_acquire) & 1U) != 0;
    const std::uint64_t shape = r.shape.load(std::memory_order_relaxed);
    const std::size_t c = Shape::size_class(shape);
    RangeSnapshot range;
    range.offset = detail::SizeClassState::block_start(r) - chunk.upstream.offset;
    range.size = c < class_count_ ? s.class_size(c) : chunk.upstream.size;
    range.allocated = live;
    range.requested = live ? Shape::bytes(shape) : 0;
    range.stream = live ? 0 : reinterpret_cast<std::uintptr_t>(r.fence.stream);
    snapshot.segments[place[r.chunk]].ranges.push_back(range);
  }
  for (SegmentSnapshot& segment : snapshot.segments) {
    std::sort(segment.ranges.begin(), segment.ranges.end(),
              [](const RangeSnapshot& a, const RangeSnapshot& b) { return a.offset < b.offset; });
    // Adjacent free blocks of one stream read as one free range, as in the coalescing pool.
    std::vector<RangeSnapshot> merged;
    for (const RangeSnapshot& range : segment.ranges) {
      if (!merged.empty() && !range.allocated && !merged.back().allocated &&
          merged.back().stream == range.stream && merged.back().offset + merged.back().size == range.offset) {
        merged.back().size += range.size;
      } else {
        merged.push_back(range);
      }
    }
    segment.ranges = std::move(merged);
  }
  std::sort(snapshot.segments.begin(), snapshot.segments.end(),
            [](const SegmentSnapshot& a, const SegmentSnapshot& b) { return a.id < b.id; });
  return snapshot;
}

}  // namespace unimem
