#pragma once
// The one error model of unimem: every failure is an exception derived from unimem::Error, and every
// message names the values that caused it.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace unimem {

// A caller's text made fit for a message: bytes that are not printable ASCII become \xNN (so messages stay
// valid UTF-8 and JSON-safe) and the text is cut where it would pass `limit` characters as written, saying
// how long it was.
[[nodiscard]] std::string quoted(std::string_view text, std::size_t limit = 64);
// A file name quoted whole (up to PATH_MAX): a cut path would not say which file it was.
[[nodiscard]] std::string quoted_path(std::string_view path);

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A caller passed a value the function cannot accept: zero or overflowing sizes, out-of-range offsets,
// foreign or already-freed handles.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

// A buffer was requested as an element type other than the one it holds.
class TypeMismatch : public Error {
 public:
  using Error::Error;
};

// The operation exists in the API but not for this backend, device or memory kind.
class NotSupported : public Error {
 public:
  using Error::Error;
};

// The native API (OpenCL, CUDA, the OS) returned an error; carries its code and symbolic name.
class BackendError : public Error {
 public:
  BackendError(std::string backend, std::int64_t code, std::string code_name, const std::string& what);

  [[nodiscard]] const std::string& backend() const noexcept { return backend_; }
  [[nodiscard]] std::int64_t code() const noexcept { return code_; }
  [[nodiscard]] const std::string& code_name() const noexcept { return code_name_; }

 private:
  std::string backend_;
  std::int64_t code_;
  std::string code_name_;
};

// A memory request could not be satisfied. Carries the request and the device's state at failure.
class OutOfMemory : public Error {
 public:
  OutOfMemory(std::size_t requested, std::string device, std::size_t free_bytes, std::size_t total_bytes,
              const std::string& detail = {});

  [[nodiscard]] std::size_t requested() const noexcept { return requested_; }
  [[nodiscard]] const std::string& device() const noexcept { return device_; }
  [[nodiscard]] std::size_t free_bytes() const noexcept { return free_; }
  [[nodiscard]] std::size_t total_bytes() const noexcept { return total_; }

 private:
  std::size_t requested_;
  std::string device_;
  std::size_t free_;
  std::size_t total_;
};

}  // namespace unimem
