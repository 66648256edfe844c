#pragma once
// Allocation traces in RMM's logging CSV format (`Thread,Time,Action,Pointer,Size,Stream`), the format of
// RMM's logging_resource_adaptor, of unimem's LoggingAdaptor and of tools/torch_snapshot_to_csv.py.
//
// A trace is parsed once into a compact event vector. Each allocation gets a dense slot (an index that is
// reused once the allocation is freed), and each free carries the slot of the allocation it frees, so a
// replay keeps its live allocations in a plain vector and never looks a pointer up while it is being timed.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <istream>
#include <string>
#include <string_view>
#include <vector>

namespace unimem::cli {

enum class TraceAction : std::uint8_t { Allocate, Free };

struct TraceEvent {
  std::uint64_t pointer = 0;  // the address as recorded: only a replay that looks pointers up needs it
  std::uint64_t size = 0;     // bytes allocated (or freed: always the allocation's own size)
  std::uint32_t slot = 0;     // dense id of the allocation, shared by its allocate and its free
  TraceAction action = TraceAction::Allocate;
};

struct TraceParseOptions {
  // Skip (and count) malformed lines instead of stopping at the first one.
  bool lenient = false;
};

struct Trace {
  std::string source;  // the file name, for messages
  std::vector<TraceEvent> events;
  std::uint32_t slot_count = 0;  // the most allocations live at once: slots are in [0, slot_count)
  std::size_t allocations = 0;
  std::size_t frees = 0;
  // `allocate failure` lines: the recorded program's own failed requests. Counted, not replayed.
  std::size_t recorded_failures = 0;
  std::size_t skipped_lines = 0;    // malformed lines skipped in lenient mode
  std::string first_skipped;        // why the first of them was skipped
  std::size_t peak_live_bytes = 0;  // the most bytes live at once, as recorded
  std::size_t peak_live_event = 0;  // index in `events` of the allocation that first reached it
  std::size_t live_at_end = 0;      // allocations never freed in the trace
  std::size_t live_bytes_at_end = 0;
};

// Parses a trace. `source` names it in messages. A header line is required first. Throws InvalidArgument
// naming the source and the line for a malformed line (wrong field count, unparsable pointer or size, a zero
// size), an unknown action, a free of a pointer that is not live, a free whose size differs from the
// allocation's, or an allocation of a pointer that is already live; with `lenient` such lines are skipped and
// counted instead (a missing or wrong header still throws).
[[nodiscard]] Trace parse_trace(std::istream& in, std::string_view source,
                                const TraceParseOptions& options = {});

// Opens and parses a file; throws InvalidArgument naming the path when it cannot be read.
[[nodiscard]] Trace load_trace(const std::filesystem::path& path, const TraceParseOptions& options = {});

}  // namespace unimem::cli
