#pragma once
// OwnedSegment: a backend segment the benchmarks allocate for themselves, freed when it goes out of scope
// (a failed free is reported through report_misuse, never thrown from the destructor).

#include <cstddef>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/misuse.hpp"

namespace unimem::cli {

class OwnedSegment {
 public:
  OwnedSegment(Backend& backend, int device, MemoryKind kind, std::size_t bytes)
      : backend_(&backend), segment_(backend.allocate(device, kind, bytes)) {}
  ~OwnedSegment() {
    try {
      backend_->deallocate(segment_);
    } catch (const Error& e) {
      report_misuse(e.what());
    }
  }
  OwnedSegment(const OwnedSegment&) = delete;
  OwnedSegment& operator=(const OwnedSegment&) = delete;
  OwnedSegment(OwnedSegment&&) = delete;
  OwnedSegment& operator=(OwnedSegment&&) = delete;

  [[nodiscard]] const Segment& get() const noexcept { return segment_; }

 private:
  Backend* backend_;
  Segment segment_;
};

}  // namespace unimem::cli
