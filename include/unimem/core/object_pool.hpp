#pragma once
// ObjectPool<T>: reusable objects for hot paths that would otherwise new and delete the same kind of object
// (request descriptors, scratch structures). Each thread keeps its own bucket of idle objects, so renting
// and returning take no lock and touch no shared cache line:
//
//   ObjectPool<Request> pool({.max_per_bucket = 64}, [](Request& r) { r.clear(); });
//   {
//     ObjectPool<Request>::Lease request = pool.rent();  // an idle object of this thread, or a new one
//     request->id = 7;
//   }                                                    // reset, then back into this thread's bucket
//
// A lease returns its object to the bucket of the thread that destroys it; a bucket that is full deletes
// the object instead, so each thread holds at most max_per_bucket idle objects. The reset hook runs on
// return, before the object is handed out again.
//
// Thread-safety: rent() and leases may be used from any number of threads at once; stats() may be read
// concurrently (its figures are a snapshot). Leases must not outlive the pool, and no thread may be inside
// rent() or a lease's destructor while the pool is destroyed. A thread that exits deletes its idle objects
// and adds its counts to the pool's.

#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "unimem/core/error.hpp"

namespace unimem {

struct ObjectPoolOptions {
  std::size_t max_per_bucket = 64;  // idle objects one thread keeps at most (> 0)
};

struct ObjectPoolStats {
  std::uint64_t hits = 0;    // rents served by an idle object
  std::uint64_t misses = 0;  // rents that constructed a new object
  std::uint64_t returns = 0;
  std::uint64_t discards = 0;  // returns that found their bucket full and deleted the object
};

template <std::default_initializable T>
class ObjectPool {
  // One thread's idle objects for one pool. Only its thread changes it; the counters are atomics written
  // with plain loads and stores (no read-modify-write) so that stats() can read them from other threads.
  struct Bucket {
    std::vector<T*> idle;
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
    std::atomic<std::uint64_t> returns{0};
    std::atomic<std::uint64_t> discards{0};

    static void bump(std::atomic<std::uint64_t>& counter) noexcept {
      counter.store(counter.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    void delete_idle() noexcept {
      for (T* object : idle) delete object;
      idle.clear();
    }
  };

  // What the pool and the threads' bucket lists share, so that either side may go first.
  struct Shared {
    std::mutex mutex;
    bool alive = true;
    std::vector<Bucket*> buckets;  // every thread's bucket of this pool
    ObjectPoolStats retired;       // counts of threads that have exited

    void add(const Bucket& bucket) noexcept {
      retired.hits += bucket.hits.load(std::memory_order_relaxed);
      retired.misses += bucket.misses.load(std::memory_order_relaxed);
      retired.returns += bucket.returns.load(std::memory_order_relaxed);
      retired.discards += bucket.discards.load(std::memory_order_relaxed);
    }
  };

  // This thread's buckets, one per pool of T it has used; destroyed when the thread exits.
  struct ThreadBuckets {
    struct Entry {
      std::uint64_t pool_id;
      std::shared_ptr<Shared> shared;
      std::unique_ptr<Bucket> bucket;
    };
    std::vector<Entry> entries;
    std::uint64_t last_id = 0;  // the one-entry fast path: most threads use one pool of a type
    Bucket* last = nullptr;

    ~ThreadBuckets() {
      for (Entry& entry : entries) {
        const std::lock_guard lock(entry.shared->mutex);
        if (!entry.shared->alive) continue;  // the pool already deleted the idle objects
        entry.bucket->delete_idle();
        entry.shared->add(*entry.bucket);
        std::erase(entry.shared->buckets, entry.bucket.get());
      }
    }
  };

 public:
  // An object on loan: gives it back to the pool when destroyed. Move-only.
  class Lease {
   public:
    Lease() noexcept = default;
    ~Lease() { give_back(); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease(Lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)), object_(std::exchange(other.object_, nullptr)) {}
    Lease& operator=(Lease&& other) noexcept {
      if (this != &other) {
        give_back();
        pool_ = std::exchange(other.pool_, nullptr);
        object_ = std::exchange(other.object_, nullptr);
      }
      return *this;
    }

    [[nodiscard]] explicit operator bool() const noexcept { return object_ != nullptr; }
    // Throws InvalidArgument on an empty (default-constructed or moved-from) lease.
    [[nodiscard]] T& operator*() const { return checked(); }
    [[nodiscard]] T* operator->() const { return &checked(); }
    [[nodiscard]] T* get() const noexcept { return object_; }

   private:
    friend class ObjectPool;
    Lease(ObjectPool* pool, T* object) noexcept : pool_(pool), object_(object) {}
    T& checked() const {
      if (object_ == nullptr) throw InvalidArgument("ObjectPool::Lease: the lease is empty (moved from?)");
      return *object_;
    }
    void give_back() noexcept {
      if (object_ != nullptr) pool_->give_back(object_);
      object_ = nullptr;
    }

    ObjectPool* pool_ = nullptr;
    T* object_ = nullptr;
  };

  // Throws InvalidArgument naming the value for max_per_bucket = 0 (such a pool could never reuse anything).
  explicit ObjectPool(ObjectPoolOptions options = {}, std::function<void(T&)> reset = {})
      : options_(options), reset_(std::move(reset)), shared_(std::make_shared<Shared>()) {
    if (options.max_per_bucket == 0) {
      throw InvalidArgument("ObjectPool: max_per_bucket = 0; a bucket must hold at least one idle object");
    }
  }
  // Deletes every thread's idle objects (see the header comment for what must not run meanwhile).
  ~ObjectPool() {
    const std::lock_guard lock(shared_->mutex);
    for (Bucket* bucket : shared_->buckets) bucket->delete_idle();
    shared_->alive = false;
  }
  ObjectPool(const ObjectPool&) = delete;
  ObjectPool& operator=(const ObjectPool&) = delete;
  ObjectPool(ObjectPool&&) = delete;
  ObjectPool& operator=(ObjectPool&&) = delete;

  // An idle object of this thread's bucket (reset when it was returned), or a new value-initialized one.
  [[nodiscard]] Lease rent() {
    Bucket& bucket = this_thread_bucket();
    if (!bucket.idle.empty()) {
      T* object = bucket.idle.back();
      bucket.idle.pop_back();
      Bucket::bump(bucket.hits);
      return Lease(this, object);
    }
    Bucket::bump(bucket.misses);
    return Lease(this, new T());
  }

  [[nodiscard]] const ObjectPoolOptions& options() const noexcept { return options_; }
  // Every thread's counts, live and exited.
  [[nodiscard]] ObjectPoolStats stats() const {
    const std::lock_guard lock(shared_->mutex);
    ObjectPoolStats total = shared_->retired;
    for (const Bucket* bucket : shared_->buckets) {
      total.hits += bucket->hits.load(std::memory_order_relaxed);
      total.misses += bucket->misses.load(std::memory_order_relaxed);
      total.returns += bucket->returns.load(std::memory_order_relaxed);
      total.discards += bucket->discards.load(std::memory_order_relaxed);
    }
    return total;
  }
  // Idle objects in the calling thread's bucket.
  [[nodiscard]] std::size_t idle_in_this_thread() { return this_thread_bucket().idle.size(); }

 private:
  void give_back(T* object) noexcept {
    // The reset hook is the caller's code: if it throws, the object's state is unknown, so it is not reused.
    Bucket* bucket = nullptr;
    try {
      if (reset_) reset_(*object);
      bucket = &this_thread_bucket();
    } catch (...) {
      delete object;
      return;
    }
    Bucket::bump(bucket->returns);
    if (bucket->idle.size() < options_.max_per_bucket) {
      bucket->idle.push_back(object);  // capacity reserved up front: cannot throw
    } else {
      Bucket::bump(bucket->discards);
      delete object;
    }
  }

  Bucket& this_thread_bucket() {
    thread_local ThreadBuckets mine;
    if (mine.last_id == id_) [[likely]]
      return *mine.last;
    for (auto& entry : mine.entries) {
      if (entry.pool_id == id_) {
        mine.last_id = id_;
        mine.last = entry.bucket.get();
        return *mine.last;
      }
    }
    // A dead pool's entries stay until the thread exits; drop them here so a long-lived thread that sees
    // many pools come and go does not keep a list of all of them.
    std::erase_if(mine.entries, [](const auto& entry) {
      const std::lock_guard lock(entry.shared->mutex);
      return !entry.shared->alive;
    });
    auto bucket = std::make_unique<Bucket>();
    bucket->idle.reserve(options_.max_per_bucket);
    {
      const std::lock_guard lock(shared_->mutex);
      shared_->buckets.push_back(bucket.get());
    }
    mine.entries.push_back({id_, shared_, std::move(bucket)});
    mine.last_id = id_;
    mine.last = mine.entries.back().bucket.get();
    return *mine.last;
  }

  static std::uint64_t next_id() noexcept {
    static std::atomic<std::uint64_t> counter{0};
    return counter.fetch_add(1, std::memory_order_relaxed) + 1;  // 0 means "no pool" in the fast path
  }

  ObjectPoolOptions options_;
  std::function<void(T&)> reset_;
  std::shared_ptr<Shared> shared_;
  std::uint64_t id_ = next_id();
};

}  // namespace unimem
