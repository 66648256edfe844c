#include "unimem/manager/memory_snapshot.hpp"

#include <string>

#include "resource/snapshot_json.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/file_output.hpp"

namespace unimem {

std::string to_json(const MemorySnapshot& snapshot) {
  nlohmann::json stacks = nlohmann::json::array();
  for (const StackSnapshot& stack : snapshot.stacks) {
    nlohmann::json entry = detail::pool_snapshot_json(stack.pool);
    entry["stack"] = stack.name;
    entry["limit_bytes"] = stack.limit_bytes;
    entry["pressure"] = to_string(stack.pressure);
    entry["stats"] = detail::memory_stats_json(stack.stats);
    stacks.push_back(std::move(entry));
  }
  nlohmann::json document = {{"schema", "unimem.snapshot"},
                             {"schema_version", kSnapshotSchemaVersion},
                             {"stacks", std::move(stacks)}};
  if (snapshot.failed_request) {
    const FailedRequest& f = *snapshot.failed_request;
    document["failed_request"] = {{"bytes", f.bytes},
                                  {"device", detail::device_json(f.device)},
                                  {"stack", f.stack},
                                  {"message", f.message}};
  } else {
    document["failed_request"] = nullptr;
  }
  return document.dump();
}

void write_snapshot(const MemorySnapshot& snapshot, const std::filesystem::path& path) {
  if (path.empty()) throw InvalidArgument("write_snapshot: empty path");
  write_file_replacing(path, to_json(snapshot), "write_snapshot");
}

}  // namespace unimem
