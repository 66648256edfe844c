#include "unimem/resource/tracking_adaptor.hpp"

#include <execinfo.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {
// The innermost ScopedTag of the calling thread.
thread_local std::string current_tag;

std::string format_age(std::chrono::steady_clock::duration age) {
  const double ms = std::chrono::duration<double, std::milli>(age).count();
  char text[32];
  std::snprintf(text, sizeof text, "%.3f ms", ms);
  return text;
}

void sort_oldest_first(std::vector<TrackedAllocation>& allocations) {
  std::sort(allocations.begin(), allocations.end(),
            [](const TrackedAllocation& a, const TrackedAllocation& b) { return a.id < b.id; });
}
}  // namespace

std::vector<std::string> TrackedAllocation::backtrace() const {
  std::vector<std::string> lines;
  if (frames.empty()) return lines;
  const std::unique_ptr<char*, decltype(&std::free)> symbols(
      ::backtrace_symbols(frames.data(), static_cast<int>(frames.size())), &std::free);
  lines.reserve(frames.size());
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (symbols != nullptr) {
      lines.emplace_back(symbols.get()[i]);
    } else {
      char text[32];
      std::snprintf(text, sizeof text, "[%p]", frames[i]);
      lines.emplace_back(text);
    }
  }
  return lines;
}

TrackingAdaptor::ScopedTag::ScopedTag(std::string tag)
    : previous_(std::exchange(current_tag, std::move(tag))) {}

TrackingAdaptor::ScopedTag::~ScopedTag() {
  current_tag = std::move(previous_);
}

TrackingAdaptor::TrackingAdaptor(MemoryResource& upstream, TrackingOptions options)
    : ResourceAdaptor(upstream), options_(options) {}

TrackingAdaptor::~TrackingAdaptor() {
  if (live_count() != 0) report_misuse("TrackingAdaptor destroyed with live allocations: " + leak_report());
}

Allocation TrackingAdaptor::allocate_tagged(std::size_t bytes, std::string_view tag, Stream* stream,
                                            std::size_t alignment) {
  const ScopedTag scope{std::string(tag)};
  return allocate(bytes, stream, alignment);
}

Allocation TrackingAdaptor::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  TrackedAllocation record;
  if (options_.capture_backtraces && options_.backtrace_depth != 0) {
    record.frames.resize(options_.backtrace_depth);
    const int captured = ::backtrace(record.frames.data(), static_cast<int>(record.frames.size()));
    record.frames.resize(static_cast<std::size_t>(std::max(captured, 0)));
  }
  record.tag = current_tag;
  record.bytes = bytes;
  const Allocation allocation = ResourceAdaptor::do_allocate(bytes, stream, alignment);
  record.device = allocation.device();
  record.kind = allocation.kind();
  record.address = allocation.native_plus_offset();
  record.allocated_at = std::chrono::steady_clock::now();
  try {
    const std::lock_guard lock(mutex_);
    record.id = next_id_++;
    const auto [it, inserted] = live_.try_emplace(AllocationKey(allocation), std::move(record));
    if (!inserted) {
      report_misuse("TrackingAdaptor on " + to_string(device()) + ": the upstream handed out offset " +
                    std::to_string(allocation.offset) + " of segment #" +
                    std::to_string(allocation.segment->id) + " again while allocation #" +
                    std::to_string(it->second.id) + " is live there");
    } else {
      live_bytes_ += bytes;
    }
  } catch (...) {
    ResourceAdaptor::do_deallocate(allocation, stream);
    throw;
  }
  return allocation;
}

bool TrackingAdaptor::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  // The record is taken out before the free is forwarded (the range cannot be handed out again before that)
  // and put back if the chain below refuses it: a stale handle can match a record by place and still fail the
  // pool's generation check. No lock is held across the forward, which may reach user callbacks.
  std::optional<TrackedAllocation> record;
  {
    const std::lock_guard lock(mutex_);
    const auto it = live_.find(AllocationKey(allocation));
    if (it == live_.end() || it->second.bytes != allocation.size) {
      report_misuse("TrackingAdaptor::deallocate on " + to_string(device()) + ": allocation of " +
                    std::to_string(allocation.size) + " bytes at offset " +
                    std::to_string(allocation.offset) + " is not tracked here (" +
                    (it == live_.end() ? std::string("already freed, or allocated elsewhere")
                                       : "allocation #" + std::to_string(it->second.id) + " there has " +
                                             std::to_string(it->second.bytes) + " bytes") +
                    "); not forwarded");
      return false;
    }
    record = std::move(it->second);
    live_bytes_ -= record->bytes;
    live_.erase(it);
  }
  if (ResourceAdaptor::do_deallocate(allocation, stream)) return true;
  try {
    const std::lock_guard lock(mutex_);
    live_bytes_ += record->bytes;
    live_.emplace(AllocationKey(allocation), std::move(*record));
  } catch (const std::exception& e) {
    report_misuse(std::string("TrackingAdaptor: could not restore the record of a refused free: ") +
                  e.what());
  }
  return false;
}

std::size_t TrackingAdaptor::live_count() const {
  const std::lock_guard lock(mutex_);
  return live_.size();
}

std::size_t TrackingAdaptor::live_bytes() const {
  const std::lock_guard lock(mutex_);
  return live_bytes_;
}

std::vector<TrackedAllocation> TrackingAdaptor::live_allocations() const {
  return allocations_older_than(std::chrono::steady_clock::duration::zero());
}

std::vector<TrackedAllocation> TrackingAdaptor::allocations_older_than(
    std::chrono::steady_clock::duration age) const {
  if (age < std::chrono::steady_clock::duration::zero()) {
    throw InvalidArgument("TrackingAdaptor::allocations_older_than: negative age " + format_age(age));
  }
  const auto cutoff = std::chrono::steady_clock::now() - age;
  std::vector<TrackedAllocation> result;
  {
    const std::lock_guard lock(mutex_);
    for (const auto& [key, record] : live_) {
      if (record.allocated_at <= cutoff) result.push_back(record);
    }
  }
  sort_oldest_first(result);
  return result;
}

std::string TrackingAdaptor::leak_report() const {
  const std::vector<TrackedAllocation> allocations = live_allocations();
  std::size_t bytes = 0;
  for (const auto& allocation : allocations) bytes += allocation.bytes;
  std::string report = "TrackingAdaptor on " + to_string(device()) + ": " +
                       std::to_string(allocations.size()) + " live allocation(s), " + std::to_string(bytes) +
                       " bytes (" + format_bytes(bytes) + ")\n";
  for (const auto& allocation : allocations) {
    report += "  #" + std::to_string(allocation.id) +
              (allocation.tag.empty() ? std::string(" (untagged)") : " [" + allocation.tag + "]") + " " +
              std::to_string(allocation.bytes) + " bytes on " + to_string(allocation.device) + " " +
              std::string(to_string(allocation.kind)) + ", age " + format_age(allocation.age()) + "\n";
    for (const auto& frame : allocation.backtrace()) report += "      at " + frame + "\n";
  }
  return report;
}

}  // namespace unimem
