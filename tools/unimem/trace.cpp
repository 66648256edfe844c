#include "unimem/trace.hpp"

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <optional>
#include <unordered_map>

#include "unimem/core/error.hpp"

namespace unimem::cli {

namespace {

constexpr std::string_view kHeader = "Thread,Time,Action,Pointer,Size,Stream";
constexpr std::size_t kFieldCount = 6;
constexpr std::size_t kQuotedLineLimit = 120;

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) {
    text.remove_suffix(1);
  }
  return text;
}

// Splits on commas; nullopt unless there are exactly kFieldCount fields.
std::optional<std::array<std::string_view, kFieldCount>> split_fields(std::string_view line) {
  std::array<std::string_view, kFieldCount> fields;
  std::size_t count = 0;
  while (true) {
    const std::size_t comma = line.find(',');
    if (count == kFieldCount) return std::nullopt;
    fields[count++] = trim(line.substr(0, comma));
    if (comma == std::string_view::npos) break;
    line.remove_prefix(comma + 1);
  }
  if (count != kFieldCount) return std::nullopt;
  return fields;
}

std::optional<std::uint64_t> parse_unsigned(std::string_view text, int base) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc{} || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

// RMM writes pointers as 0x-prefixed hexadecimal.
std::optional<std::uint64_t> parse_pointer(std::string_view text) {
  if (text.starts_with("0x") || text.starts_with("0X")) return parse_unsigned(text.substr(2), 16);
  return std::nullopt;
}

// No device holds 2^63 bytes; the bound keeps every later rounding (alignment, size classes) from
// overflowing.
constexpr std::uint64_t kMaxEventBytes = std::uint64_t{1} << 63U;

class TraceBuilder {
 public:
  explicit TraceBuilder(std::string_view source) { trace_.source = source; }

  // Adds one data line; returns why it was rejected, or an empty string.
  std::string add(std::string_view line) {
    const auto fields = split_fields(line);
    if (!fields) return "expected 6 comma-separated fields (" + std::string(kHeader) + ")";
    const std::string_view action = (*fields)[2];
    const std::string_view pointer_text = (*fields)[3];
    const auto size = parse_unsigned((*fields)[4], 10);
    if (!size) return "size " + quoted((*fields)[4]) + " is not a decimal byte count below 2^64";
    if (*size > kMaxEventBytes) {
      return "size " + std::to_string(*size) + " is larger than 2^63 bytes, more than any device holds";
    }
    if (action == "allocate failure") {
      ++trace_.recorded_failures;
      return {};
    }
    const auto pointer = parse_pointer(pointer_text);
    if (!pointer)
      return "pointer " + quoted(pointer_text) + " is not a 0x-prefixed hexadecimal address below 2^64";
    if (action == "allocate") return allocate(*pointer, *size);
    if (action == "free") return free(*pointer, *size);
    return "unknown action " + quoted(action) + " (expected allocate, free or allocate failure)";
  }

  Trace finish() {
    for (const auto& [pointer, live] : live_) trace_.live_bytes_at_end += live.size;
    trace_.live_at_end = live_.size();
    return std::move(trace_);
  }

  Trace& trace() { return trace_; }

 private:
  struct Live {
    std::uint32_t slot;
    std::uint64_t size;
  };

  std::string allocate(std::uint64_t pointer, std::uint64_t size) {
    if (size == 0) return "allocation of 0 bytes";
    if (live_.contains(pointer)) return "allocation of pointer " + hex(pointer) + ", which is already live";
    std::size_t live_after = 0;
    if (__builtin_add_overflow(live_bytes_, size, &live_after)) {
      return "allocation of " + std::to_string(size) + " bytes with " + std::to_string(live_bytes_) +
             " bytes live: the live bytes would pass 2^64";
    }
    std::uint32_t slot = trace_.slot_count;
    if (free_slots_.empty()) {
      ++trace_.slot_count;
    } else {
      slot = free_slots_.back();
      free_slots_.pop_back();
    }
    live_.emplace(pointer, Live{slot, size});
    trace_.events.push_back(TraceEvent{pointer, size, slot, TraceAction::Allocate});
    ++trace_.allocations;
    live_bytes_ = live_after;
    if (live_bytes_ > trace_.peak_live_bytes) {
      trace_.peak_live_bytes = live_bytes_;
      trace_.peak_live_event = trace_.events.size() - 1;
    }
    return {};
  }

  std::string free(std::uint64_t pointer, std::uint64_t size) {
    const auto it = live_.find(pointer);
    if (it == live_.end()) return "free of pointer " + hex(pointer) + ", which is not live";
    if (it->second.size != size) {
      return "free of pointer " + hex(pointer) + " with size " + std::to_string(size) +
             ", allocated with size " + std::to_string(it->second.size);
    }
    trace_.events.push_back(TraceEvent{pointer, size, it->second.slot, TraceAction::Free});
    free_slots_.push_back(it->second.slot);
    live_.erase(it);
    ++trace_.frees;
    live_bytes_ -= size;
    return {};
  }

  static std::string hex(std::uint64_t value) {
    std::array<char, 24> text{};
    const auto end = std::to_chars(text.data(), text.data() + text.size(), value, 16).ptr;
    return "0x" + std::string(text.data(), end);
  }

  Trace trace_;
  std::unordered_map<std::uint64_t, Live> live_;
  std::vector<std::uint32_t> free_slots_;
  std::size_t live_bytes_ = 0;
};

}  // namespace

Trace parse_trace(std::istream& in, std::string_view source, const TraceParseOptions& options) {
  TraceBuilder builder(source);
  const auto where = [&](std::size_t line_number) {
    return std::string(source) + ":" + std::to_string(line_number) + ": ";
  };
  std::string line;
  std::size_t line_number = 0;
  bool header_seen = false;
  while (std::getline(in, line)) {
    ++line_number;
    const std::string_view text = trim(line);
    if (text.empty()) continue;
    if (!header_seen) {
      if (text != kHeader) {
        throw InvalidArgument(where(line_number) + "expected the header '" + std::string(kHeader) +
                              "', found " + quoted(text, kQuotedLineLimit));
      }
      header_seen = true;
      continue;
    }
    std::string problem = builder.add(text);
    if (problem.empty()) continue;
    problem = where(line_number) + problem + " in " + quoted(text, kQuotedLineLimit);
    if (!options.lenient) throw InvalidArgument(problem);
    Trace& trace = builder.trace();
    if (trace.skipped_lines++ == 0) trace.first_skipped = std::move(problem);
  }
  if (in.bad())
    throw InvalidArgument(std::string(source) + ": read error after line " + std::to_string(line_number));
  if (!header_seen) throw InvalidArgument(std::string(source) + ": empty trace (no header line)");
  return builder.finish();
}

Trace load_trace(const std::filesystem::path& path, const TraceParseOptions& options) {
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    throw InvalidArgument("cannot read trace " + quoted_path(path.string()) + ": it is a directory");
  }
  std::ifstream in(path);
  if (!in) {
    throw InvalidArgument("cannot open trace " + quoted_path(path.string()) + ": " + std::strerror(errno));
  }
  return parse_trace(in, path.string(), options);
}

}  // namespace unimem::cli
