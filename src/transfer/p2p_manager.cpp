#include "unimem/transfer/p2p_manager.hpp"

#include <string>

#include "unimem/core/error.hpp"

namespace unimem {

P2PManager::P2PManager(Backend& backend, TransferEngine& engine) : backend_(&backend), engine_(&engine) {
  const auto count = static_cast<std::size_t>(backend.device_count());
  can_access_.assign(count, std::vector<bool>(count, false));
  for (std::size_t device = 0; device < count; ++device) {
    for (const int peer : backend.device_info(static_cast<int>(device)).peers) {
      if (peer >= 0 && static_cast<std::size_t>(peer) < count && static_cast<std::size_t>(peer) != device) {
        can_access_[device][static_cast<std::size_t>(peer)] = true;
      }
    }
  }
}

void P2PManager::check_pair(int device, int peer, const char* operation) const {
  for (const int index : {device, peer}) {
    if (index < 0 || index >= device_count()) {
      throw InvalidArgument(std::string("P2PManager::") + operation + ": device index " +
                            std::to_string(index) + " is out of range (" + std::string(backend_->name()) +
                            " has " + std::to_string(device_count()) + " devices)");
    }
  }
}

bool P2PManager::can_access(int device, int peer) const {
  check_pair(device, peer, "can_access");
  return can_access_[static_cast<std::size_t>(device)][static_cast<std::size_t>(peer)];
}

bool P2PManager::enabled(int device, int peer) const {
  check_pair(device, peer, "enabled");
  return device != peer && backend_->peer_access_enabled(device, peer);
}

void P2PManager::enable(int device, int peer) {
  check_pair(device, peer, "enable");
  backend_->enable_peer_access(device, peer);
}

void P2PManager::disable(int device, int peer) {
  check_pair(device, peer, "disable");
  backend_->disable_peer_access(device, peer);
}

std::size_t P2PManager::enable_all() {
  std::size_t enabled_pairs = 0;
  for (int device = 0; device < device_count(); ++device) {
    for (int peer = 0; peer < device_count(); ++peer) {
      if (!can_access(device, peer)) continue;
      enable(device, peer);
      ++enabled_pairs;
    }
  }
  return enabled_pairs;
}

TransferStrategy P2PManager::copy(const TransferEndpoint& dst, const TransferEndpoint& src,
                                  std::size_t bytes) {
  for (const TransferEndpoint* side : {&dst, &src}) {
    if (side->backend() != backend_ || side->location() != MemoryLocation::Device) {
      throw InvalidArgument("P2PManager::copy: the " + std::string(side == &dst ? "destination" : "source") +
                            " is " + side->describe() + ", not device memory of the " +
                            std::string(backend_->name()) + " backend");
    }
  }
  const TransferStrategy strategy = engine_->choose_strategy(dst, src);
  engine_->copy(dst, src, bytes, TransferOptions{strategy});
  return strategy;
}

std::string P2PManager::describe() const {
  std::string text;
  for (int device = 0; device < device_count(); ++device) {
    text += std::to_string(device) + ":";
    for (int peer = 0; peer < device_count(); ++peer) {
      const char* mark = device == peer             ? "."
                         : enabled(device, peer)    ? "E"
                         : can_access(device, peer) ? "+"
                                                    : "-";
      text += std::string(" ") + mark;
    }
    text += "\n";
  }
  return text;
}

}  // namespace unimem
