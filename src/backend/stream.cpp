#include "unimem/backend/stream.hpp"

#include <string>

#include "unimem/backend/backend.hpp"
#include "unimem/core/error.hpp"

namespace unimem {

namespace {
void check_same_backend(const Event& event, const Stream& stream, const char* operation) {
  if (&stream.backend() != &event.backend()) {
    throw InvalidArgument(std::string("Event::") + operation + ": stream of " + to_string(stream.device()) +
                          " belongs to another backend than the event of " + to_string(event.device()));
  }
}
}  // namespace

void Event::record(Stream& stream) {
  check_same_backend(*this, stream, "record");
  if (stream.device() != device_) {
    throw InvalidArgument("Event::record: event of " + to_string(device_) + " cannot mark a stream of " +
                          to_string(stream.device()));
  }
  do_record(stream);
  recorded_ = true;
}

bool Event::query() {
  return !recorded_ || do_query();
}

void Event::synchronize() {
  if (recorded_) do_synchronize();
}

void Event::make_wait(Stream& stream) {
  check_same_backend(*this, stream, "make_wait");
  if (recorded_) do_make_wait(stream);
}

double Event::elapsed_ms_since(Event& start) {
  if (&start.backend() != backend_) {
    throw InvalidArgument("Event::elapsed_ms_since: events of " + to_string(start.device()) + " and " +
                          to_string(device_) + " belong to different backends");
  }
  if (!recorded_ || !start.recorded_) {
    throw InvalidArgument("Event::elapsed_ms_since: both events must be recorded first (start " +
                          std::string(start.recorded_ ? "recorded" : "not recorded") + ", end " +
                          (recorded_ ? "recorded" : "not recorded") + ")");
  }
  return do_elapsed_ms_since(start);
}

}  // namespace unimem
