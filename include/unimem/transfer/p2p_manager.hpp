#pragma once
// P2PManager: peer access between the devices of one backend. It reads which device can reach which
// (DeviceInfo::peers), enables and disables access through the backend, and copies between devices the best
// way the engine has: a peer copy where access is enabled, staged through host memory where it is not (OpenCL
// devices, which sit in separate contexts; GPUs without a peer link).
//
//   P2PManager p2p(cuda, engine);
//   p2p.enable_all();
//   p2p.copy(TransferEndpoint::from(on_gpu1), TransferEndpoint::from(on_gpu0), bytes);  // Peer
//
// Thread-safe as far as its backend's peer functions and the engine are.

#include <cstddef>
#include <string>
#include <vector>

#include "unimem/backend/backend.hpp"
#include "unimem/transfer/transfer_engine.hpp"

namespace unimem {

class P2PManager {
 public:
  // Both must outlive the manager.
  P2PManager(Backend& backend, TransferEngine& engine);

  [[nodiscard]] Backend& backend() const noexcept { return *backend_; }
  [[nodiscard]] int device_count() const noexcept { return static_cast<int>(can_access_.size()); }
  // Whether `device` can reach `peer`'s memory directly, and whether that access is enabled now. Throw
  // InvalidArgument for indices outside [0, device_count()).
  [[nodiscard]] bool can_access(int device, int peer) const;
  [[nodiscard]] bool enabled(int device, int peer) const;
  // Through Backend::enable_peer_access / disable_peer_access (NotSupported naming both devices where the
  // pair has no peer access).
  void enable(int device, int peer);
  void disable(int device, int peer);
  // Enables every pair that can access each other; returns how many pairs are enabled now.
  std::size_t enable_all();

  // Copies between device memory of two devices of this backend, peer-to-peer where enabled and staged
  // through the host otherwise; returns the strategy used. Throws InvalidArgument when either side is not
  // device memory of this backend, and what TransferEngine::copy throws.
  TransferStrategy copy(const TransferEndpoint& dst, const TransferEndpoint& src, std::size_t bytes);

  // The matrix, one row per device: "E" enabled, "+" possible, "-" not possible, "." the device itself.
  [[nodiscard]] std::string describe() const;

 private:
  void check_pair(int device, int peer, const char* operation) const;

  Backend* backend_;
  TransferEngine* engine_;
  std::vector<std::vector<bool>> can_access_;  // [device][peer]
};

}  // namespace unimem
