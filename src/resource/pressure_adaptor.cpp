#include "unimem/resource/pressure_adaptor.hpp"

#include <algorithm>
#include <exception>
#include <optional>
#include <string>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem {

std::string_view to_string(PressureLevel level) noexcept {
  switch (level) {
    case PressureLevel::Low:
      return "low";
    case PressureLevel::Medium:
      return "medium";
    case PressureLevel::High:
      return "high";
    case PressureLevel::Critical:
      return "critical";
  }
  return "unknown";
}

namespace {
std::size_t capacity_of(const MemoryResource& upstream, std::size_t configured) {
  if (configured != 0) return configured;
  const std::size_t total = upstream.backend().memory_info(upstream.device().index).total_bytes;
  if (total == 0) {
    throw InvalidArgument("PressureAdaptor: " + to_string(upstream.device()) +
                          " reports no total memory; give PressureOptions::capacity_bytes");
  }
  return total;
}
}  // namespace

PressureAdaptor::PressureAdaptor(MemoryResource& upstream, PressureOptions options)
    : ResourceAdaptor(upstream), options_(options), capacity_(capacity_of(upstream, options.capacity_bytes)) {
  // Written so that NaN thresholds fail too.
  if (!(options.medium > 0.0 && options.medium < options.high && options.high < options.critical &&
        options.critical <= 1.0)) {
    throw InvalidArgument("PressureAdaptor: thresholds medium " + std::to_string(options.medium) + ", high " +
                          std::to_string(options.high) + ", critical " + std::to_string(options.critical) +
                          " must satisfy 0 < medium < high < critical <= 1");
  }
}

double PressureAdaptor::utilization() const noexcept {
  return static_cast<double>(in_use_bytes()) / static_cast<double>(capacity_);
}

PressureLevel PressureAdaptor::level_for(std::size_t bytes_in_use) const noexcept {
  const double used = static_cast<double>(bytes_in_use) / static_cast<double>(capacity_);
  if (used >= options_.critical) return PressureLevel::Critical;
  if (used >= options_.high) return PressureLevel::High;
  if (used >= options_.medium) return PressureLevel::Medium;
  return PressureLevel::Low;
}

std::uint64_t PressureAdaptor::on_level_change(Callback callback) {
  if (!callback) throw InvalidArgument("PressureAdaptor::on_level_change: empty callback");
  auto shared = std::make_shared<const Callback>(std::move(callback));
  const std::lock_guard lock(mutex_);
  const std::uint64_t id = next_callback_id_++;
  callbacks_.emplace_back(id, std::move(shared));
  return id;
}

bool PressureAdaptor::remove_callback(std::uint64_t id) {
  const std::lock_guard lock(mutex_);
  const auto it = std::find_if(callbacks_.begin(), callbacks_.end(),
                               [id](const auto& entry) { return entry.first == id; });
  if (it == callbacks_.end()) return false;
  callbacks_.erase(it);
  return true;
}

Allocation PressureAdaptor::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  const Allocation allocation = ResourceAdaptor::do_allocate(bytes, stream, alignment);
  const std::size_t in_use = in_use_.fetch_add(bytes) + bytes;
  if (level_for(in_use) != level()) update_level();
  return allocation;
}

bool PressureAdaptor::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  if (!ResourceAdaptor::do_deallocate(allocation, stream)) return false;
  const std::optional<std::size_t> in_use = release_bytes(in_use_, allocation.size, "PressureAdaptor");
  if (in_use && level_for(*in_use) != level()) update_level();
  return true;
}

void PressureAdaptor::update_level() noexcept {
  // Loops because the bytes may move again while a change is delivered: a thread whose call moved them back
  // may have compared against the old level just before it was stored, and then left the change to us. The
  // store of the level and the re-read of the bytes are sequentially consistent, so one of the two sees it.
  for (;;) {
    PressureLevel previous{};
    PressureLevel current{};
    std::vector<std::shared_ptr<const Callback>> to_notify;
    try {
      const std::lock_guard lock(mutex_);
      previous = level_.load();
      current = level_for(in_use_.load());
      if (current == previous) return;
      to_notify.reserve(callbacks_.size());
      for (const auto& entry : callbacks_) to_notify.push_back(entry.second);
      level_.store(current);
    } catch (const std::exception& e) {
      report_misuse(std::string("PressureAdaptor: could not deliver a level change: ") + e.what());
      return;
    }
    for (const auto& callback : to_notify) {
      try {
        (*callback)(previous, current);
      } catch (const std::exception& e) {
        report_misuse(std::string("PressureAdaptor: a level-change callback threw: ") + e.what());
      } catch (...) {
        report_misuse("PressureAdaptor: a level-change callback threw a non-standard exception");
      }
    }
    if (options_.trim_on_high && current >= PressureLevel::High && current > previous) {
      try {
        (void)upstream().trim();
      } catch (const std::exception& e) {
        report_misuse(std::string("PressureAdaptor: trimming the upstream failed: ") + e.what());
      }
    }
  }
}

}  // namespace unimem
