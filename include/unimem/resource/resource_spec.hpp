#pragma once
// Resource specs: a resource stack written as one line of text, for the command line, benchmarks and
// configuration files.
//
//   spec   := kind [ ":" option { "," option } ]
//   option := key "=" value
//
//   upstream                                   every allocation straight from the backend (BackendResource)
//   size-class:min_block=256B,max_block=1MiB,max_pooled_per_bucket=8,per_thread_cache=true
//   coalescing:initial=1GiB,growth=2,max=64GiB,release=false        ("pool" is an alias of "coalescing")
//   expandable:granule=2MiB,reservation=80GiB  reserved address ranges mapped granule by granule (devices
//                                              with virtual memory only)
//   hybrid:threshold=1MiB,large=auto,...       small requests to a size-class pool, the rest to the large
//                                              pool: large=auto (expandable where the device has virtual
//                                              memory, else coalescing), coalescing or expandable; takes
//                                              every size-class, coalescing and expandable key (the key sets
//                                              are disjoint)
//
// Sizes take parse_bytes units ("1MiB", "64k", "4096"); counts are decimal; growth is a decimal number;
// flags are true/false (also yes/no, on/off, 1/0). Keys left out keep the pool's own defaults. Every pool is
// built on a BackendResource for the given device and memory kind.

#include <cstdint>
#include <string>
#include <string_view>

#include "unimem/backend/backend.hpp"
#include "unimem/resource/coalescing_pool.hpp"
#include "unimem/resource/expandable_pool.hpp"
#include "unimem/resource/hybrid_pool.hpp"
#include "unimem/resource/resource_stack.hpp"
#include "unimem/resource/size_class_pool.hpp"

namespace unimem {

// The stack unimem uses when nobody says otherwise.
inline constexpr std::string_view kDefaultResourceSpec = "hybrid";

enum class ResourceSpecKind : std::uint8_t { Upstream, SizeClass, Coalescing, Expandable, Hybrid };

[[nodiscard]] std::string_view to_string(ResourceSpecKind kind) noexcept;

// A parsed spec. Only the options of `kind` matter (a hybrid spec sets hybrid.small and hybrid.large).
struct ResourceSpec {
  std::string text;  // as written
  ResourceSpecKind kind = ResourceSpecKind::Hybrid;
  SizeClassPoolOptions size_class;
  CoalescingPoolOptions coalescing;
  ExpandablePoolOptions expandable;
  HybridPoolOptions hybrid;
};

// Throws InvalidArgument naming the spec and the offending kind, key or value: an unknown kind or key, a key
// given twice, an option without "=", an unparsable value.
[[nodiscard]] ResourceSpec parse_resource_spec(std::string_view spec);

// Builds the stack on `device` of `backend` for memory of `kind`. Throws what parse_resource_spec throws,
// InvalidArgument naming the spec when the pool rejects its options, and what BackendResource throws for a
// bad device or an unserved memory kind.
[[nodiscard]] ResourceStack make_resource_stack(const ResourceSpec& spec, Backend& backend, int device,
                                                MemoryKind kind);
[[nodiscard]] ResourceStack make_resource_stack(std::string_view spec, Backend& backend, int device,
                                                MemoryKind kind);

}  // namespace unimem
