#include "unimem/resource/resource_spec.hpp"

#include <charconv>
#include <string>
#include <vector>

#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"
#include "unimem/resource/backend_resource.hpp"

namespace unimem {

namespace {

constexpr std::string_view kSizeClassKeys =
    "min_block, max_block, max_pooled_per_bucket, chunk_size, per_thread_cache";
constexpr std::string_view kCoalescingKeys = "initial, growth, max, max_step, release";
constexpr std::string_view kExpandableKeys = "granule, reservation";

[[noreturn]] void bad_spec(std::string_view spec, const std::string& why) {
  throw InvalidArgument("resource spec " + quoted(spec) + ": " + why);
}

// One key=value option of a spec, with the parsers its value may need.
struct Option {
  std::string_view spec;
  std::string_view key;
  std::string_view value;

  [[noreturn]] void reject(const std::string& why) const {
    bad_spec(spec, "key " + quoted(key) + ": " + why);
  }

  [[nodiscard]] std::size_t size() const {
    try {
      return parse_bytes(value);
    } catch (const InvalidArgument& e) {
      reject(e.what());
    }
  }

  [[nodiscard]] std::size_t count() const {
    std::size_t result = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), result);
    if (ec != std::errc{} || end != value.data() + value.size() || value.empty()) {
      reject(quoted(value) + " is not a whole number");
    }
    return result;
  }

  [[nodiscard]] double number() const {
    double result = 0.0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), result);
    if (ec != std::errc{} || end != value.data() + value.size() || value.empty()) {
      reject(quoted(value) + " is not a number");
    }
    return result;
  }

  [[nodiscard]] bool flag() const {
    for (const std::string_view yes : {"true", "yes", "on", "1"}) {
      if (value == yes) return true;
    }
    for (const std::string_view no : {"false", "no", "off", "0"}) {
      if (value == no) return false;
    }
    reject(quoted(value) + " is not true or false");
  }
};

bool apply_size_class(SizeClassPoolOptions& options, const Option& option) {
  if (option.key == "min_block") {
    options.min_block = option.size();
  } else if (option.key == "max_block") {
    options.max_block = option.size();
  } else if (option.key == "max_pooled_per_bucket") {
    options.max_pooled_per_bucket = option.count();
  } else if (option.key == "chunk_size") {
    options.chunk_size = option.size();
  } else if (option.key == "per_thread_cache") {
    options.per_thread_cache = option.flag();
  } else {
    return false;
  }
  return true;
}

bool apply_coalescing(CoalescingPoolOptions& options, const Option& option) {
  if (option.key == "initial") {
    options.initial_size = option.size();
  } else if (option.key == "growth") {
    options.growth_factor = option.number();
  } else if (option.key == "max") {
    options.maximum_size = option.size();
  } else if (option.key == "max_step") {
    options.max_growth_step = option.size();
  } else if (option.key == "release") {
    options.release_free_segments = option.flag();
  } else {
    return false;
  }
  return true;
}

bool apply_expandable(ExpandablePoolOptions& options, const Option& option) {
  if (option.key == "granule") {
    options.granule = option.size();
  } else if (option.key == "reservation") {
    options.reservation = option.size();
  } else {
    return false;
  }
  return true;
}

LargePoolKind large_pool_kind(const Option& option) {
  for (const LargePoolKind kind :
       {LargePoolKind::Automatic, LargePoolKind::Coalescing, LargePoolKind::Expandable}) {
    if (option.value == to_string(kind)) return kind;
  }
  option.reject(quoted(option.value) + " is not auto, coalescing or expandable");
}

// Applies one option to the spec's kind; false when the kind has no such key.
bool apply(ResourceSpec& spec, const Option& option) {
  switch (spec.kind) {
    case ResourceSpecKind::Upstream:
      return false;
    case ResourceSpecKind::SizeClass:
      return apply_size_class(spec.size_class, option);
    case ResourceSpecKind::Coalescing:
      return apply_coalescing(spec.coalescing, option);
    case ResourceSpecKind::Expandable:
      return apply_expandable(spec.expandable, option);
    case ResourceSpecKind::Hybrid:
      if (option.key == "threshold") {
        spec.hybrid.small_threshold = option.size();
        return true;
      }
      if (option.key == "large") {
        spec.hybrid.large_kind = large_pool_kind(option);
        return true;
      }
      return apply_size_class(spec.hybrid.small, option) || apply_coalescing(spec.hybrid.large, option) ||
             apply_expandable(spec.hybrid.expandable, option);
  }
  return false;
}

std::string known_keys(ResourceSpecKind kind) {
  switch (kind) {
    case ResourceSpecKind::Upstream:
      return "none";
    case ResourceSpecKind::SizeClass:
      return std::string(kSizeClassKeys);
    case ResourceSpecKind::Coalescing:
      return std::string(kCoalescingKeys);
    case ResourceSpecKind::Expandable:
      return std::string(kExpandableKeys);
    case ResourceSpecKind::Hybrid:
      return "threshold, large, " + std::string(kSizeClassKeys) + ", " + std::string(kCoalescingKeys) + ", " +
             std::string(kExpandableKeys);
  }
  return {};
}

ResourceSpecKind parse_kind(std::string_view spec, std::string_view name) {
  if (name == "upstream") return ResourceSpecKind::Upstream;
  if (name == "size-class") return ResourceSpecKind::SizeClass;
  if (name == "coalescing" || name == "pool") return ResourceSpecKind::Coalescing;
  if (name == "expandable") return ResourceSpecKind::Expandable;
  if (name == "hybrid") return ResourceSpecKind::Hybrid;
  bad_spec(spec, "unknown kind " + quoted(name) +
                     " (expected upstream, size-class, coalescing, pool, expandable or hybrid)");
}

}  // namespace

std::string_view to_string(ResourceSpecKind kind) noexcept {
  switch (kind) {
    case ResourceSpecKind::Upstream:
      return "upstream";
    case ResourceSpecKind::SizeClass:
      return "size-class";
    case ResourceSpecKind::Coalescing:
      return "coalescing";
    case ResourceSpecKind::Expandable:
      return "expandable";
    case ResourceSpecKind::Hybrid:
      return "hybrid";
  }
  return "unknown";
}

ResourceSpec parse_resource_spec(std::string_view text) {
  ResourceSpec spec;
  spec.text = std::string(text);
  const std::size_t colon = text.find(':');
  spec.kind = parse_kind(text, text.substr(0, colon));
  if (colon == std::string_view::npos) return spec;

  std::string_view rest = text.substr(colon + 1);
  std::vector<std::string_view> seen;
  while (true) {
    const std::size_t comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    const std::size_t equals = item.find('=');
    if (equals == std::string_view::npos || equals == 0) {
      bad_spec(text, "option " + quoted(item) + " is not key=value");
    }
    const Option option{text, item.substr(0, equals), item.substr(equals + 1)};
    for (const std::string_view key : seen) {
      if (key == option.key) bad_spec(text, "key " + quoted(option.key) + " given twice");
    }
    seen.push_back(option.key);
    if (!apply(spec, option)) {
      bad_spec(text, "unknown key " + quoted(option.key) + " for " + std::string(to_string(spec.kind)) +
                         " (keys: " + known_keys(spec.kind) + ")");
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  return spec;
}

ResourceStack make_resource_stack(const ResourceSpec& spec, Backend& backend, int device, MemoryKind kind) {
  ResourceStack stack;
  BackendResource& upstream = stack.push<BackendResource>(backend, device, kind);
  try {
    switch (spec.kind) {
      case ResourceSpecKind::Upstream:
        break;
      case ResourceSpecKind::SizeClass:
        stack.push<SizeClassPool>(upstream, spec.size_class);
        break;
      case ResourceSpecKind::Coalescing:
        stack.push<CoalescingPool>(upstream, spec.coalescing);
        break;
      case ResourceSpecKind::Expandable:
        stack.push<ExpandablePool>(upstream, spec.expandable);
        break;
      case ResourceSpecKind::Hybrid:
        stack.push<HybridPool>(upstream, spec.hybrid);
        break;
    }
  } catch (const InvalidArgument& e) {
    bad_spec(spec.text, e.what());
  }
  return stack;
}

ResourceStack make_resource_stack(std::string_view spec, Backend& backend, int device, MemoryKind kind) {
  return make_resource_stack(parse_resource_spec(spec), backend, device, kind);
}

}  // namespace unimem
