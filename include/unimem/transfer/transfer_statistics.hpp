#pragma once
// What a TransferEngine has moved, per strategy, and how busy it has been.

#include <array>
#include <cstddef>
#include <cstdint>

#include "unimem/transfer/transfer_strategy.hpp"

namespace unimem {

struct StrategyStatistics {
  std::uint64_t transfers = 0;  // completed
  std::uint64_t failures = 0;
  std::size_t bytes = 0;  // of the completed transfers
  // Wall time during which at least one transfer of this strategy was running: concurrent transfers count
  // once, so bytes / busy_seconds is the bandwidth the strategy achieved.
  double busy_seconds = 0.0;

  // Bytes per second while busy; 0 before anything was timed.
  [[nodiscard]] double bandwidth() const noexcept {
    return busy_seconds > 0.0 ? static_cast<double>(bytes) / busy_seconds : 0.0;
  }
};

struct TransferStatistics {
  std::array<StrategyStatistics, kTransferStrategyCount> by_strategy{};  // indexed by TransferStrategy; Auto
                                                                         // stays empty (it is resolved first)
  std::size_t in_flight = 0;                                             // transfers running now
  std::size_t max_in_flight = 0;                                         // the most that ever ran at once
  std::size_t queued = 0;  // asynchronous transfers waiting for a turn now

  [[nodiscard]] const StrategyStatistics& operator[](TransferStrategy strategy) const noexcept {
    return by_strategy[static_cast<std::size_t>(strategy)];
  }
  // Sums over all strategies.
  [[nodiscard]] std::uint64_t transfers() const noexcept {
    std::uint64_t total = 0;
    for (const StrategyStatistics& s : by_strategy) total += s.transfers;
    return total;
  }
  [[nodiscard]] std::uint64_t failures() const noexcept {
    std::uint64_t total = 0;
    for (const StrategyStatistics& s : by_strategy) total += s.failures;
    return total;
  }
  [[nodiscard]] std::size_t bytes() const noexcept {
    std::size_t total = 0;
    for (const StrategyStatistics& s : by_strategy) total += s.bytes;
    return total;
  }
};

}  // namespace unimem
