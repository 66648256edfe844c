#pragma once
// Streams are in-order queues of work on one device; events mark a point in a stream. Both are created by a
// Backend and must not outlive it.

#include "unimem/backend/types.hpp"

namespace unimem {

class Backend;

class Stream {
 public:
  virtual ~Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  Stream(Stream&&) = delete;
  Stream& operator=(Stream&&) = delete;

  [[nodiscard]] const Backend& backend() const noexcept { return *backend_; }
  [[nodiscard]] DeviceId device() const noexcept { return device_; }

  // Blocks until everything queued so far has completed; rethrows an asynchronous failure as BackendError.
  void synchronize() { do_synchronize(); }
  // True when everything queued so far has completed.
  [[nodiscard]] bool query() { return do_query(); }

 protected:
  Stream(const Backend& backend, DeviceId device) noexcept : backend_(&backend), device_(device) {}

 private:
  virtual void do_synchronize() = 0;
  virtual bool do_query() = 0;

  const Backend* backend_;
  DeviceId device_;
};

class Event {
 public:
  virtual ~Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Event(Event&&) = delete;
  Event& operator=(Event&&) = delete;

  [[nodiscard]] const Backend& backend() const noexcept { return *backend_; }
  [[nodiscard]] DeviceId device() const noexcept { return device_; }
  [[nodiscard]] bool recorded() const noexcept { return recorded_; }

  // Marks the current end of `stream`. The stream must belong to this event's backend and device
  // (InvalidArgument otherwise). Recording again moves the mark.
  void record(Stream& stream);
  // True once the work before the mark has completed; an event never recorded counts as complete.
  [[nodiscard]] bool query();
  // Blocks the host until the mark is reached.
  void synchronize();
  // Makes `stream` (of the same backend, any of its devices) wait for the mark without blocking the host.
  void make_wait(Stream& stream);
  // Milliseconds from `start`'s mark to this one, both recorded on this backend. Blocks until both complete.
  [[nodiscard]] double elapsed_ms_since(Event& start);

 protected:
  Event(const Backend& backend, DeviceId device) noexcept : backend_(&backend), device_(device) {}

 private:
  virtual void do_record(Stream& stream) = 0;
  virtual bool do_query() = 0;
  virtual void do_synchronize() = 0;
  virtual void do_make_wait(Stream& stream) = 0;
  virtual double do_elapsed_ms_since(Event& start) = 0;

  const Backend* backend_;
  DeviceId device_;
  bool recorded_ = false;
};

}  // namespace unimem
