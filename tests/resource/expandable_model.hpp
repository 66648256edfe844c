#pragma once
// A reference model of ExpandablePool, driven one operation at a time by expandable_pool_test.cpp (seeded
// random sequences) and by tests/fuzz/pool_fuzz.cpp (fuzz input); no GoogleTest here. The pool maps memory
// itself, so the model watches the backend rather than a recording upstream. After every operation:
//   - live ranges never overlap, lie inside their reserved range and have the alignment asked for; the
//     snapshot's allocated ranges are exactly the live ones;
//   - usage() is exact: in-use bytes are the requests rounded up to the granularity, reserved bytes are the
//     bytes mapped in the pool's ranges (Backend::mapped_bytes) and what the device holds for it
//     (Backend::live_bytes), hits + misses are the successful allocations;
//   - every granule a live range touches is mapped (and on a backed device every live byte takes a memset
//     and keeps it), and mapped granules never exceed the most granules live ranges have touched at once
//     since the last trim (every free here is in host order, so idle granules are always at hand);
//   - a trim leaves exactly the touched granules mapped; a failed request changes no in-use byte and maps
//     nothing; misuse (a double free, a forged allocation) is reported and changes nothing.
// Each operation returns an empty string, or the first violation found.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "unimem/backend/backend.hpp"
#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/resource/backend_resource.hpp"
#include "unimem/resource/expandable_pool.hpp"

namespace unimem::test {

class ExpandableModel {
 public:
  // `write_data`: the device holds data (a backed simulated device): every live byte is written and read.
  ExpandableModel(BackendResource& upstream, ExpandablePoolOptions options = {}, bool write_data = false)
      : backend_(upstream.backend()),
        device_(upstream.device().index),
        baseline_(backend_.live_bytes(device_)),
        misuse_([this](std::string_view /*message*/) { ++misuse_reports_; }),
        pool_(std::make_unique<ExpandablePool>(upstream, options)),
        granule_(pool_->granule()),
        write_data_(write_data) {}
  ~ExpandableModel() {
    for (const Live& l : live_) pool_->deallocate(l.allocation);
  }
  ExpandableModel(const ExpandableModel&) = delete;
  ExpandableModel& operator=(const ExpandableModel&) = delete;
  ExpandableModel(ExpandableModel&&) = delete;
  ExpandableModel& operator=(ExpandableModel&&) = delete;

  [[nodiscard]] std::size_t live_count() const noexcept { return live_.size(); }
  [[nodiscard]] std::uint64_t failed_allocations() const noexcept { return failed_; }
  [[nodiscard]] ExpandablePool& pool() noexcept { return *pool_; }

  std::string allocate(std::size_t bytes, std::size_t alignment) {
    const ResourceUsage before = pool_->usage();
    Allocation a;
    try {
      a = pool_->allocate(bytes, nullptr, alignment);
    } catch (const OutOfMemory&) {
      ++failed_;
      const ResourceUsage after = pool_->usage();
      if (after.in_use_bytes != before.in_use_bytes) return "a failed allocation changed in-use bytes";
      if (after.reserved_bytes > before.reserved_bytes) return "a failed allocation left memory mapped";
      return check();
    }
    ++allocations_;
    if (a.size != bytes) return "allocation size " + std::to_string(a.size) + " != " + std::to_string(bytes);
    const auto address = reinterpret_cast<std::uintptr_t>(a.segment->native) + a.offset;
    if (!is_aligned(address, std::max(alignment, kDefaultAlignment)))
      return "allocation not aligned to " + std::to_string(alignment);
    const std::size_t end = a.offset + align_up(bytes, ExpandablePool::kGranularity);
    if (end > a.segment->size) return "allocation runs past its reserved range";
    const Key key{a.segment->id, a.offset};
    const auto next = ranges_.lower_bound(key);
    if (next != ranges_.end() && next->first.first == key.first && next->first.second < end)
      return "allocation at offset " + std::to_string(a.offset) + " overlaps a live one";
    if (next != ranges_.begin()) {
      const auto prev = std::prev(next);
      if (prev->first.first == key.first && prev->second > a.offset)
        return "allocation at offset " + std::to_string(a.offset) + " overlaps a live one";
    }
    ranges_[key] = end;
    segments_[a.segment->id] = a.segment;
    const auto value = static_cast<std::uint8_t>(1 + allocations_ % 251);
    if (write_data_) {
      try {
        backend_.memset(*a.segment, a.offset, value, a.size);
      } catch (const Error& e) {
        return std::string("memset into a live allocation failed: ") + e.what();
      }
    }
    live_.push_back(Live{a, value});
    in_use_ += end - a.offset;
    peak_ = std::max(peak_, touched());
    return check();
  }

  std::string free(std::size_t pick) {
    if (live_.empty()) return {};
    const std::size_t i = pick % live_.size();
    const Live l = live_[i];
    if (write_data_) {
      for (const std::size_t at : {std::size_t{0}, l.allocation.size / 2, l.allocation.size - 1}) {
        std::uint8_t byte = 0;
        backend_.copy(Segment::host_view(&byte, 1), 0, *l.allocation.segment, l.allocation.offset + at, 1);
        if (byte != l.value) return "byte " + std::to_string(at) + " of a live allocation changed";
      }
    }
    live_[i] = live_.back();
    live_.pop_back();
    ranges_.erase({l.allocation.segment->id, l.allocation.offset});
    in_use_ -= align_up(l.allocation.size, ExpandablePool::kGranularity);
    if (!pool_->deallocate(l.allocation)) return "a live allocation was refused";
    freed_[next_freed_++ % freed_.size()] = l.allocation;
    return check();
  }

  std::string trim() {
    (void)pool_->trim();
    peak_ = touched();
    if (pool_->usage().reserved_bytes != peak_ * granule_) {
      return "trim left " + std::to_string(pool_->usage().reserved_bytes) + " bytes mapped for " +
             std::to_string(peak_) + " touched granules";
    }
    return check();
  }

  std::string free_again(std::size_t pick) {
    const Allocation& stale = freed_[pick % freed_.size()];
    if (!stale) return {};
    return expect_rejected(stale, "double free");
  }

  std::string free_forged(std::size_t pick, unsigned bit) {
    if (live_.empty()) return {};
    Allocation forged = live_[pick % live_.size()].allocation;
    forged.cookie ^= std::uint64_t{1} << (bit % 64U);
    return expect_rejected(forged, "forged allocation");
  }

  // Frees everything and trims: nothing may stay mapped.
  std::string finish() {
    while (!live_.empty()) {
      if (std::string error = free(live_.size() - 1); !error.empty()) return error;
    }
    if (std::string error = trim(); !error.empty()) return error;
    if (pool_->usage().reserved_bytes != 0) return "mapped bytes left after freeing all and trimming";
    if (backend_.live_bytes(device_) != baseline_) return "the device holds memory after freeing all";
    return {};
  }

 private:
  using Key = std::pair<std::uint64_t, std::size_t>;  // (range id, offset)

  struct Live {
    Allocation allocation;
    std::uint8_t value = 0;
  };

  // Granules live ranges touch, per range id.
  [[nodiscard]] std::map<std::uint64_t, std::set<std::size_t>> touched_granules() const {
    std::map<std::uint64_t, std::set<std::size_t>> granules;
    for (const auto& [key, end] : ranges_) {
      for (std::size_t g = key.second / granule_; g < (end + granule_ - 1) / granule_; ++g)
        granules[key.first].insert(g);
    }
    return granules;
  }
  [[nodiscard]] std::size_t touched() const {
    std::size_t count = 0;
    for (const auto& [id, granules] : touched_granules()) count += granules.size();
    return count;
  }

  std::string expect_rejected(const Allocation& bad, const char* what) {
    const ResourceUsage before = pool_->usage();
    const std::uint64_t reports = misuse_reports_;
    if (pool_->deallocate(bad)) return std::string(what) + " was accepted";
    if (misuse_reports_ != reports + 1) return std::string(what) + " was not reported exactly once";
    const ResourceUsage after = pool_->usage();
    if (after.in_use_bytes != before.in_use_bytes || after.reserved_bytes != before.reserved_bytes)
      return std::string(what) + " changed the pool's usage";
    return check();
  }

  std::string check() {
    const ResourceUsage u = pool_->usage();
    if (u.in_use_bytes != in_use_)
      return "in use " + std::to_string(u.in_use_bytes) + ", model " + std::to_string(in_use_);
    const auto touched_now = touched_granules();
    std::size_t mapped = 0;
    for (const auto& [id, segment] : segments_) {
      const std::size_t segment_mapped = backend_.mapped_bytes(*segment);
      mapped += segment_mapped;
      const auto it = touched_now.find(id);
      if (it != touched_now.end() && segment_mapped < it->second.size() * granule_)
        return "a granule a live range touches is not mapped";
    }
    if (u.reserved_bytes != mapped) {
      return "reserved " + std::to_string(u.reserved_bytes) + " but the ranges map " + std::to_string(mapped);
    }
    if (u.reserved_bytes != backend_.live_bytes(device_) - baseline_)
      return "reserved bytes differ from what the device holds for the pool";
    if (u.reserved_bytes % granule_ != 0) return "reserved bytes are not whole granules";
    if (u.reserved_bytes > peak_ * granule_) {
      return "mapped " + std::to_string(u.reserved_bytes / granule_) + " granules, past the peak of " +
             std::to_string(peak_) + " touched";
    }
    if (u.cache_hits + u.cache_misses != allocations_) return "hits + misses != successful allocations";
    const PoolSnapshot snapshot = pool_->snapshot();
    if (snapshot.segments.size() != u.upstream_allocations || snapshot.segments.size() < segments_.size())
      return "the snapshot's ranges differ from usage()";
    std::size_t allocated = 0;
    for (const SegmentSnapshot& segment : snapshot.segments) {
      for (const RangeSnapshot& r : segment.ranges) {
        if (!r.allocated) continue;
        ++allocated;
        const auto it = ranges_.find({segment.id, r.offset});
        if (it == ranges_.end() || it->second != r.offset + r.size)
          return "the snapshot shows a range that is not live at offset " + std::to_string(r.offset);
      }
    }
    if (allocated != ranges_.size()) return "the snapshot misses live ranges";
    return {};
  }

  Backend& backend_;
  int device_;
  std::size_t baseline_;  // the device's live bytes before the pool
  std::uint64_t misuse_reports_ = 0;
  ScopedMisuseHandler misuse_;
  std::unique_ptr<ExpandablePool> pool_;
  std::size_t granule_;
  bool write_data_;

  std::vector<Live> live_;
  std::map<Key, std::size_t> ranges_;                 // live: (range id, offset) -> end
  std::map<std::uint64_t, const Segment*> segments_;  // ranges a live allocation has been seen in
  std::vector<Allocation> freed_ = std::vector<Allocation>(16);
  std::size_t next_freed_ = 0;
  std::size_t in_use_ = 0;
  std::size_t peak_ = 0;  // granules, since the last trim
  std::uint64_t allocations_ = 0;
  std::uint64_t failed_ = 0;
};

}  // namespace unimem::test
