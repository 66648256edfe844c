// Lists the devices unimem finds and moves bytes through the first device of each available backend.

#include <cstdio>
#include <cstring>
#include <string>
#include <unimem/backend/backend_registry.hpp>
#include <unimem/core/error.hpp>
#include <vector>

int main() {
  try {
    unimem::BackendRegistry registry;
    int checked = 0;
    for (const auto& entry : registry.entries()) {
      std::printf("%-7s %s\n", std::string(unimem::to_string(entry.kind)).c_str(),
                  entry.status.detail.c_str());
      if (entry.backend == nullptr || entry.backend->device_count() == 0) continue;
      unimem::Backend& backend = *entry.backend;
      const std::string message = "hello from " + std::string(backend.name());
      const unimem::Segment segment = backend.allocate(0, unimem::MemoryKind::Device, message.size());
      backend.copy(segment, 0, unimem::Segment::host_view(message.data(), message.size()), 0, message.size());
      std::string back(message.size(), '\0');
      backend.copy(unimem::Segment::host_view(back.data(), back.size()), 0, segment, 0, back.size());
      backend.deallocate(segment);
      if (back != message) {
        std::fprintf(stderr, "round trip through %s:0 changed the bytes\n",
                     std::string(backend.name()).c_str());
        return 1;
      }
      ++checked;
    }
    std::printf("consumer: round trip ok on %d backend(s)\n", checked);
    return checked > 0 ? 0 : 1;
  } catch (const unimem::Error& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}
