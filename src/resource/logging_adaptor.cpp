#include "unimem/resource/logging_adaptor.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <string>

#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem {

namespace {
// "HH:MM:SS.uuuuuu" of local time, as RMM's logs have it.
std::string time_of_day() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1'000'000;
  std::tm local{};
  localtime_r(&seconds, &local);
  char text[32];
  std::snprintf(text, sizeof text, "%02d:%02d:%02d.%06lld", local.tm_hour, local.tm_min, local.tm_sec,
                static_cast<long long>(micros));
  return text;
}

std::string hex(const void* pointer) {
  char text[2 + 2 * sizeof(std::uintptr_t) + 1];
  std::snprintf(text, sizeof text, "0x%llx",
                static_cast<unsigned long long>(reinterpret_cast<std::uintptr_t>(pointer)));
  return text;
}
}  // namespace

LoggingAdaptor::LoggingAdaptor(MemoryResource& upstream, std::ostream& out)
    : ResourceAdaptor(upstream), out_(&out) {
  *out_ << kHeader << '\n';
}

LoggingAdaptor::LoggingAdaptor(MemoryResource& upstream, const std::filesystem::path& path)
    : ResourceAdaptor(upstream),
      file_(std::make_unique<std::ofstream>(path, std::ios::out | std::ios::trunc)) {
  if (!*file_) {
    throw InvalidArgument("LoggingAdaptor: cannot open log file '" + path.string() +
                          "': " + std::strerror(errno));
  }
  out_ = file_.get();
  *out_ << kHeader << '\n';
}

LoggingAdaptor::~LoggingAdaptor() {
  try {
    flush();
  } catch (const std::exception& e) {
    report_misuse(std::string("LoggingAdaptor: flushing the log failed: ") + e.what());
  }
}

void LoggingAdaptor::flush() {
  const std::lock_guard lock(mutex_);
  out_->flush();
}

Allocation LoggingAdaptor::do_allocate(std::size_t bytes, Stream* stream, std::size_t alignment) {
  Allocation allocation;
  try {
    allocation = ResourceAdaptor::do_allocate(bytes, stream, alignment);
  } catch (...) {
    const std::lock_guard lock(mutex_);
    write_line("allocate failure", nullptr, bytes, stream);
    throw;
  }
  try {
    const std::lock_guard lock(mutex_);
    // The native handle plus the offset names the allocation on every backend, a cl_mem's included.
    live_addresses_[AllocationKey(allocation)] = allocation.native_plus_offset();
    write_line("allocate", allocation.native_plus_offset(), bytes, stream);
  } catch (...) {
    ResourceAdaptor::do_deallocate(allocation, stream);
    throw;
  }
  return allocation;
}

bool LoggingAdaptor::do_deallocate(const Allocation& allocation, Stream* stream) noexcept {
  {
    const std::lock_guard lock(mutex_);
    const auto it = live_addresses_.find(AllocationKey(allocation));
    if (it != live_addresses_.end()) {
      write_line("free", it->second, allocation.size, stream);
      live_addresses_.erase(it);
    }
  }
  return ResourceAdaptor::do_deallocate(allocation, stream);
}

void LoggingAdaptor::write_line(std::string_view action, const void* pointer, std::size_t bytes,
                                const Stream* stream) noexcept {
  try {
    std::string fields;
    fields += action;
    fields += ',' + hex(pointer) + ',' + std::to_string(bytes) + ',' + hex(stream) + '\n';
    // The clock is read under the caller's lock so that times never go backwards down the file.
    const auto [it, inserted] =
        thread_numbers_.try_emplace(std::this_thread::get_id(), thread_numbers_.size());
    *out_ << it->second << ',' << time_of_day() << ',' << fields;
    if (!*out_ && !write_failed_) {
      write_failed_ = true;
      report_misuse(
          "LoggingAdaptor: writing the log failed (the stream is in a failed state); later lines are lost");
    }
  } catch (const std::exception& e) {
    report_misuse(std::string("LoggingAdaptor: writing the log failed: ") + e.what());
  }
}

}  // namespace unimem
