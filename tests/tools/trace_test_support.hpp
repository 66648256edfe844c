#pragma once
// Independent reading of a trace file for the tools tests: a plain loop over the CSV with a map of live
// pointers, sharing no code with the parser under test.

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace unimem::test {

struct TraceFacts {
  std::size_t events = 0;
  std::size_t allocations = 0;
  std::size_t frees = 0;
  std::size_t peak_live_bytes = 0;
  std::size_t most_live = 0;
  std::size_t live_at_end = 0;
};

inline TraceFacts read_trace_facts(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // header
  TraceFacts facts;
  std::map<std::string, std::size_t> live;
  std::size_t live_bytes = 0;
  while (std::getline(in, line)) {
    std::stringstream fields(line);
    std::string thread, time, action, pointer, size;
    std::getline(fields, thread, ',');
    std::getline(fields, time, ',');
    std::getline(fields, action, ',');
    std::getline(fields, pointer, ',');
    std::getline(fields, size, ',');
    if (action == "allocate") {
      live[pointer] = std::stoull(size);
      live_bytes += std::stoull(size);
      ++facts.allocations;
      if (live_bytes > facts.peak_live_bytes) facts.peak_live_bytes = live_bytes;
      if (live.size() > facts.most_live) facts.most_live = live.size();
    } else if (action == "free") {
      live_bytes -= live.at(pointer);
      live.erase(pointer);
      ++facts.frees;
    }
  }
  facts.events = facts.allocations + facts.frees;
  facts.live_at_end = live.size();
  return facts;
}

inline std::filesystem::path demo_trace_path() {
  return UNIMEM_DEMO_TRACE;
}

inline std::filesystem::path shared_traces_dir() {
  return UNIMEM_SHARED_TRACES;
}

}  // namespace unimem::test
