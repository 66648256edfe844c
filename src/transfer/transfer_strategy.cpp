#include "unimem/transfer/transfer_strategy.hpp"

#include <string>

#include "unimem/core/error.hpp"

namespace unimem {

std::string_view to_string(TransferStrategy strategy) noexcept {
  switch (strategy) {
    case TransferStrategy::Auto:
      return "auto";
    case TransferStrategy::Direct:
      return "direct";
    case TransferStrategy::DeviceLocal:
      return "device-local";
    case TransferStrategy::Peer:
      return "peer";
    case TransferStrategy::PinnedStaging:
      return "pinned-staging";
    case TransferStrategy::HostStaged:
      return "host-staged";
  }
  return "unknown";
}

TransferStrategy parse_transfer_strategy(std::string_view text) {
  for (const TransferStrategy strategy : kAllTransferStrategies) {
    if (to_string(strategy) == text) return strategy;
  }
  std::string known;
  for (const TransferStrategy strategy : kAllTransferStrategies) {
    known += (known.empty() ? "" : ", ") + std::string(to_string(strategy));
  }
  throw InvalidArgument("unknown transfer strategy '" + std::string(text) + "' (known: " + known + ")");
}

}  // namespace unimem
