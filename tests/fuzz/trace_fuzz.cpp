// libFuzzer target: unimem::cli::parse_trace (RMM logging CSV), strict and lenient. A trace it returns is
// replayed here event by event and must agree with its own summary: allocations + frees == events, every
// event has a nonzero size (at most 2^63) and a slot below slot_count, a slot is never handed out while
// live, each free matches its allocation's size, and the peak, the live count and the live bytes at the end
// are what the replay computes. A strict success must also be a lenient success with nothing skipped.

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "parser_fuzz_support.hpp"
#include "unimem/trace.hpp"

namespace {

using unimem::cli::Trace;
using unimem::cli::TraceAction;
using unimem::fuzz::require;

void check(const Trace& trace, std::string_view text) {
  require(trace.source == "fuzz", "the trace does not keep its source name", text);
  require(trace.allocations + trace.frees == trace.events.size(), "allocations + frees != events", text);
  require(trace.slot_count <= trace.allocations, "more slots than allocations", text);
  require(trace.live_at_end == trace.allocations - trace.frees, "live_at_end != allocations - frees", text);
  std::vector<std::uint64_t> live(trace.slot_count, 0);  // the size live in each slot, 0 when free
  unsigned __int128 live_bytes = 0;
  unsigned __int128 peak = 0;
  std::size_t peak_event = 0;
  std::size_t allocations = 0;
  std::size_t live_count = 0;
  std::uint32_t max_slot_plus_one = 0;
  for (std::size_t i = 0; i < trace.events.size(); ++i) {
    const auto& e = trace.events[i];
    require(e.size > 0, "an event of 0 bytes", text);
    require(e.size <= (std::uint64_t{1} << 63U), "an event above 2^63 bytes", text);
    require(e.slot < trace.slot_count, "an event's slot is not below slot_count", text);
    if (e.slot + 1 > max_slot_plus_one) max_slot_plus_one = e.slot + 1;
    if (e.action == TraceAction::Allocate) {
      require(live[e.slot] == 0, "a slot handed out while it is live", text);
      live[e.slot] = e.size;
      live_bytes += e.size;
      ++allocations;
      ++live_count;
      if (live_bytes > peak) {
        peak = live_bytes;
        peak_event = i;
      }
    } else {
      require(e.action == TraceAction::Free, "an event that is neither allocate nor free", text);
      require(live[e.slot] == e.size, "a free whose slot or size does not match its allocation", text);
      live[e.slot] = 0;
      live_bytes -= e.size;
      --live_count;
    }
    require(live_bytes <= SIZE_MAX, "the live bytes passed 2^64", text);
  }
  require(allocations == trace.allocations, "allocations does not count the allocate events", text);
  require(max_slot_plus_one == trace.slot_count, "slot_count is not the number of slots used", text);
  require(peak == trace.peak_live_bytes, "peak_live_bytes differs from the replay's peak", text);
  if (peak > 0) require(peak_event == trace.peak_live_event, "peak_live_event is not the first peak", text);
  require(live_count == trace.live_at_end, "live_at_end differs from the replay", text);
  require(live_bytes == trace.live_bytes_at_end, "live_bytes_at_end differs from the replay", text);
  if (trace.skipped_lines > 0) {
    require(!trace.first_skipped.empty(), "lines skipped without a reason", text);
    unimem::fuzz::check_message(trace.first_skipped);
  } else {
    require(trace.first_skipped.empty(), "a skip reason with no line skipped", text);
  }
}

Trace parse(std::string_view text, bool lenient) {
  std::istringstream in{std::string(text)};
  return unimem::cli::parse_trace(in, "fuzz", unimem::cli::TraceParseOptions{.lenient = lenient});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = unimem::fuzz::as_text(data, size);
  const auto strict = unimem::fuzz::parse_or_typed_error([&] { return parse(text, false); });
  const auto lenient = unimem::fuzz::parse_or_typed_error([&] { return parse(text, true); });
  if (strict) {
    check(*strict, text);
    require(strict->skipped_lines == 0, "a strict parse skipped lines", text);
    require(lenient.has_value(), "a lenient parse rejected what a strict parse accepted", text);
    require(lenient->skipped_lines == 0 && lenient->events.size() == strict->events.size(),
            "a lenient parse differs from the strict one on a clean trace", text);
  }
  if (lenient) check(*lenient, text);
  return 0;
}
