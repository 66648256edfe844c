#include "unimem/backend/platform.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

namespace unimem {

std::string_view to_string(MemoryVisibility visibility) noexcept {
  switch (visibility) {
    case MemoryVisibility::SystemScope:
      return "system-scope";
    case MemoryVisibility::DeviceScopeOnly:
      return "device-scope-only";
    case MemoryVisibility::ExplicitDma:
      return "explicit-dma";
  }
  return "unknown";
}

PlatformInfo classify_platform(std::string_view proc_version) {
  PlatformInfo info;
  info.kernel = std::string(proc_version.substr(0, proc_version.find('\n')));
  std::string lower(info.kernel);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.find("microsoft") != std::string::npos || lower.find("wsl") != std::string::npos) {
    info.name = "WSL2";
    info.visibility = MemoryVisibility::DeviceScopeOnly;
  } else if (lower.rfind("linux version", 0) == 0) {
    info.name = "native Linux";
    info.visibility = MemoryVisibility::SystemScope;
  } else {
    info.name = "other";
    info.visibility = MemoryVisibility::ExplicitDma;
  }
  return info;
}

PlatformInfo detect_platform() {
  std::ifstream file("/proc/version");
  std::stringstream text;
  text << file.rdbuf();
  return classify_platform(text.str());
}

}  // namespace unimem
