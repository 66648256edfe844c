#pragma once
// AlignedBuffer: host memory aligned to a cache line that can grow, keeping its contents. Used for staging
// and scratch space where std::vector's alignment (alignof(T)) is not enough for vector loads or DMA.

#include <cstddef>
#include <span>

namespace unimem {

class AlignedBuffer {
 public:
  static constexpr std::size_t kAlignment = 64;

  AlignedBuffer() noexcept = default;
  // Allocates `bytes` (zero gives an empty buffer). Throws OutOfMemory when the host cannot provide them and
  // InvalidArgument when rounding `bytes` up to the alignment overflows.
  explicit AlignedBuffer(std::size_t bytes);
  ~AlignedBuffer();

  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& other) noexcept;
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;

  // Grows to at least `bytes`, preserving the contents; never shrinks. Capacity grows geometrically so that
  // repeated small growth is amortized.
  void grow(std::size_t bytes);

  [[nodiscard]] std::byte* data() noexcept { return data_; }
  [[nodiscard]] const std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::span<std::byte> bytes() noexcept { return {data_, size_}; }
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;
};

}  // namespace unimem
