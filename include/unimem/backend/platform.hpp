#pragma once
// How far host and device memory mappings reach on this platform. unimem uses it to choose transfer and
// pinning strategies; `unimem info` shows it.

#include <string>
#include <string_view>

namespace unimem {

enum class MemoryVisibility {
  SystemScope,  // native Linux: pinned and device mappings are visible system-wide (IPC, host registration)
  DeviceScopeOnly,  // WSL2: mappings are private to the device context; no IPC, limited host registration
  ExplicitDma,      // anything else: assume only explicit copies move data
};

[[nodiscard]] std::string_view to_string(MemoryVisibility visibility) noexcept;

struct PlatformInfo {
  std::string name;    // "native Linux", "WSL2", "other"
  std::string kernel;  // the first line of /proc/version, when there is one
  MemoryVisibility visibility = MemoryVisibility::ExplicitDma;
};

// Classifies a /proc/version text (empty when the file does not exist). Injectable for tests.
[[nodiscard]] PlatformInfo classify_platform(std::string_view proc_version);
// Reads /proc/version and classifies it.
[[nodiscard]] PlatformInfo detect_platform();

}  // namespace unimem
