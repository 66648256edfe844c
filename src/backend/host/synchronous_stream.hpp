#pragma once
// Stream and event for backends whose work completes on the calling thread (host, simulated): a stream is
// always idle, an event records the host clock.

#include <chrono>

#include "unimem/backend/stream.hpp"

namespace unimem::detail {

class SynchronousStream final : public Stream {
 public:
  SynchronousStream(const Backend& backend, DeviceId device) noexcept : Stream(backend, device) {}

 private:
  void do_synchronize() override {}
  bool do_query() override { return true; }
};

class HostClockEvent final : public Event {
 public:
  HostClockEvent(const Backend& backend, DeviceId device) noexcept : Event(backend, device) {}

 private:
  void do_record(Stream& /*stream*/) override { time_ = std::chrono::steady_clock::now(); }
  bool do_query() override { return true; }
  void do_synchronize() override {}
  void do_make_wait(Stream& /*stream*/) override {}
  double do_elapsed_ms_since(Event& start) override;

  std::chrono::steady_clock::time_point time_{};
};

}  // namespace unimem::detail
