#pragma once
// `unimem info`: the backends compiled in, their devices, memory and capabilities, peer access, and the
// platform's memory visibility.

#include <nlohmann/json.hpp>
#include <string>

#include "unimem/backend/backend_registry.hpp"
#include "unimem/backend/platform.hpp"

namespace unimem::cli {

// The JSON document printed by `unimem info --json` (schema in docs/cli.md).
[[nodiscard]] nlohmann::json info_json(const BackendRegistry& registry, const PlatformInfo& platform);
// The readable table printed by `unimem info`.
[[nodiscard]] std::string info_table(const BackendRegistry& registry, const PlatformInfo& platform);

}  // namespace unimem::cli
