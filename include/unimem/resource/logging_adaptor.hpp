#pragma once
// LoggingAdaptor: writes one CSV line per allocate and free in RAPIDS RMM's logging_resource_adaptor format,
// the format of the recorded traces that `unimem replay` reads:
//
//   Thread,Time,Action,Pointer,Size,Stream
//   0,16:44:27.632574,allocate,0x7c6400000,8388608,0x0
//
// Thread: the calling thread's number within this log (0 for the first thread that logs, then 1, 2, ...).
// Time: local wall-clock time of day with microseconds. Action: `allocate`, `free`, or `allocate failure`
// (the upstream threw; the exception is rethrown, Pointer is 0x0 and Size the request). Pointer: the
// allocation's address() (segment native handle plus offset) in hex. Size: the bytes requested. Stream: the
// Stream* in hex, 0x0 for none.
//
// A free is logged before it is forwarded and an allocation after it returns, so a replay never sees an
// address handed out again before its free. The adaptor remembers each live allocation's address, so a free
// of something it did not hand out (a double or stale free) is forwarded unlogged, for the resource below to
// report, without reading the possibly freed segment it names. Thread-safe: one mutex around each write. A
// write that fails is reported through report_misuse(), never thrown through.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <ostream>
#include <string_view>
#include <thread>
#include <unordered_map>

#include "unimem/resource/resource_adaptor.hpp"

namespace unimem {

class LoggingAdaptor final : public ResourceAdaptor {
 public:
  static constexpr std::string_view kHeader = "Thread,Time,Action,Pointer,Size,Stream";

  // Logs to `out`, which must outlive the adaptor. Writes the header line at once.
  LoggingAdaptor(MemoryResource& upstream, std::ostream& out);
  // Logs to a file it creates (or truncates). Throws InvalidArgument naming the path when it cannot be
  // opened.
  LoggingAdaptor(MemoryResource& upstream, const std::filesystem::path& path);
  ~LoggingAdaptor() override;
  LoggingAdaptor(const LoggingAdaptor&) = delete;
  LoggingAdaptor& operator=(const LoggingAdaptor&) = delete;
  LoggingAdaptor(LoggingAdaptor&&) = delete;
  LoggingAdaptor& operator=(LoggingAdaptor&&) = delete;

  void flush();

 private:
  Allocation do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) override;
  bool do_deallocate(const Allocation& allocation, Stream* stream) noexcept override;

  // Writes one line; the caller holds mutex_.
  void write_line(std::string_view action, const void* pointer, std::size_t bytes,
                  const Stream* stream) noexcept;

  std::unique_ptr<std::ofstream> file_;  // set when the adaptor opened the log itself
  std::ostream* out_;
  std::mutex mutex_;
  std::unordered_map<std::thread::id, std::uint64_t> thread_numbers_;
  std::unordered_map<AllocationKey, const void*, AllocationKeyHash> live_addresses_;
  bool write_failed_ = false;  // reported once
};

}  // namespace unimem
