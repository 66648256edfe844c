#include "unimem/manager/memory_config.hpp"

#include <array>
#include <bit>
#include <charconv>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {

constexpr std::size_t kAbsurdBytes = std::size_t{1} << 50U;  // 1 PiB: no device or host has that much
constexpr std::size_t kMaxPooledPerBucket = 1024;

void check_size(const char* field, std::size_t value) {
  if (value > kAbsurdBytes) {
    throw InvalidArgument(std::string("MemoryConfig.") + field + " = " + std::to_string(value) +
                          " bytes is absurd (more than 1 PiB)");
  }
}

double parse_double(std::string_view key, std::string_view value) {
  double result = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), result);
  if (ec != std::errc() || end != value.data() + value.size()) {
    throw InvalidArgument("UNIMEM_CONF: " + std::string(key) + "=" + quoted(value) + " is not a number");
  }
  return result;
}

bool parse_switch(std::string_view key, std::string_view value) {
  if (value == "on" || value == "true" || value == "1" || value == "yes") return true;
  if (value == "off" || value == "false" || value == "0" || value == "no") return false;
  throw InvalidArgument("UNIMEM_CONF: " + std::string(key) + "=" + quoted(value) +
                        " is not on/off (also accepted: true/false, 1/0, yes/no)");
}

LargePoolKind parse_large_pool(std::string_view value) {
  for (const LargePoolKind kind :
       {LargePoolKind::Automatic, LargePoolKind::Coalescing, LargePoolKind::Expandable}) {
    if (value == unimem::to_string(kind)) return kind;
  }
  throw InvalidArgument("UNIMEM_CONF: large_pool=" + quoted(value) +
                        " is not auto, coalescing or expandable");
}

std::size_t parse_size(std::string_view key, std::string_view value) {
  if (value == "0") return 0;  // "none" for limit-like keys
  try {
    return parse_bytes(value);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument("UNIMEM_CONF: " + std::string(key) + ": " + e.what());
  }
}

std::size_t parse_count(std::string_view key, std::string_view value) {
  std::size_t result = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), result);
  if (ec != std::errc() || end != value.data() + value.size()) {
    throw InvalidArgument("UNIMEM_CONF: " + std::string(key) + "=" + quoted(value) +
                          " is not a non-negative integer");
  }
  return result;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The shortest text that reads back as the same double, so that to_string() round-trips through parse().
std::string format_double(double value) {
  std::array<char, 32> text{};
  const auto result = std::to_chars(text.data(), text.data() + text.size(), value);
  return {text.data(), result.ptr};
}

}  // namespace

MemoryConfig MemoryConfig::defaults() {
  return MemoryConfig{};
}

MemoryConfig MemoryConfig::for_inference() {
  MemoryConfig c;
  c.gpu_memory_fraction = 0.95;
  c.min_free_bytes = std::size_t{256} << 20U;
  c.max_pooled_per_bucket = 64;
  c.initial_pool_bytes = std::size_t{1} << 30U;
  c.pool_growth_factor = 2.0;
  c.trim_on_pressure = false;
  return c;
}

MemoryConfig MemoryConfig::for_constrained() {
  MemoryConfig c;
  c.gpu_memory_fraction = 0.6;
  c.min_free_bytes = std::size_t{512} << 20U;
  c.max_pooled_per_bucket = 2;
  c.initial_pool_bytes = 0;
  c.pool_growth_factor = 1.25;
  c.trim_on_pressure = true;
  return c;
}

MemoryConfig MemoryConfig::with_gpu_memory_fraction(double fraction) const {
  MemoryConfig c = *this;
  c.gpu_memory_fraction = fraction;
  return c;
}
MemoryConfig MemoryConfig::with_cpu_fallback(bool enabled) const {
  MemoryConfig c = *this;
  c.cpu_fallback_enabled = enabled;
  return c;
}
MemoryConfig MemoryConfig::with_min_free_bytes(std::size_t bytes) const {
  MemoryConfig c = *this;
  c.min_free_bytes = bytes;
  return c;
}
MemoryConfig MemoryConfig::with_tracking(bool enabled) const {
  MemoryConfig c = *this;
  c.track_allocations = enabled;
  return c;
}
MemoryConfig MemoryConfig::with_max_pooled_per_bucket(std::size_t blocks) const {
  MemoryConfig c = *this;
  c.max_pooled_per_bucket = blocks;
  return c;
}
MemoryConfig MemoryConfig::with_memory_limit(std::size_t bytes) const {
  MemoryConfig c = *this;
  c.memory_limit_bytes = bytes;
  return c;
}
MemoryConfig MemoryConfig::with_pool_growth(std::size_t initial_bytes, double factor,
                                            std::size_t max_bytes) const {
  MemoryConfig c = *this;
  c.initial_pool_bytes = initial_bytes;
  c.pool_growth_factor = factor;
  c.max_pool_bytes = max_bytes;
  return c;
}
MemoryConfig MemoryConfig::with_large_pool(LargePoolKind kind, std::size_t granule) const {
  MemoryConfig c = *this;
  c.large_pool = kind;
  c.pool_granule = granule;
  return c;
}

MemoryConfig MemoryConfig::with_trim_on_pressure(bool enabled) const {
  MemoryConfig c = *this;
  c.trim_on_pressure = enabled;
  return c;
}

MemoryConfig MemoryConfig::with_oom_snapshot(std::string path) const {
  if (path.empty()) throw InvalidArgument("MemoryConfig::with_oom_snapshot: empty path");
  MemoryConfig c = *this;
  c.oom_snapshot_path = std::move(path);
  return c;
}

void MemoryConfig::validate() const {
  if (!(gpu_memory_fraction > 0.0 && gpu_memory_fraction <= 1.0)) {
    throw InvalidArgument("MemoryConfig.gpu_memory_fraction = " + format_double(gpu_memory_fraction) +
                          " is outside (0, 1]");
  }
  if (!(pool_growth_factor >= 1.0 && pool_growth_factor <= 16.0)) {
    throw InvalidArgument("MemoryConfig.pool_growth_factor = " + format_double(pool_growth_factor) +
                          " is outside [1, 16]");
  }
  check_size("min_free_bytes", min_free_bytes);
  check_size("memory_limit_bytes", memory_limit_bytes);
  check_size("initial_pool_bytes", initial_pool_bytes);
  check_size("max_pool_bytes", max_pool_bytes);
  if (max_pooled_per_bucket > kMaxPooledPerBucket) {
    throw InvalidArgument("MemoryConfig.max_pooled_per_bucket = " + std::to_string(max_pooled_per_bucket) +
                          " is above " + std::to_string(kMaxPooledPerBucket));
  }
  // The device-independent half of the expandable pool's check (a multiple of the device's granule is
  // checked where the pool is built): caught here, a bad value fails on every device, not only on one with
  // virtual memory.
  if (pool_granule != 0 && !std::has_single_bit(pool_granule)) {
    throw InvalidArgument("MemoryConfig.pool_granule = " + std::to_string(pool_granule) +
                          " bytes is not a power of two");
  }
  check_size("pool_granule", pool_granule);
  if (max_pool_bytes != 0 && max_pool_bytes < initial_pool_bytes) {
    throw InvalidArgument("MemoryConfig.max_pool_bytes = " + std::to_string(max_pool_bytes) +
                          " is below initial_pool_bytes = " + std::to_string(initial_pool_bytes));
  }
}

MemoryConfig MemoryConfig::parse(std::string_view text, const MemoryConfig& base) {
  struct Pair {
    std::string key;
    std::string value;
  };
  std::vector<Pair> pairs;
  std::set<std::string> seen;
  std::string_view rest = text;
  while (!rest.empty()) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      throw InvalidArgument("UNIMEM_CONF: " + quoted(item) + " is not key=value");
    }
    Pair p{std::string(trim(item.substr(0, eq))), std::string(trim(item.substr(eq + 1)))};
    if (!seen.insert(p.key).second)
      throw InvalidArgument("UNIMEM_CONF: key " + quoted(p.key) + " is given twice");
    pairs.push_back(std::move(p));
  }

  MemoryConfig c = base;
  // The preset is applied first, so that "growth=1.5,preset=constrained" keeps the explicit growth.
  for (const Pair& p : pairs) {
    if (p.key != "preset") continue;
    if (p.value == "defaults") {
      c = defaults();
    } else if (p.value == "inference") {
      c = for_inference();
    } else if (p.value == "constrained") {
      c = for_constrained();
    } else {
      throw InvalidArgument("UNIMEM_CONF: preset=" + quoted(p.value) +
                            " is unknown (defaults, inference, constrained)");
    }
  }
  for (const Pair& p : pairs) {
    const std::string_view k = p.key;
    const std::string_view v = p.value;
    if (k == "preset") continue;
    if (k == "fraction") {
      c.gpu_memory_fraction = parse_double(k, v);
    } else if (k == "fallback") {
      c.cpu_fallback_enabled = parse_switch(k, v);
    } else if (k == "min_free") {
      c.min_free_bytes = parse_size(k, v);
    } else if (k == "track") {
      c.track_allocations = parse_switch(k, v);
    } else if (k == "max_pooled_per_bucket") {
      c.max_pooled_per_bucket = parse_count(k, v);
    } else if (k == "limit") {
      c.memory_limit_bytes = parse_size(k, v);
    } else if (k == "initial_pool") {
      c.initial_pool_bytes = parse_size(k, v);
    } else if (k == "growth") {
      c.pool_growth_factor = parse_double(k, v);
    } else if (k == "max_pool") {
      c.max_pool_bytes = parse_size(k, v);
    } else if (k == "large_pool") {
      c.large_pool = parse_large_pool(v);
    } else if (k == "granule") {
      c.pool_granule = parse_size(k, v);
    } else if (k == "trim_on_pressure") {
      c.trim_on_pressure = parse_switch(k, v);
    } else if (k == "oom_snapshot") {
      if (v.empty()) throw InvalidArgument("UNIMEM_CONF: oom_snapshot needs a path (oom_snapshot=PATH)");
      c.oom_snapshot_path = p.value;
    } else {
      throw InvalidArgument(
          "UNIMEM_CONF: unknown key " + quoted(p.key) +
          " (known: preset, fraction, fallback, min_free, track, max_pooled_per_bucket, limit, "
          "initial_pool, growth, max_pool, large_pool, granule, trim_on_pressure, oom_snapshot)");
    }
  }
  c.validate();
  return c;
}

MemoryConfig MemoryConfig::from_environment(const MemoryConfig& base) {
  const char* text = std::getenv("UNIMEM_CONF");  // NOLINT(concurrency-mt-unsafe): read once at setup
  if (text == nullptr || *text == '\0') return base;
  return parse(text, base);
}

std::string MemoryConfig::to_string() const {
  auto on_off = [](bool b) { return b ? "on" : "off"; };
  return "fraction=" + format_double(gpu_memory_fraction) + ",fallback=" + on_off(cpu_fallback_enabled) +
         ",min_free=" + std::to_string(min_free_bytes) + ",track=" + on_off(track_allocations) +
         ",max_pooled_per_bucket=" + std::to_string(max_pooled_per_bucket) +
         ",limit=" + std::to_string(memory_limit_bytes) +
         ",initial_pool=" + std::to_string(initial_pool_bytes) +
         ",growth=" + format_double(pool_growth_factor) + ",max_pool=" + std::to_string(max_pool_bytes) +
         ",large_pool=" + std::string(unimem::to_string(large_pool)) +
         (pool_granule == 0 ? "" : ",granule=" + std::to_string(pool_granule)) +
         ",trim_on_pressure=" + on_off(trim_on_pressure) +
         (oom_snapshot_path.empty() ? "" : ",oom_snapshot=" + oom_snapshot_path);
}

}  // namespace unimem
