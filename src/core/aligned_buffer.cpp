#include "unimem/core/aligned_buffer.hpp"

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>

#include "unimem/core/alignment.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {

namespace {
std::byte* allocate_aligned(std::size_t capacity) {
  auto* p = static_cast<std::byte*>(
      ::operator new (capacity, std::align_val_t{AlignedBuffer::kAlignment}, std::nothrow));
  if (p == nullptr) throw OutOfMemory(capacity, "host", 0, 0, "AlignedBuffer allocation failed");
  return p;
}
void free_aligned(std::byte* p) noexcept {
  ::operator delete (p, std::align_val_t{AlignedBuffer::kAlignment});
}
}  // namespace

AlignedBuffer::AlignedBuffer(std::size_t bytes) {
  if (bytes == 0) return;
  capacity_ = align_up(bytes, kAlignment);
  data_ = allocate_aligned(capacity_);
  size_ = bytes;
}

AlignedBuffer::~AlignedBuffer() {
  if (data_ != nullptr) free_aligned(data_);
}

AlignedBuffer::AlignedBuffer(AlignedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) free_aligned(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

void AlignedBuffer::grow(std::size_t bytes) {
  if (bytes <= size_) return;
  if (bytes > capacity_) {
    // Geometric growth (1.5x) amortizes repeated small grows; saturates instead of overflowing.
    const std::size_t geometric = capacity_ > SIZE_MAX / 2 ? SIZE_MAX : capacity_ + capacity_ / 2;
    const std::size_t wanted =
        align_up(std::max(bytes, std::min(geometric, SIZE_MAX - kAlignment)), kAlignment);
    std::byte* fresh = allocate_aligned(wanted);
    if (size_ != 0) std::memcpy(fresh, data_, size_);
    if (data_ != nullptr) free_aligned(data_);
    data_ = fresh;
    capacity_ = wanted;
  }
  size_ = bytes;
}

}  // namespace unimem
