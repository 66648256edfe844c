#pragma once
// Backend: the one small interface every kind of device sits behind (host, OpenCL, CUDA, simulated).
//
// The public functions are thin and non-virtual: they validate every argument (device index, memory kind,
// sizes, offsets, handle ownership, double frees) and then call the private do_* hooks, so that each
// implementation only deals with well-formed requests and every backend reports misuse the same way.
//
// Raw backend allocations are not a hot path (pools sit above them), so the base keeps a registry of live
// segments to catch foreign and double-freed handles.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "unimem/backend/device_info.hpp"
#include "unimem/backend/segment.hpp"
#include "unimem/backend/stream.hpp"
#include "unimem/backend/types.hpp"

namespace unimem {

// Where prefetch() moves unified memory: to the segment's device, or to the host.
enum class PrefetchTarget : std::uint8_t { Device, Host };

// Whether a backend can be used, and why not. A backend that is compiled in but finds no driver or no device
// is present with zero devices and a reason.
struct BackendStatus {
  bool compiled_in = false;
  bool available = false;
  std::string detail;  // why not available, or a short description of what was found
};

class Backend {
 public:
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  Backend(Backend&&) = delete;
  Backend& operator=(Backend&&) = delete;

  [[nodiscard]] BackendKind kind() const noexcept { return kind_; }
  [[nodiscard]] std::string_view name() const noexcept { return to_string(kind_); }
  [[nodiscard]] virtual BackendStatus status() const = 0;
  [[nodiscard]] virtual int device_count() const noexcept = 0;

  // Throws InvalidArgument for an index outside [0, device_count()).
  [[nodiscard]] DeviceInfo device_info(int device) const;
  [[nodiscard]] MemoryInfo memory_info(int device) const;
  [[nodiscard]] bool supports(int device, MemoryKind kind) const;

  // Allocates `bytes` of `kind` on `device`, aligned to at least kDefaultAlignment. With a stream, backends
  // that can (CUDA) allocate in stream order. Throws InvalidArgument (bad device, zero bytes), NotSupported
  // (kind not served by the device), OutOfMemory (more than the device's largest single allocation, or the
  // device is full), BackendError (the native API failed otherwise).
  [[nodiscard]] Segment allocate(int device, MemoryKind kind, std::size_t bytes, Stream* stream = nullptr);

  // Frees a segment this backend allocated. Throws InvalidArgument for a segment that is empty, foreign, or
  // already freed; the segment is then left untouched.
  void deallocate(const Segment& segment, Stream* stream = nullptr);

  // Sets `bytes` bytes at `offset` to `value`. Synchronous without a stream; ordered on the stream otherwise.
  void memset(const Segment& dst, std::size_t offset, std::uint8_t value, std::size_t bytes,
              Stream* stream = nullptr);

  // Copies `bytes` from src+src_offset to dst+dst_offset. Each segment is either one of this backend's live
  // segments (any of its devices) or host-visible memory (a host view, or a host-visible segment of another
  // backend, treated as pageable host memory). Without a stream the copy has completed on return; with one it
  // is ordered on that stream and host memory involved must stay alive until the stream passes it.
  void copy(const Segment& dst, std::size_t dst_offset, const Segment& src, std::size_t src_offset,
            std::size_t bytes, Stream* stream = nullptr);

  // Migrates `bytes` at `offset` of one of this backend's live segments towards its device or the host ahead
  // of use. Only unified memory moves (cudaMemPrefetchAsync, clEnqueueSVMMigrateMem); for other memory, and
  // on backends without migration, it is a validated no-op. Synchronous without a stream; ordered on the
  // stream (of the segment's device) otherwise.
  void prefetch(const Segment& segment, std::size_t offset, std::size_t bytes, PrefetchTarget target,
                Stream* stream = nullptr);

  [[nodiscard]] std::unique_ptr<Stream> create_stream(int device);
  // A Stream over a queue another library created with the native API (a cudaStream_t from PyTorch or
  // CuPy; nullptr is CUDA's legacy default stream), so that unimem can order its work on it. The Stream does
  // not own the queue: the caller keeps it alive until the Stream and the work ordered on it are gone.
  // Backends whose streams complete on the calling thread (host, simulated) accept any handle. Throws
  // InvalidArgument for a bad device, NotSupported naming the backend where foreign queues cannot be
  // wrapped (OpenCL).
  [[nodiscard]] std::unique_ptr<Stream> wrap_native_stream(int device, void* native);
  [[nodiscard]] std::unique_ptr<Event> create_event(int device);

  // Peer access: `device` reaches the memory of `peer` (another device of this backend) directly, so copies
  // between them need no staging. Only pairs in device_info(device).peers have it: NotSupported naming both
  // devices otherwise; InvalidArgument for bad indices or a device paired with itself. Enabling an enabled
  // pair, or disabling a disabled one, does nothing.
  void enable_peer_access(int device, int peer);
  void disable_peer_access(int device, int peer);
  [[nodiscard]] bool peer_access_enabled(int device, int peer) const;

  // Virtual memory, where device_info(device).capabilities.virtual_memory (DeviceInfo::virtual_memory_granule
  // gives the granule). reserve_address_range() reserves `bytes` (a non-zero multiple of the granule) of
  // contiguous device addresses with no memory behind them: a live Segment of MemoryKind::Device whose
  // native handle is its first address. map() puts device memory behind [offset, offset + bytes), unmap()
  // takes it away again (its contents are lost); both take granule multiples, map only unmapped granules and
  // unmap only mapped ones, and make the whole call or none of it. Mapped bytes count against the device's
  // memory (live_bytes, memory_info) as allocated ones do. copy(), memset() and prefetch() reach mapped bytes
  // only. deallocate() releases the range, unmapping what is still mapped; the caller makes sure no queued
  // work still uses it (unmapping is not stream-ordered on any backend).
  // Throws NotSupported naming the device where it has no virtual memory; InvalidArgument for a bad device,
  // a size or offset that is zero where it may not be, unaligned, past the range, a granule mapped twice or
  // unmapped twice, or a segment that is not a live reservation of this backend; OutOfMemory when the device
  // has no room for the mapping; BackendError when the native API fails otherwise.
  [[nodiscard]] Segment reserve_address_range(int device, std::size_t bytes);
  void map(const Segment& range, std::size_t offset, std::size_t bytes);
  void unmap(const Segment& range, std::size_t offset, std::size_t bytes);
  // Bytes of a live reservation that are mapped now (InvalidArgument for anything else).
  [[nodiscard]] std::size_t mapped_bytes(const Segment& range) const;

  // Segments allocated and not yet freed, and their bytes on one device (InvalidArgument for a bad index).
  // A reservation counts its mapped bytes.
  [[nodiscard]] std::size_t live_segment_count() const;
  [[nodiscard]] std::size_t live_bytes(int device) const;
  // True when `segment` is a live segment of this backend.
  [[nodiscard]] bool owns(const Segment& segment) const;

 protected:
  explicit Backend(BackendKind kind) noexcept : kind_(kind) {}

  // What an implementation returns from do_allocate: its native handle and, when host-visible, the address.
  struct NativeAllocation {
    void* native = nullptr;
    std::byte* host_ptr = nullptr;
    bool native_is_address = false;  // Segment::native_is_address
  };

  // Live bytes on one device that the device itself provides: every kind but plain host memory (what OpenCL,
  // having no free-memory query, reports as used).
  [[nodiscard]] std::size_t live_device_bytes(int device) const;

 private:
  virtual DeviceInfo do_device_info(int device) const = 0;
  virtual MemoryInfo do_memory_info(int device) const = 0;
  virtual NativeAllocation do_allocate(int device, MemoryKind kind, std::size_t bytes, Stream* stream) = 0;
  // Called once per live segment; must not throw (the registry has already forgotten the segment).
  virtual void do_deallocate(const Segment& segment, Stream* stream) noexcept = 0;
  virtual void do_memset(const Segment& dst, std::size_t offset, std::uint8_t value, std::size_t bytes,
                         Stream* stream) = 0;
  virtual void do_copy(const Segment& dst, std::size_t dst_offset, const Segment& src, std::size_t src_offset,
                       std::size_t bytes, Stream* stream) = 0;
  virtual void do_prefetch(const Segment& /*segment*/, std::size_t /*offset*/, std::size_t /*bytes*/,
                           PrefetchTarget /*target*/, Stream* /*stream*/) {}
  virtual std::unique_ptr<Stream> do_create_stream(int device) = 0;
  // The default throws NotSupported naming the backend.
  virtual std::unique_ptr<Stream> do_wrap_native_stream(int device, void* native);
  virtual std::unique_ptr<Event> do_create_event(int device) = 0;
  // Virtual memory hooks, called only for devices whose capabilities say virtual_memory, with arguments the
  // base has checked: granule multiples inside the range, map() only over unmapped granules and unmap() only
  // over mapped ones. The defaults throw NotSupported naming the backend. do_release() is called once per
  // reservation after everything in it was unmapped, and must not throw.
  virtual NativeAllocation do_reserve_address_range(int device, std::size_t bytes);
  virtual void do_map(const Segment& range, std::size_t offset, std::size_t bytes);
  virtual void do_unmap(const Segment& range, std::size_t offset, std::size_t bytes);
  virtual void do_release_address_range(const Segment& range) noexcept;
  // Called for pairs listed in peers, when their state changes. The defaults throw NotSupported naming both.
  virtual void do_enable_peer_access(int device, int peer);
  virtual void do_disable_peer_access(int device, int peer);

  void check_device(int device, std::string_view operation) const;
  // One pass over the registry: bytes live on `device`, plain host memory included or not.
  [[nodiscard]] std::size_t sum_live_bytes(int device, bool include_host_kind) const;
  // Valid indices of two different devices, and `peer` among `device`'s peers (NotSupported otherwise).
  void check_peer_pair(int device, int peer, std::string_view operation, bool must_be_peers) const;
  void check_stream(const Stream* stream, std::string_view operation) const;
  // Returns true when the segment is this backend's own (live) segment, false when it is host memory to be
  // treated as pageable; throws InvalidArgument for anything else.
  bool check_copy_operand(const Segment& segment, std::string_view role) const;

  // A reservation's granules, mapped or not.
  // Mapped runs are kept as intervals, so that checks cost the same for a 4 KiB host page as for a 2 MiB
  // GPU granule, whatever the size of the range.
  struct Reservation {
    std::size_t granule = 0;
    std::size_t mapped_bytes = 0;
    std::map<std::size_t, std::size_t> runs;  // mapped [start, end) by start; disjoint, never adjacent

    // The first byte of [offset, end) that is mapped (want_mapped false) or unmapped (true); `end` if none.
    [[nodiscard]] std::size_t first_differing(std::size_t offset, std::size_t end, bool want_mapped) const;
    void add(std::size_t offset, std::size_t end);
    void remove(std::size_t offset, std::size_t end);  // [offset, end) lies inside one run
  };

  struct LiveRecord {
    void* native = nullptr;
    std::size_t size = 0;
    DeviceId device;
    MemoryKind kind = MemoryKind::Host;
    std::unique_ptr<Reservation> reservation;  // only for reserve_address_range()

    [[nodiscard]] bool matches(const Segment& s) const noexcept {
      return native == s.native && size == s.size && device == s.device && kind == s.kind;
    }
    // What the record holds of the device's memory: a reservation only its mapped bytes.
    [[nodiscard]] std::size_t held_bytes() const noexcept {
      return reservation ? reservation->mapped_bytes : size;
    }
  };

  // Unmaps what is still mapped and releases the addresses; reports failures instead of throwing.
  void release_reservation(const Segment& range, const Reservation& reservation) noexcept;
  // The live reservation `range` names (under registry_mutex_); InvalidArgument naming `operation` otherwise.
  LiveRecord& reservation_record(const Segment& range, std::string_view operation);
  // Checks a map/unmap span against the reservation (granule multiples, inside it, every granule `mapped`
  // or every granule not).
  static void check_map_span(const Backend& backend, const Segment& range, const Reservation& reservation,
                             std::size_t offset, std::size_t bytes, bool want_mapped,
                             std::string_view operation);
  // copy/memset/prefetch on a reservation: every byte of [offset, offset + bytes) must be mapped.
  void check_mapped(const Segment& segment, std::size_t offset, std::size_t bytes,
                    std::string_view operation) const;

  // What allocate() checks on every call and never changes: read from do_device_info() once per device, so
  // that the check costs no native query (the host backend would otherwise read /proc/meminfo each time).
  struct AllocationLimits {
    bool known = false;
    Capabilities capabilities;
    std::size_t max_allocation_bytes = 0;
    std::size_t virtual_memory_granule = 0;
  };
  AllocationLimits allocation_limits(int device);

  BackendKind kind_;
  std::vector<AllocationLimits> limits_;  // guarded by registry_mutex_
  mutable std::mutex registry_mutex_;
  std::unordered_map<std::uint64_t, LiveRecord> live_;
  std::uint64_t next_id_ = 1;
  mutable std::mutex peer_mutex_;
  std::vector<std::pair<int, int>> enabled_peers_;  // (device, peer)
};

}  // namespace unimem
