#pragma once
// A reference model of the pools, driven one operation at a time by pool_model_test.cpp (seeded random
// sequences) and by tests/fuzz/pool_fuzz.cpp (fuzz input). After every operation it checks the pool against
// the model:
//   - live ranges never overlap, lie inside a live upstream allocation and have the alignment asked for;
//   - usage() is exact: reserved bytes equal what the upstream holds for the pool, in-use bytes equal the
//     model's, every reserved byte is in use or free, upstream call counts and hits + misses add up;
//   - SizeClassPool: a request hits exactly when its class had a cached or free block, a miss takes exactly
//     one new chunk, a free is either cached or back in its chunk, a chunk given back upstream holds no live
//     block, and a trim leaves no cached block and no wholly free chunk;
//   - CoalescingPool: free ranges are exactly the model's (best fit, split, merged with free neighbours):
//     a request that fits takes a best-fitting range, one that does not grows the pool by one segment and
//     starts it; free bytes, largest free range, range and segment counts match; a segment given back
//     upstream was wholly free;
//   - misuse (a double free, a forged allocation) is reported and changes nothing.
// Each operation returns an empty string, or the first violation found.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "resource/pool_test_support.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/coalescing_pool.hpp"
#include "unimem/resource/expandable_pool.hpp"
#include "unimem/resource/hybrid_pool.hpp"
#include "unimem/resource/size_class_pool.hpp"

namespace unimem::test {

enum class PoolKind : std::uint8_t { SizeClass, Coalescing, Hybrid, Expandable };

inline std::string_view to_string(PoolKind kind) {
  switch (kind) {
    case PoolKind::SizeClass:
      return "size_class";
    case PoolKind::Coalescing:
      return "coalescing";
    case PoolKind::Hybrid:
      return "hybrid";
    case PoolKind::Expandable:
      return "expandable";
  }
  return "?";
}

// Names the parameter in gtest's and ctest's output ("hybrid" rather than a byte dump).
inline void PrintTo(PoolKind kind, std::ostream* os) {
  *os << to_string(kind);
}

// Each pool with its default options over `upstream`. The expandable pool maps memory itself: its upstream
// must be a BackendResource (std::bad_cast otherwise), of device memory with virtual memory (NotSupported
// otherwise).
inline std::unique_ptr<MemoryResource> make_pool(PoolKind kind, MemoryResource& upstream) {
  switch (kind) {
    case PoolKind::SizeClass:
      return std::make_unique<SizeClassPool>(upstream);
    case PoolKind::Coalescing:
      return std::make_unique<CoalescingPool>(upstream);
    case PoolKind::Hybrid:
      return std::make_unique<HybridPool>(upstream);
    case PoolKind::Expandable:
      return std::make_unique<ExpandablePool>(dynamic_cast<BackendResource&>(upstream));
  }
  return nullptr;
}

// Small limits so that short sequences reach the interesting paths (spills, chunks given back, several
// segments): 16 KiB chunks hold 64 blocks of 256 bytes, 2 of 8 KiB and one of each larger class.
inline SizeClassPoolOptions model_size_class_options() {
  return SizeClassPoolOptions{
      .min_block = 256, .max_block = 256 * KiB, .max_pooled_per_bucket = 3, .chunk_size = 16 * KiB};
}
inline CoalescingPoolOptions model_coalescing_options() {
  return CoalescingPoolOptions{.initial_size = 64 * KiB, .max_growth_step = MiB};
}
inline HybridPoolOptions model_hybrid_options() {
  return HybridPoolOptions{
      .small_threshold = 64 * KiB, .small = model_size_class_options(), .large = model_coalescing_options()};
}

class PoolModel {
 public:
  PoolModel(PoolKind kind, MemoryResource& device, std::uint64_t fail_every = 0)
      : kind_(kind),
        upstream_(device, fail_every),
        misuse_([this](std::string_view /*message*/) { ++misuse_reports_; }) {
    switch (kind) {
      case PoolKind::SizeClass:
        pool_ = std::make_unique<SizeClassPool>(upstream_, model_size_class_options());
        small_.pool = dynamic_cast<SizeClassPool*>(pool_.get());
        break;
      case PoolKind::Coalescing:
        pool_ = std::make_unique<CoalescingPool>(upstream_, model_coalescing_options());
        large_.pool = dynamic_cast<CoalescingPool*>(pool_.get());
        break;
      case PoolKind::Hybrid: {
        auto hybrid = std::make_unique<HybridPool>(upstream_, model_hybrid_options());
        small_.pool = &hybrid->small_pool();
        large_.pool = hybrid->coalescing_pool();
        threshold_ = hybrid->options().small_threshold;
        pool_ = std::move(hybrid);
        break;
      }
      case PoolKind::Expandable:
        // Its upstream is the backend itself, not a recording TestUpstream: see expandable_model.hpp.
        throw InvalidArgument("PoolModel: the expandable pool has a model of its own (expandable_model.hpp)");
    }
  }
  ~PoolModel() {
    for (const Live& l : live_) pool_->deallocate(l.allocation);
  }
  PoolModel(const PoolModel&) = delete;
  PoolModel& operator=(const PoolModel&) = delete;
  PoolModel(PoolModel&&) = delete;
  PoolModel& operator=(PoolModel&&) = delete;

  [[nodiscard]] std::size_t live_count() const noexcept { return live_.size(); }
  [[nodiscard]] std::uint64_t failed_allocations() const noexcept { return failed_; }
  [[nodiscard]] const TestUpstream& upstream() const noexcept { return upstream_; }
  [[nodiscard]] ResourceUsage usage() const { return pool_->usage(); }

  std::string allocate(std::size_t bytes, std::size_t alignment) {
    const bool small = routes_small(bytes);
    std::size_t block = 0;
    bool expect_hit = false;
    std::optional<std::size_t> best;
    SizeClassPoolStats small_before;
    if (small) {
      block = small_.pool->block_size(bytes, alignment);
      small_before = small_.pool->stats();
      const SizeClassStats* figures = block != 0 ? &small_before.classes[class_of(block)] : nullptr;
      expect_hit = figures != nullptr && figures->cached_blocks + figures->free_blocks > 0;
    } else {
      best = large_.best_fit(align_up(bytes, CoalescingPool::kGranularity));
      expect_hit = alignment <= kDefaultAlignment && best.has_value();
    }
    const ResourceUsage before = pool_->usage();
    Allocation a;
    try {
      a = pool_->allocate(bytes, nullptr, alignment);
    } catch (const OutOfMemory&) {
      ++failed_;
      if (std::string error = sync_upstream(small, nullptr); !error.empty()) return error;
      if (pool_->usage().in_use_bytes != before.in_use_bytes)
        return "a failed allocation changed in-use bytes";
      return check();
    }
    ++allocations_;
    std::vector<std::pair<UpstreamKey, std::size_t>> added;
    if (std::string error = sync_upstream(small, &added); !error.empty()) return error;
    if (a.size != bytes) return "allocation size " + std::to_string(a.size) + " != " + std::to_string(bytes);
    if (!is_aligned(address(a), alignment)) return "allocation not aligned to " + std::to_string(alignment);
    const std::optional<UpstreamKey> home = containing_upstream(a);
    if (!home) return "allocation lies outside every live upstream allocation";
    std::size_t footprint = 0;
    if (small) {
      footprint =
          block != 0 ? block : bytes + (alignment > kDefaultAlignment ? alignment - kDefaultAlignment : 0);
      const SizeClassPoolStats after = small_.pool->stats();
      if (expect_hit && (!added.empty() || after.cache_hits != small_before.cache_hits + 1)) {
        return "size-class request of " + std::to_string(bytes) + " had a cached or free block but missed";
      }
      if (!expect_hit && (added.size() != 1 || after.cache_misses != small_before.cache_misses + 1)) {
        return "size-class miss for " + std::to_string(bytes) +
               " did not take exactly one new upstream chunk";
      }
      // A chunk is chunk_size (or one block of a larger class); halved down to one block when upstream
      // cannot give that much.
      const std::size_t chunk = block != 0 ? std::max(block, small_.pool->options().chunk_size) : footprint;
      const std::size_t got = expect_hit ? 0 : added[0].second;
      if (!expect_hit && (got > chunk || got < (block != 0 ? block : footprint) || chunk % got != 0)) {
        return "new upstream chunk of " + std::to_string(got) + " bytes, expected " + std::to_string(chunk) +
               " or a power-of-two fraction of it";
      }
      small_.live_blocks.insert(*home);
    } else {
      footprint = align_up(bytes, CoalescingPool::kGranularity);
      if (alignment <= kDefaultAlignment) {
        if (expect_hit) {
          if (!added.empty()) return "a request that fitted a free range grew the pool";
          const std::optional<std::size_t> taken = large_.free_range_at(a);
          if (!taken || *taken != *best) {
            return "request of " + std::to_string(footprint) + " did not take a best-fitting range (best " +
                   std::to_string(*best) + ")";
          }
        } else if (added.size() != 1 || added[0].first != UpstreamKey{a.segment->id, a.offset}) {
          return "a request that fitted no free range did not start a new segment";
        }
      }
      if (std::string error = large_.take(a, footprint); !error.empty()) return error;
    }
    if (std::string error = insert_live(a); !error.empty()) return error;
    live_.push_back(Live{a, footprint, small, small ? block : 0, *home});
    in_use_ += footprint;
    return check();
  }

  std::string free(std::size_t pick) {
    if (live_.empty()) return {};
    const std::size_t i = pick % live_.size();
    const Live l = live_[i];
    live_[i] = live_.back();
    live_.pop_back();
    const SizeClassPoolStats small_before = l.small ? small_.pool->stats() : SizeClassPoolStats{};
    // The model first: the free may give the segment back, after which l.allocation.segment dangles.
    ranges_.erase({l.allocation.segment->id, l.allocation.offset});
    if (l.small) {
      small_.live_blocks.erase(small_.live_blocks.find(l.home));
    } else {
      large_.give(l.allocation, l.footprint);
    }
    in_use_ -= l.footprint;
    const std::size_t chunk_bytes_before = small_.bytes;
    pool_->deallocate(l.allocation);
    if (std::string error = sync_upstream(l.small, nullptr); !error.empty()) return error;
    const std::size_t chunk_went = chunk_bytes_before - small_.bytes;
    if (l.block != 0 && !small_free_accounted(small_before, l.block, chunk_went)) {
      return "a freed block of " + std::to_string(l.footprint) +
             " bytes was neither cached nor back in its chunk";
    }
    freed_[next_freed_++ % freed_.size()] = l.allocation;
    return check();
  }

  std::string trim() {
    (void)pool_->trim();
    if (std::string error = sync_upstream(false, nullptr); !error.empty()) return error;
    if (small_.pool != nullptr) {
      if (small_.pool->stats().cached_blocks != 0) return "trim left cached blocks";
      const std::set<UpstreamKey> holding(small_.live_blocks.begin(), small_.live_blocks.end());
      if (holding.size() != small_.blocks.size()) return "trim left a wholly free chunk";
    }
    if (large_.pool != nullptr && large_.wholly_free_regions() != 0) return "trim left wholly free segments";
    return check();
  }

  // Frees an allocation freed before: reported, nothing changes.
  std::string free_again(std::size_t pick) {
    const Allocation& stale = freed_[pick % freed_.size()];
    if (!stale) return {};
    return expect_rejected(stale, "double free");
  }

  // Frees a live allocation with a forged cookie: reported, nothing changes.
  std::string free_forged(std::size_t pick, unsigned bit) {
    if (live_.empty()) return {};
    Allocation forged = live_[pick % live_.size()].allocation;
    forged.cookie ^= std::uint64_t{1} << (bit % 64U);
    return expect_rejected(forged, "forged allocation");
  }

  // Frees everything and trims: the upstream must end empty.
  std::string finish() {
    while (!live_.empty()) {
      if (std::string error = free(live_.size() - 1); !error.empty()) return error;
    }
    if (std::string error = trim(); !error.empty()) return error;
    if (upstream_.live_count() != 0) {
      return std::to_string(upstream_.live_count()) + " upstream allocation(s) still live after freeing all";
    }
    return {};
  }

 private:
  struct Live {
    Allocation allocation;
    std::size_t footprint = 0;
    bool small = false;
    std::size_t block = 0;  // size-class blocks: the class size (0 for everything else)
    UpstreamKey home;       // the upstream allocation it lies in
  };

  struct SmallModel {
    SizeClassPool* pool = nullptr;
    std::set<UpstreamKey> blocks;            // upstream allocations it holds
    std::size_t bytes = 0;                   // and their bytes
    std::multiset<UpstreamKey> live_blocks;  // those a live allocation lies in
  };

  // Free ranges of each segment (upstream allocation), merged.
  struct LargeModel {
    struct Region {
      std::size_t size = 0;
      std::map<std::size_t, std::size_t> free;  // offset -> bytes
    };
    CoalescingPool* pool = nullptr;
    std::map<UpstreamKey, Region> regions;

    [[nodiscard]] std::optional<std::size_t> best_fit(std::size_t bytes) const {
      std::optional<std::size_t> best;
      for (const auto& [key, region] : regions) {
        for (const auto& [offset, size] : region.free) {
          if (size >= bytes && (!best || size < *best)) best = size;
        }
      }
      return best;
    }
    Region* region_of(std::uint64_t segment, std::size_t offset) {
      auto it = regions.upper_bound(UpstreamKey{segment, offset});
      if (it == regions.begin()) return nullptr;
      --it;
      if (it->first.first != segment || offset >= it->first.second + it->second.size) return nullptr;
      return &it->second;
    }
    std::optional<std::size_t> free_range_at(const Allocation& a) {
      Region* region = region_of(a.segment->id, a.offset);
      if (region == nullptr) return std::nullopt;
      const auto it = region->free.find(a.offset);
      if (it == region->free.end()) return std::nullopt;
      return it->second;
    }
    std::string take(const Allocation& a, std::size_t bytes) {
      Region* region = region_of(a.segment->id, a.offset);
      if (region == nullptr) return "allocation outside every segment of the coalescing pool";
      auto it = region->free.upper_bound(a.offset);
      if (it == region->free.begin()) return "allocation overlaps a live range";
      --it;
      const std::size_t start = it->first;
      const std::size_t size = it->second;
      if (a.offset + bytes > start + size) return "allocation runs past its free range";
      region->free.erase(it);
      if (a.offset > start) region->free[start] = a.offset - start;
      if (start + size > a.offset + bytes) region->free[a.offset + bytes] = start + size - a.offset - bytes;
      return {};
    }
    void give(const Allocation& a, std::size_t bytes) {
      Region* region = region_of(a.segment->id, a.offset);
      std::size_t start = a.offset;
      std::size_t size = bytes;
      auto next = region->free.lower_bound(start);
      if (next != region->free.end() && next->first == start + size) {
        size += next->second;
        next = region->free.erase(next);
      }
      if (next != region->free.begin()) {
        const auto prev = std::prev(next);
        if (prev->first + prev->second == start) {
          start = prev->first;
          size += prev->second;
          region->free.erase(prev);
        }
      }
      region->free[start] = size;
    }
    [[nodiscard]] std::size_t wholly_free_regions() const {
      std::size_t count = 0;
      for (const auto& [key, region] : regions) {
        count += region.free.size() == 1 && region.free.begin()->second == region.size ? 1 : 0;
      }
      return count;
    }
  };

  [[nodiscard]] bool routes_small(std::size_t bytes) const noexcept {
    return kind_ == PoolKind::SizeClass || (kind_ == PoolKind::Hybrid && bytes <= threshold_);
  }

  [[nodiscard]] std::size_t class_of(std::size_t block) const {
    std::size_t c = 0;
    for (std::size_t size = small_.pool->options().min_block; size < block; size <<= 1U) ++c;
    return c;
  }

  static std::uintptr_t address(const Allocation& a) {
    const auto base = reinterpret_cast<std::uintptr_t>(a.segment->host_ptr != nullptr ? a.segment->host_ptr
                                                                                      : a.segment->native);
    return base + a.offset;
  }

  [[nodiscard]] std::optional<UpstreamKey> containing_upstream(const Allocation& a) const {
    auto it = seen_.upper_bound(UpstreamKey{a.segment->id, a.offset});
    if (it == seen_.begin()) return std::nullopt;
    --it;
    if (it->first.first != a.segment->id || a.offset + a.size > it->first.second + it->second)
      return std::nullopt;
    return it->first;
  }

  std::string insert_live(const Allocation& a) {
    const UpstreamKey key{a.segment->id, a.offset};
    const std::size_t end = a.offset + std::max<std::size_t>(a.size, 1);
    const auto next = ranges_.lower_bound(key);
    if (next != ranges_.end() && next->first.first == key.first && next->first.second < end) {
      return "allocation at offset " + std::to_string(a.offset) + " overlaps a live one";
    }
    if (next != ranges_.begin()) {
      const auto prev = std::prev(next);
      if (prev->first.first == key.first && prev->second > a.offset) {
        return "allocation at offset " + std::to_string(a.offset) + " overlaps a live one";
      }
    }
    ranges_[key] = end;
    return {};
  }

  // A freed class block is in a cache or back in its chunk now, unless its chunk (`chunk_went` bytes) went
  // back upstream whole.
  [[nodiscard]] bool small_free_accounted(const SizeClassPoolStats& before, std::size_t block,
                                          std::size_t chunk_went) const {
    const SizeClassPoolStats after = small_.pool->stats();
    const std::size_t c = class_of(block);
    const std::size_t held_before = before.classes[c].cached_blocks + before.classes[c].free_blocks;
    const std::size_t held_after = after.classes[c].cached_blocks + after.classes[c].free_blocks;
    if (after.returns != before.returns + 1) return false;
    return held_after + chunk_went / block == held_before + 1;
  }

  // Brings the model's view of the upstream up to date: allocations that appeared (allowed only when `added`
  // collects them) belong to the pool the operation was routed to; those that went must not hold a live
  // range.
  std::string sync_upstream(bool small_route, std::vector<std::pair<UpstreamKey, std::size_t>>* added) {
    for (const TestUpstream::Change& change : upstream_.take_changes()) {
      if (change.added) {
        if (added == nullptr)
          return "an upstream allocation appeared during a free, a trim or a failed request";
        added->emplace_back(change.key, change.size);
        seen_[change.key] = change.size;
        if (small_route) {
          small_.blocks.insert(change.key);
          small_.bytes += change.size;
        } else {
          large_.regions[change.key] = LargeModel::Region{change.size, {{change.key.second, change.size}}};
        }
        continue;
      }
      seen_.erase(change.key);
      if (small_.blocks.erase(change.key) != 0) {
        small_.bytes -= change.size;
        if (small_.live_blocks.contains(change.key))
          return "a block holding a live allocation went back upstream";
        continue;
      }
      const auto region = large_.regions.find(change.key);
      if (region == large_.regions.end()) return "an unknown upstream allocation was freed";
      if (region->second.free.size() != 1 || region->second.free.begin()->second != region->second.size) {
        return "a segment with live ranges went back upstream";
      }
      large_.regions.erase(region);
    }
    return {};
  }

  std::string expect_rejected(const Allocation& bad, std::string_view what) {
    const ResourceUsage before = pool_->usage();
    const std::uint64_t reports = misuse_reports_;
    pool_->deallocate(bad);
    if (misuse_reports_ != reports + 1) return std::string(what) + " was not reported exactly once";
    const ResourceUsage after = pool_->usage();
    if (after.in_use_bytes != before.in_use_bytes || after.reserved_bytes != before.reserved_bytes) {
      return std::string(what) + " changed the pool's usage";
    }
    return sync_upstream(false, nullptr);
  }

  std::string check_small(std::size_t& reserved, std::size_t& in_use) {
    const ResourceUsage u = small_.pool->usage();
    const SizeClassPoolStats stats = small_.pool->stats();
    if (u.reserved_bytes != small_.bytes) return "size-class reserved bytes differ from its upstream blocks";
    if (stats.free_bytes != u.reserved_bytes - u.in_use_bytes) {
      return "size-class bytes unaccounted: reserved " + std::to_string(u.reserved_bytes) + ", in use " +
             std::to_string(u.in_use_bytes) + ", cached or free " + std::to_string(stats.free_bytes);
    }
    std::size_t largest = 0;
    for (const SizeClassStats& c : stats.classes) {
      largest = c.cached_blocks + c.free_blocks != 0 ? c.block_size : largest;
      // One thread: its own cache and the central list, each bounded.
      if (c.cached_blocks > 2 * small_.pool->options().max_pooled_per_bucket) {
        return "size-class " + std::to_string(c.block_size) + " caches " + std::to_string(c.cached_blocks) +
               " blocks, more than its two caches may hold";
      }
    }
    if (u.largest_free_range != largest)
      return "size-class largest free range is not its largest class with a cached or free block";
    if (stats.cache_hits != u.cache_hits || stats.cache_misses != u.cache_misses)
      return "size-class stats and usage differ";
    reserved += u.reserved_bytes;
    in_use += u.in_use_bytes;
    return {};
  }

  std::string check_large(std::size_t& reserved, std::size_t& in_use) {
    const ResourceUsage u = large_.pool->usage();
    const FragmentationFigures f = large_.pool->fragmentation();
    std::size_t region_bytes = 0;
    std::size_t free_bytes = 0;
    std::size_t largest = 0;
    std::size_t ranges = 0;
    for (const auto& [key, region] : large_.regions) {
      region_bytes += region.size;
      for (const auto& [offset, size] : region.free) {
        free_bytes += size;
        largest = std::max(largest, size);
        ++ranges;
      }
    }
    if (u.reserved_bytes != region_bytes) return "coalescing reserved bytes differ from its segments";
    if (f.free_bytes != free_bytes || u.reserved_bytes - u.in_use_bytes != free_bytes) {
      return "coalescing free bytes " + std::to_string(f.free_bytes) + ", model " +
             std::to_string(free_bytes);
    }
    if (f.largest_free_range != largest || u.largest_free_range != largest) {
      return "coalescing largest free range " + std::to_string(f.largest_free_range) + ", model " +
             std::to_string(largest);
    }
    if (f.free_range_count != ranges) {
      return "coalescing has " + std::to_string(f.free_range_count) + " free ranges, model " +
             std::to_string(ranges);
    }
    if (f.segment_count != large_.regions.size()) return "coalescing segment count differs";
    reserved += u.reserved_bytes;
    in_use += u.in_use_bytes;
    return {};
  }

  std::string check() {
    std::size_t reserved = 0;
    std::size_t in_use = 0;
    if (small_.pool != nullptr) {
      if (std::string error = check_small(reserved, in_use); !error.empty()) return error;
    }
    if (large_.pool != nullptr) {
      if (std::string error = check_large(reserved, in_use); !error.empty()) return error;
    }
    const ResourceUsage u = pool_->usage();
    if (u.reserved_bytes != reserved || u.in_use_bytes != in_use)
      return "usage() is not the sum of its pools";
    if (u.reserved_bytes != upstream_.live_bytes()) {
      return "reserved " + std::to_string(u.reserved_bytes) + " but the upstream holds " +
             std::to_string(upstream_.live_bytes());
    }
    if (u.in_use_bytes != in_use_) {
      return "in use " + std::to_string(u.in_use_bytes) + ", model " + std::to_string(in_use_);
    }
    if (u.upstream_allocations != upstream_.allocations() ||
        u.upstream_deallocations != upstream_.deallocations()) {
      return "upstream call counts differ from the upstream's own";
    }
    if (u.cache_hits + u.cache_misses != allocations_) return "hits + misses != successful allocations";
    if (upstream_.bad_frees() != 0) return "the pool freed something upstream that it did not hold";
    return {};
  }

  PoolKind kind_;
  TestUpstream upstream_;
  std::uint64_t misuse_reports_ = 0;
  ScopedMisuseHandler misuse_;
  std::unique_ptr<MemoryResource> pool_;
  std::size_t threshold_ = 0;
  SmallModel small_;
  LargeModel large_;

  std::vector<Live> live_;
  std::map<UpstreamKey, std::size_t> ranges_;  // live allocations: start -> end
  std::map<UpstreamKey, std::size_t> seen_;    // the upstream's live allocations, as of the last operation
  std::vector<Allocation> freed_ = std::vector<Allocation>(16);
  std::size_t next_freed_ = 0;
  std::size_t in_use_ = 0;
  std::uint64_t allocations_ = 0;
  std::uint64_t failed_ = 0;
};

}  // namespace unimem::test
