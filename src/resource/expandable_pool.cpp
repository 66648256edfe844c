#include "unimem/resource/expandable_pool.hpp"

#include <algorithm>
#include <bit>
#include <limits>
#include <mutex>
#include <string>
#include <vector>

#include "resource/free_ranges.hpp"
#include "resource/granule_bitmap.hpp"
#include "resource/pool_support.hpp"
#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

using detail::kNoRange;
using Range = detail::FreeRanges::Range;

struct ExpandablePool::State {
  // One reserved address range. Ranges of the engine cover [0, frontier); past it lies the guard, a record
  // that is never free and never handed out (requested 0), so that the range before it is always
  // ranges[guard].prev and growth extends or follows it.
  struct Arena {
    Segment range;
    std::uint32_t guard = kNoRange;
    detail::GranuleBitmap mapped;  // per pool granule up to the frontier, set when mapped
    std::size_t mapped_end = 0;    // past the highest granule ever mapped
  };

  State(ExpandablePool& owner, std::size_t pool_granule, std::size_t reservation_bytes, bool hints)
      : pool(owner),
        granule(pool_granule),
        granule_shift(static_cast<unsigned>(std::countr_zero(pool_granule))),
        reservation(reservation_bytes),
        placement_hints(hints),
        ranges(owner, "ExpandablePool") {}

  ExpandablePool& pool;
  const std::size_t granule;  // a power of two
  const unsigned granule_shift;
  const std::size_t reservation;
  const bool placement_hints;
  detail::FreeRanges ranges;
  detail::PoolMutex mutex;
  std::vector<std::unique_ptr<Arena>> arenas;     // index = segment number in `ranges`; addresses never move
  std::vector<std::uint32_t> reclaim_candidates;  // reclaim's, kept to spare an allocation per call
  std::vector<std::pair<std::size_t, std::size_t>> mapped_runs;  // map_missing's (first, count), likewise

  std::size_t mapped = 0;  // bytes
  // Granules mapping may reach while idle granules are at hand. Raised only when a growth finds too few idle
  // granules to unmap, to the granules then mapped less those pending frees hold; so (every free settled) it
  // is the most granules live ranges have touched at once since the start or the last trim, kept without
  // counting touched granules on every allocation and free.
  std::size_t mapping_limit = 0;
  // False from a growth that found no idle granule to unmap until the next free (free_live): no free range
  // then holds a mapped granule of its own, so placement on mapped granules has nothing to look for.
  bool idle_granules = false;
  std::uint64_t map_calls = 0;
  std::uint64_t unmap_calls = 0;
  // Placement's memory of free ranges with no wholly mapped position: best fit keeps offering the same mostly
  // unmapped hole, and walking its mapped runs again is most of placement's cost. Whether a range has such a
  // position depends only on its extent, the request and the bitmap, and a range without one for `search`
  // bytes has none for more (each larger window holds a smaller one at a position placement looks at), so a
  // hint holds while the range keeps its segment, offset and size and nothing was mapped or unmapped since.
  struct UnmappedHint {
    std::size_t offset = 0;
    std::size_t size = 0;
    std::size_t search = 0;
    std::uint64_t map_epoch = 0;  // 0: none
    std::uint32_t segment = kNoRange;
  };
  std::vector<UnmappedHint> unmapped_hints;  // by range record
  std::uint64_t map_epoch = 1;               // steps at every map and unmap
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;

  [[nodiscard]] Backend& backend() const noexcept { return pool.backend(); }

  // --- ranges ---

  std::uint32_t add_arena() {
    arenas.reserve(arenas.size() + 1);
    auto arena = std::make_unique<Arena>();
    arena->range = backend().reserve_address_range(pool.device().index, reservation);
    const auto index = static_cast<std::uint32_t>(arenas.size());
    try {
      arena->guard = ranges.add(index, 0, reservation, kNoRange, kNoRange);
    } catch (...) {
      backend().deallocate(arena->range);
      throw;
    }
    ranges[arena->guard].free = false;
    arenas.push_back(std::move(arena));
    return index;
  }

  // Sizes the per-granule records to cover the arena up to `frontier` bytes: they grow with the frontier, so
  // a pool over a large device costs nothing per granule it never reaches.
  void track(Arena& arena, std::size_t frontier) {
    const std::size_t needed = end_granule(frontier);
    if (needed <= arena.mapped.size()) return;
    const std::size_t target = std::min(std::max(needed, 2 * arena.mapped.size()), reservation / granule);
    arena.mapped.resize(target);
  }

  // A free range (in no list) of at least `search` bytes at the end of the newest arena: the free range
  // before the guard grown (when `stream` may use it), or a new one; a new arena when the newest has no room
  // left.
  std::uint32_t grow(std::size_t search, Stream* stream, std::size_t requested) {
    if (search > reservation) {
      throw OutOfMemory(requested, to_string(pool.device()), 0, reservation,
                        "ExpandablePool: the request needs " + std::to_string(search) +
                            " bytes, more than a reserved range of " + std::to_string(reservation) +
                            " bytes");
    }
    // Every stream grows the newest range, so that streams' ranges share granules (docs/architecture.md,
    // "ExpandablePool").
    std::uint32_t a = arenas.empty() ? kNoRange : static_cast<std::uint32_t>(arenas.size() - 1);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (a != kNoRange) {
        Arena& arena = *arenas[a];
        Range& guard = ranges[arena.guard];
        const std::uint32_t before = guard.prev;
        if (before != kNoRange && ranges[before].free &&
            ranges.order().ready_for(ranges[before].fence, stream)) {
          const std::size_t more = search - std::min(search, ranges[before].size);
          if (more <= guard.size) {
            track(arena, guard.offset + more);
            ranges.erase_free(before);
            ranges.order().take(ranges[before].fence, stream);
            ranges[before].size += more;
            guard.offset += more;
            guard.size -= more;
            return before;
          }
        } else if (search <= guard.size) {
          track(arena, guard.offset + search);
          const std::uint32_t index = ranges.add(a, guard.offset, search, before, arena.guard);
          Range& moved_guard = ranges[arena.guard];  // add() may have moved the records
          moved_guard.offset += search;
          moved_guard.size -= search;
          return index;
        }
      }
      a = add_arena();
    }
    throw Error("ExpandablePool: a new range of " + std::to_string(reservation) + " bytes did not fit " +
                std::to_string(search) + " bytes");
  }

  // Frees live range `index` in the order of `stream`: its granules may be idle now.
  void free_live(std::uint32_t index, Stream* stream) {
    (void)ranges.free_range(index, stream);
    idle_granules = true;
  }

  // --- mapping ---

  // Shifts, not divisions: the granule is a power of two, and these run on every allocation and free.
  [[nodiscard]] std::size_t first_granule(std::size_t offset) const noexcept {
    return offset >> granule_shift;
  }
  [[nodiscard]] std::size_t end_granule(std::size_t end) const noexcept {
    return (end + granule - 1) >> granule_shift;
  }
  [[nodiscard]] std::size_t mapped_granules() const noexcept { return mapped >> granule_shift; }
  // The record past an arena's frontier: never free, never handed out (live ranges request at least a byte).
  [[nodiscard]] static bool is_guard(const Range& r) noexcept { return !r.free && r.requested == 0; }
  // How far mapping `missing` more granules would take the mapped ones past the limit: the idle granules to
  // unmap first (0: none). When fewer are idle, the pool is growing past its peak.
  [[nodiscard]] std::size_t excess_over_limit(std::size_t missing) const noexcept {
    return mapped_granules() + missing > mapping_limit ? mapped_granules() + missing - mapping_limit : 0;
  }

  void map_run(Arena& arena, std::size_t first, std::size_t count) {
    backend().map(arena.range, first * granule, count * granule);
    ++map_calls;
    ++map_epoch;
    arena.mapped.set(first, count);
    mapped += count * granule;
    arena.mapped_end = std::max(arena.mapped_end, first + count);
  }

  void unmap_run(Arena& arena, std::size_t first, std::size_t count) {
    backend().unmap(arena.range, first * granule, count * granule);
    ++unmap_calls;
    ++map_epoch;
    arena.mapped.clear(first, count);
    mapped -= count * granule;
  }

  // Unmaps mapped granules of [low, high), which no live range touches, from the top, up to want - done.
  void unmap_idle(Arena& arena, std::size_t low, std::size_t high, std::size_t want, std::size_t& done) {
    std::size_t g = high;
    while (g > low && done < want) {
      // Runs are found a word at a time, in both directions.
      const std::size_t top = arena.mapped.last_with(low, g, true);
      if (top == detail::GranuleBitmap::kNone) return;
      g = top + 1;
      const std::size_t below = arena.mapped.last_with(low, top, false);
      std::size_t start = below == detail::GranuleBitmap::kNone ? low : below + 1;
      if (g - start > want - done) start = g - (want - done);
      unmap_run(arena, start, g - start);
      done += g - start;
      g = start;
    }
  }

  // Whether range `index` lets a granule it reaches into go: a free range whose free's event has completed
  // (or needs none), or, when `wait`, once waited for on the host; a guard, which holds nothing. A live range
  // keeps every granule it touches.
  bool settled(std::uint32_t index, bool wait) {
    const Range& r = ranges[index];
    if (!r.free) return is_guard(r);
    if (ranges.order().ready_for(r.fence, nullptr)) return true;
    if (!wait) return false;
    ranges.order().wait(r.fence, nullptr);
    return true;
  }

  // Whether every other range reaching into granule `g` at range `index`'s edge (its neighbours in the
  // address list) lets it go: the edge granules of a free range may hold a live neighbour or another
  // stream's pending free.
  bool neighbours_settled(std::uint32_t index, std::size_t g, bool wait) {
    const std::size_t low = g * granule;
    const std::size_t high = low + granule;
    for (std::uint32_t i = ranges[index].prev; i != kNoRange && ranges[i].offset + ranges[i].size > low;
         i = ranges[i].prev) {
      if (!settled(i, wait)) return false;
    }
    for (std::uint32_t i = ranges[index].next; i != kNoRange && ranges[i].offset < high; i = ranges[i].next) {
      if (!settled(i, wait)) return false;
    }
    return true;
  }

  // What reclaim did: granules unmapped, and mapped granules inside free ranges it skipped because their
  // free is still pending (idle once it completes).
  struct Reclaimed {
    std::size_t unmapped = 0;
    std::size_t pending = 0;
  };

  // Unmaps up to `want` idle granules: those inside free ranges, largest ranges first, then those mapped
  // ahead past each range's frontier. Frees whose event has not completed are skipped, or waited for (host
  // order) when `wait`; so is a granule at a range's edge that a pending neighbour shares.
  Reclaimed reclaim(std::size_t want, bool wait) {
    std::vector<std::uint32_t>& candidates = reclaim_candidates;
    candidates.clear();
    ranges.for_each_free([&](std::uint32_t index) {
      const Range& r = ranges[index];
      // Without waiting, a range holding no whole granule shares its granules with ranges that are live or
      // pending (ready free neighbours would have merged with it); a trim waits for them and takes them.
      if (wait || end_granule(r.offset) < (r.offset + r.size) / granule) candidates.push_back(index);
    });
    std::sort(candidates.begin(), candidates.end(),
              [&](std::uint32_t x, std::uint32_t y) { return ranges[x].size > ranges[y].size; });
    std::size_t done = 0;
    std::size_t pending = 0;
    for (const std::uint32_t index : candidates) {
      if (done == want) return {done, pending};
      const Range& r = ranges[index];
      if (!settled(index, wait)) {
        pending += arenas[r.segment]->mapped.count(end_granule(r.offset), first_granule(r.offset + r.size));
        continue;
      }
      // Only wholly free granules go: not those a live or pending neighbour shares.
      std::size_t low = first_granule(r.offset);
      std::size_t high = end_granule(r.offset + r.size);
      if (r.offset % granule != 0 && !neighbours_settled(index, low, wait)) ++low;
      if ((r.offset + r.size) % granule != 0 && high > low && !neighbours_settled(index, high - 1, wait))
        --high;
      unmap_idle(*arenas[r.segment], low, high, want, done);
    }
    for (const auto& arena : arenas) {
      if (done == want) return {done, pending};
      const std::size_t frontier = ranges[arena->guard].offset;
      std::size_t low = first_granule(frontier);
      if (frontier % granule != 0 && !neighbours_settled(arena->guard, low, wait)) ++low;
      unmap_idle(*arena, low, arena->mapped_end, want, done);
    }
    return {done, pending};
  }

  // Where an allocation of `search` bytes (the alignment's slack included) goes: free range `index` (taken
  // out of its list by take_fit or grow; this may trade it for another free range the stream may use) and
  // `at` bytes into it, and whether every granule of [offset + at, offset + at + search) is mapped already.
  struct Placement {
    std::size_t at = 0;
    bool mapped = false;
  };
  Placement place(std::uint32_t& index, std::size_t search, Stream* stream) {
    if (mapped_at(index, 0, search)) [[likely]]
      return {0, true};
    return place_on_mapped(index, search, stream);
  }

  // The low end of the best fit needs mapping. A granule mapped already costs nothing; mapping one costs a
  // device call (tens of microseconds on a GPU), and past the peak unmapping an idle one elsewhere too. So
  // there the allocation goes where the fewest granules need mapping in the best fit, or, when every position
  // there needs some, to the first free range the stream may use now that needs none (found from the
  // smallest sizes up). Without this, a request that best fit sends to an unmapped hole takes idle granules
  // from a larger free range that the next request needs again, and the two trade the same granules every
  // step.
  [[gnu::noinline, gnu::cold]] Placement place_on_mapped(std::uint32_t& index, std::size_t search,
                                                         Stream* stream) {
    const Range& fit = ranges[index];
    const Arena& arena = *arenas[fit.segment];
    const std::size_t first = first_granule(fit.offset);
    const std::size_t end = end_granule(fit.offset + search);
    // Only where map_missing would first unmap idle granules: below the limit the granules are new and best
    // fit's layout is kept, which keeps the peak itself low; so is it while no granule is idle (the pool
    // grows past its peak). At least one granule is missing, so a pool at its limit needs no count.
    if (!idle_granules ||
        (mapped_granules() < mapping_limit && excess_over_limit(arena.mapped.count_clear(first, end)) == 0))
      return {};
    std::size_t at = 0;
    if (has_mapped_position(index, search, at)) return {at, true};
    std::uint32_t choice = kNoRange;
    ranges.for_each_fit(search, [&](std::uint32_t other) {
      if (!ranges.order().ready_for(ranges[other].fence, stream)) return false;
      at = 0;
      if (!mapped_at(other, 0, search) && !has_mapped_position(other, search, at)) return false;
      choice = other;
      return true;
    });
    if (choice == kNoRange) return {fewest_missing_position(index, search), false};
    ranges.retake(index, choice, stream);
    index = choice;
    return {at, true};
  }

  static constexpr int kPlacementRuns = 16;  // bounds the search in a range mapped in many pieces

  // Whether every granule of `search` bytes at `at` into free range `index` is mapped.
  [[nodiscard]] bool mapped_at(std::uint32_t index, std::size_t at, std::size_t search) const noexcept {
    const Range& r = ranges[index];
    return arenas[r.segment]->mapped.all_set(first_granule(r.offset + at),
                                             end_granule(r.offset + at + search));
  }

  // Calls fn(at, run) for the positions placement looks at in free range `index` for `search` bytes past its
  // low end, in order, until fn returns true: its high end (run empty), then the start and the end of each of
  // its first kPlacementRuns mapped runs (clipped to the range), with the run: a maximal run of mapped
  // granules [run.first, run.end) starting in the range's whole granules.
  struct MappedRun {
    std::size_t first = 0;
    std::size_t end = 0;
  };
  template <typename Fn>
  void for_each_position(std::uint32_t index, std::size_t search, const Fn& fn) const {
    const Range& r = ranges[index];
    const detail::GranuleBitmap& mapped_bits = arenas[r.segment]->mapped;
    const std::size_t room = r.size - search;       // the highest start
    const std::size_t low = end_granule(r.offset);  // mapped runs starting inside the range
    if (room != 0 && fn(room, MappedRun{})) return;
    const std::size_t high = std::min(end_granule(r.offset + r.size), mapped_bits.size());
    std::size_t g = mapped_bits.first_with(low, high, true);
    for (int run = 0; run < kPlacementRuns && g < high; ++run) {
      const std::size_t run_end = mapped_bits.first_with(g, high, false);
      const MappedRun mapped_run{g, run_end};
      if (fn(std::min(g * granule - r.offset, room), mapped_run)) return;
      const std::size_t end_offset = std::min(run_end * granule, r.offset + r.size) - r.offset;
      if (end_offset >= search && fn(std::min(end_offset - search, room), mapped_run)) return;
      g = mapped_bits.first_with(run_end, high, true);
    }
  }

  // The first of for_each_position's positions (past the low end) where every granule of `search` bytes is
  // mapped, into `at`; whether there is one. No counting: it runs over many ranges. Beside a run the answer
  // is arithmetic: the granule after the run is unmapped (or past the range), and so is the one before it
  // unless the run starts at the range's first whole granule, where the bitmap is asked.
  bool mapped_position(std::uint32_t index, std::size_t search, std::size_t& at) const {
    const std::size_t offset = ranges[index].offset;
    const std::size_t low = end_granule(offset);  // the range's first whole granule
    const detail::GranuleBitmap& mapped_bits = arenas[ranges[index].segment]->mapped;
    bool found = false;
    for_each_position(index, search, [&](std::size_t candidate, const MappedRun& run) {
      const std::size_t first = first_granule(offset + candidate);
      const std::size_t end = end_granule(offset + candidate + search);
      if (run.first == run.end) {
        found = mapped_bits.all_set(first, end);
      } else {
        found = end <= run.end &&
                (first >= run.first || (run.first == low && mapped_bits.all_set(first, run.first)));
      }
      if (found) at = candidate;
      return found;
    });
    return found;
  }

  // mapped_position, remembering a range that has none (UnmappedHint).
  bool has_mapped_position(std::uint32_t index, std::size_t search, std::size_t& at) noexcept {
    const Range& r = ranges[index];
    if (index < unmapped_hints.size()) {
      const UnmappedHint& hint = unmapped_hints[index];
      if (hint.map_epoch == map_epoch && hint.search <= search && hint.offset == r.offset &&
          hint.size == r.size && hint.segment == r.segment)
        return false;
    }
    if (mapped_position(index, search, at)) return true;
    if (!placement_hints) return false;
    try {
      if (index >= unmapped_hints.size()) unmapped_hints.resize(ranges.records().size());
      unmapped_hints[index] = UnmappedHint{r.offset, r.size, search, map_epoch, r.segment};
    } catch (const std::bad_alloc&) {
      // no room for the hint: the next placement walks the range again
    }
    return false;
  }

  // The position in free range `index` needing the fewest unmapped granules for `search` bytes: its low end
  // or one of for_each_position's; ties go to the lower address.
  [[nodiscard]] std::size_t fewest_missing_position(std::uint32_t index, std::size_t search) const {
    const std::size_t offset = ranges[index].offset;
    const detail::GranuleBitmap& mapped_bits = arenas[ranges[index].segment]->mapped;
    const auto missing_at = [&](std::size_t at) {
      return mapped_bits.count_clear(first_granule(offset + at), end_granule(offset + at + search));
    };
    std::size_t best = 0;
    std::size_t missing = missing_at(0);
    for_each_position(index, search, [&](std::size_t at, const MappedRun& /*run*/) {
      const std::size_t m = missing_at(at);
      if (m < missing || (m == missing && at < best)) {
        best = at;
        missing = m;
      }
      return false;
    });
    return best;
  }

  // Maps every unmapped granule that live range [offset, offset + size) of `arena` touches. When that would
  // take the mapped granules past the limit, idle granules are unmapped first, as many as the excess.
  // Returns whether anything was mapped. On failure nothing this call mapped stays mapped and the limit is
  // what it was. `known_mapped`: place() found the granules mapped.
  bool ensure_mapped(Arena& arena, std::size_t offset, std::size_t size, std::size_t requested,
                     bool known_mapped) {
    const std::size_t first = first_granule(offset);
    const std::size_t end = end_granule(offset + size);
    if (known_mapped || arena.mapped.all_set(first, end)) [[likely]]
      return false;
    map_missing(arena, first, end, requested);
    return true;
  }

  // ensure_mapped's slow part: maps the unmapped granules of [first, end).
  [[gnu::noinline, gnu::cold]] void map_missing(Arena& arena, std::size_t first, std::size_t end,
                                                std::size_t requested) {
    const std::size_t missing = arena.mapped.count_clear(first, end);
    std::vector<std::pair<std::size_t, std::size_t>>& done = mapped_runs;  // runs this call mapped
    done.clear();
    std::size_t pending = 0;
    try {
      if (const std::size_t excess = excess_over_limit(missing); excess != 0) {
        const Reclaimed reclaimed = reclaim(excess, false);
        pending = reclaimed.pending;
        if (reclaimed.unmapped < excess && pending == 0) idle_granules = false;
      }
      for (std::size_t g = arena.mapped.first_with(first, end, false); g < end;
           g = arena.mapped.first_with(g, end, false)) {
        const std::size_t run_end = arena.mapped.first_with(g, end, true);
        try {
          map_run(arena, g, run_end - g);
        } catch (const OutOfMemory&) {
          // The device is full: give back every idle granule, waiting for pending frees, and try once more.
          if (reclaim(std::numeric_limits<std::size_t>::max(), true).unmapped == 0) throw;
          map_run(arena, g, run_end - g);
        }
        done.emplace_back(g, run_end - g);
        g = run_end;
      }
    } catch (const OutOfMemory& e) {
      undo(arena, done);
      const MemoryInfo memory = backend().memory_info(pool.device().index);
      throw OutOfMemory(requested, to_string(pool.device()), memory.free_bytes, memory.total_bytes,
                        "ExpandablePool: mapping " + std::to_string(missing * granule) +
                            " bytes for a request of " + std::to_string(requested) + " bytes with " +
                            std::to_string(mapped) + " bytes mapped, device memory " +
                            std::to_string(memory.total_bytes) + " bytes (" + e.what() + ")");
    } catch (...) {
      undo(arena, done);
      throw;
    }
    // Past the limit only when too few idle granules could go: live ranges touch the rest, or frees still
    // pending hold them, and those do not raise the limit (a later growth unmaps them once they complete).
    mapping_limit = std::max(mapping_limit, mapped_granules() - pending);
  }

  void undo(Arena& arena, const std::vector<std::pair<std::size_t, std::size_t>>& runs) noexcept {
    for (const auto& [first, count] : runs) {
      try {
        unmap_run(arena, first, count);
      } catch (const std::exception& e) {
        report_misuse(std::string("ExpandablePool: unmapping after a failed map: ") + e.what());
      }
    }
  }

  [[nodiscard]] bool is_live(std::uint32_t index, const Allocation& allocation) const noexcept {
    return ranges.is_live(index, detail::cookie_generation(allocation.cookie), allocation.offset,
                          allocation.size) &&
           &arenas[ranges[index].segment]->range == allocation.segment;
  }
};

std::size_t ExpandablePool::default_granule(const DeviceInfo& info) noexcept {
  return std::max(info.virtual_memory_granule, kMinimumDefaultGranule);
}

ExpandablePool::ExpandablePool(BackendResource& upstream, ExpandablePoolOptions options)
    : MemoryResource(upstream.backend(), upstream.device(), upstream.kind()) {
  const DeviceInfo info = backend().device_info(device().index);
  if (!info.capabilities.virtual_memory) {
    throw NotSupported("ExpandablePool: " + to_string(device()) + " (" + info.name +
                       ") has no virtual memory; use a coalescing pool there");
  }
  if (kind() != MemoryKind::Device) {
    throw NotSupported("ExpandablePool: maps device memory only, not " + std::string(to_string(kind())) +
                       " memory");
  }
  granule_ = options.granule != 0 ? options.granule : default_granule(info);
  if (!std::has_single_bit(granule_) || granule_ % info.virtual_memory_granule != 0) {
    throw InvalidArgument("ExpandablePool: granule of " + std::to_string(granule_) +
                          " bytes is not a power of two that is a multiple of " + to_string(device()) +
                          "'s granule of " + std::to_string(info.virtual_memory_granule) + " bytes");
  }
  const std::size_t wanted =
      options.reservation != 0 ? options.reservation : std::max(info.memory.total_bytes, granule_);
  if (wanted < granule_) {
    throw InvalidArgument("ExpandablePool: a reservation of " + std::to_string(wanted) +
                          " bytes is below one granule of " + std::to_string(granule_) + " bytes");
  }
  if (wanted > std::numeric_limits<std::size_t>::max() - granule_) {
    throw InvalidArgument("ExpandablePool: a reservation of " + std::to_string(wanted) +
                          " bytes is too large");
  }
  reservation_ = align_up(wanted, granule_);
  state_ = std::make_unique<State>(*this, granule_, reservation_, options.placement_hints);
}

ExpandablePool::~ExpandablePool() {
  State& s = *state_;
  const std::lock_guard lock(s.mutex);
  if (s.ranges.in_use() != 0) {
    // live_count() counts the guards too: one record per range, never free.
    report_misuse("ExpandablePool on " + to_string(device()) + " destroyed with " +
                  std::to_string(s.ranges.live_count() - s.arenas.size()) + " live allocation(s) of " +
                  std::to_string(s.ranges.in_use()) + " bytes; releasing its ranges");
  }
  s.ranges.settle_all();
  for (const auto& arena : s.arenas) {
    try {
      backend().deallocate(arena->range);  // unmaps what is mapped
    } catch (const std::exception& e) {
      report_misuse(std::string("ExpandablePool: releasing a range: ") + e.what());
    }
  }
}

Allocation ExpandablePool::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  detail::check_pool_stream(*this, stream, "ExpandablePool");
  const std::size_t size = align_up(bytes, kGranularity);
  const std::size_t search = checked_add(size, detail::alignment_slack(alignment));
  State& s = *state_;
  const std::lock_guard lock(s.mutex);
  std::uint32_t index = s.ranges.take_fit(search, stream);
  if (index == kNoRange) index = s.grow(search, stream, bytes);
  const State::Placement place = s.place(index, search, stream);
  State::Arena& arena = *s.arenas[s.ranges[index].segment];
  index = s.ranges.carve(index, arena.range, size, alignment, bytes, place.at);
  const Range& r = s.ranges[index];
  bool mapped_now = false;
  try {
    mapped_now = s.ensure_mapped(arena, r.offset, r.size, bytes, place.mapped);
  } catch (...) {
    s.free_live(index, nullptr);
    throw;
  }
  ++(mapped_now ? s.misses : s.hits);
  return Allocation{&arena.range, r.offset, bytes, detail::make_cookie(index, r.generation)};
}

bool ExpandablePool::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  State& s = *state_;
  const std::lock_guard lock(s.mutex);
  const std::uint32_t index = detail::cookie_index(allocation.cookie);
  return detail::checked_free(*this, "ExpandablePool", allocation, s.is_live(index, allocation), stream,
                              [&](Stream* order) { s.free_live(index, order); });
}

std::size_t ExpandablePool::do_trim() {
  State& s = *state_;
  const std::lock_guard lock(s.mutex);
  const std::size_t unmapped = s.reclaim(std::numeric_limits<std::size_t>::max(), true).unmapped * granule_;
  s.mapping_limit = s.mapped_granules();  // every idle granule is gone: what live ranges touch now
  return unmapped;
}

ResourceUsage ExpandablePool::do_usage() const {
  const State& s = *state_;
  const std::lock_guard lock(state_->mutex);
  ResourceUsage usage;
  usage.reserved_bytes = s.mapped;
  usage.in_use_bytes = s.ranges.in_use();
  // A hole may be partly unmapped: the largest one counts no more than the mapped bytes not in use.
  usage.largest_free_range = std::min(s.ranges.largest_free(), s.mapped - s.ranges.in_use());
  usage.upstream_allocations = s.arenas.size();
  usage.cache_hits = s.hits;
  usage.cache_misses = s.misses;
  usage.map_calls = s.map_calls;
  usage.unmap_calls = s.unmap_calls;
  return usage;
}

PoolSnapshot ExpandablePool::snapshot() const {
  PoolSnapshot snapshot;
  snapshot.device = device();
  snapshot.kind = kind();
  snapshot.usage = usage();
  const State& s = *state_;
  const std::lock_guard lock(state_->mutex);
  for (const auto& arena : s.arenas) {
    snapshot.segments.push_back(SegmentSnapshot{arena->range.id,
                                                reinterpret_cast<std::uintptr_t>(arena->range.native),
                                                s.ranges[arena->guard].offset,
                                                arena->range.kind,
                                                "expandable",
                                                {}});
  }
  for (const Range& r : s.ranges.records()) {
    if (r.segment == kNoRange || State::is_guard(r)) continue;  // unused records and guards
    RangeSnapshot range;
    range.offset = r.offset;
    range.size = r.size;
    range.allocated = !r.free;
    range.requested = r.free ? 0 : r.requested;
    range.stream = r.free ? reinterpret_cast<std::uintptr_t>(r.fence.stream) : 0;
    snapshot.segments[r.segment].ranges.push_back(std::move(range));
  }
  for (SegmentSnapshot& segment : snapshot.segments) {
    std::sort(segment.ranges.begin(), segment.ranges.end(),
              [](const RangeSnapshot& a, const RangeSnapshot& b) { return a.offset < b.offset; });
  }
  return snapshot;
}

}  // namespace unimem
