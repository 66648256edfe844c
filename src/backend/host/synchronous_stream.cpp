#include "backend/host/synchronous_stream.hpp"

#include "unimem/core/error.hpp"

namespace unimem::detail {

double HostClockEvent::do_elapsed_ms_since(Event& start) {
  // Both events come from the same backend (checked by Event), and synchronous backends only make these.
  auto* earlier = dynamic_cast<HostClockEvent*>(&start);
  if (earlier == nullptr) throw InvalidArgument("elapsed_ms_since: start event is not a host-clock event");
  return std::chrono::duration<double, std::milli>(time_ - earlier->time_).count();
}

}  // namespace unimem::detail
