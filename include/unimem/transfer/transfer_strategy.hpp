#pragma once
// How the transfer engine moves bytes between two endpoints. Auto lets the engine choose from where the bytes
// are (see TransferEngine::choose_strategy); the others force one, and a forced strategy that cannot serve
// the two endpoints is refused with the reason.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace unimem {

enum class TransferStrategy : std::uint8_t {
  Auto,
  // One Backend::copy: host-visible memory on both sides, or device memory with pinned or unified memory of
  // the same backend on the other side (the device reaches it directly). Forced, it is any single backend
  // copy, whatever that backend does with it.
  Direct,
  // Both ends in device memory of one device: the device copies.
  DeviceLocal,
  // Device memory of two devices of one backend with peer access enabled: the devices copy directly.
  Peer,
  // Pageable host memory and device memory: chunks through the device's pinned staging buffers, the host's
  // memcpy into (or out of) one buffer overlapping the device's DMA from (or into) the other.
  PinnedStaging,
  // Device memory of two devices without a direct path (two backends, or no peer access): device -> host
  // staging buffer -> device, chunked, the download of one chunk overlapping the upload of the previous.
  HostStaged,
};

inline constexpr std::size_t kTransferStrategyCount = 6;
inline constexpr std::array<TransferStrategy, kTransferStrategyCount> kAllTransferStrategies = {
    TransferStrategy::Auto, TransferStrategy::Direct,        TransferStrategy::DeviceLocal,
    TransferStrategy::Peer, TransferStrategy::PinnedStaging, TransferStrategy::HostStaged};

[[nodiscard]] std::string_view to_string(TransferStrategy strategy) noexcept;
// Parses the names to_string gives ("pinned-staging", ...). Throws InvalidArgument naming the text otherwise.
[[nodiscard]] TransferStrategy parse_transfer_strategy(std::string_view text);

// Per-transfer choices.
struct TransferOptions {
  TransferStrategy strategy = TransferStrategy::Auto;
};

}  // namespace unimem
