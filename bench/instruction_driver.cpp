// The driver behind scripts/bench-instructions: one allocator ("subject") through one workload, with the
// same loop for every subject, so that instruction counts and times compare in one binary and one run.
//
//   unimem_instruction_driver count pairs SUBJECT MIX COUNT    callgrind collects only around the loop
//   unimem_instruction_driver count replay SUBJECT TRACE       (run under --collect-atstart=no)
//   unimem_instruction_driver time pairs MIX COUNT SUBJECT...  subjects alternate, 5 rounds, median ns/pair
//   unimem_instruction_driver time replay TRACE SUBJECT...     the same per replayed operation
//
// SUBJECT: null (the loop alone, subtracted from the others), malloc (glibc), jemalloc, mimalloc (loaded
// with dlopen from Debian's libjemalloc2 / libmimalloc2.0 so that they do not replace malloc for the rest of
// the process), or unimem:SPEC@sim / unimem:SPEC@host (a resource spec on an unbacked 80 GiB simulated
// device or on host memory, driven through MemoryResource). MIX: small (256 B to 1 MiB, powers of two) or
// large (2 MiB to 64 MiB). Replays resolve the trace's pointers to dense slots at parse time, so the loop
// does no lookups.

#include <dlfcn.h>
#include <valgrind/callgrind.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "unimem/backend/backend_registry.hpp"
#include "unimem/backend/simulated_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/resource/resource_spec.hpp"
#include "unimem/resource/resource_stack.hpp"
#include "unimem/trace.hpp"

namespace {

using namespace unimem;

// Every subject hands out a handle (an address, or unimem's Allocation) and takes it back; the loops are
// templates over the subject type so that no subject pays for an indirection the others do not.
class NullSubject {
 public:
  using Handle = void*;
  Handle allocate(std::size_t bytes) {
    // NOLINTNEXTLINE(performance-no-int-to-ptr): a fake handle, never dereferenced
    return reinterpret_cast<void*>(next_ += bytes);
  }
  void release(Handle handle) { sink_ = sink_ ^ reinterpret_cast<std::uintptr_t>(handle); }

 private:
  std::uintptr_t next_ = 0;
  volatile std::uintptr_t sink_ = 0;  // keeps the compiler from dropping the loop
};

// A C allocator reached through two function pointers: glibc's, or one loaded with dlopen.
class FunctionSubject {
 public:
  using Handle = void*;
  using AllocateFn = void* (*)(std::size_t);
  using ReleaseFn = void (*)(void*);
  FunctionSubject(AllocateFn allocate_fn, ReleaseFn release_fn)
      : allocate_(allocate_fn), release_(release_fn) {}
  Handle allocate(std::size_t bytes) {
    void* p = allocate_(bytes);
    if (p == nullptr) {
      throw std::runtime_error("the allocator returned null for " + std::to_string(bytes) + " bytes");
    }
    return p;
  }
  void release(Handle handle) { release_(handle); }

 private:
  AllocateFn allocate_;
  ReleaseFn release_;
};

class UnimemSubject {
 public:
  using Handle = Allocation;
  explicit UnimemSubject(MemoryResource& resource) : resource_(&resource) {}
  Handle allocate(std::size_t bytes) { return resource_->allocate(bytes); }
  void release(const Handle& handle) { resource_->deallocate(handle); }

 private:
  MemoryResource* resource_;
};

void* load_symbol(const char* library, const char* symbol) {
  // RTLD_LOCAL: the library's own malloc does not interpose on the process's.
  void* handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    throw NotSupported(std::string("cannot load ") + library +
                       " (scripts/bootstrap installs it): " + dlerror());
  }
  void* address = dlsym(handle, symbol);
  if (address == nullptr) {
    throw NotSupported(std::string(library) + " has no symbol " + symbol);
  }
  return address;
}

using MallocxFn = void* (*)(std::size_t, int);
using DallocxFn = void (*)(void*, int);
MallocxFn jemalloc_mallocx = nullptr;
DallocxFn jemalloc_dallocx = nullptr;
void* jemalloc_allocate(std::size_t bytes) {
  return jemalloc_mallocx(bytes, 0);
}
void jemalloc_release(void* p) {
  jemalloc_dallocx(p, 0);
}

BackendRegistry& registry() {
  static BackendRegistry instance([] {
    BackendRegistryOptions options;
    options.simulated_devices.push_back(SimulatedDeviceSpec::parse("sim:80GiB"));
    return options;
  }());
  return instance;
}

std::vector<std::size_t> size_mix(std::string_view mix, std::size_t count) {
  std::size_t smallest = 0;
  unsigned classes = 0;
  if (mix == "small") {
    smallest = 256;
    classes = 13;  // 256 B .. 1 MiB
  } else if (mix == "large") {
    smallest = std::size_t{2} << 20;
    classes = 6;  // 2 MiB .. 64 MiB
  } else {
    throw InvalidArgument("unknown size mix " + unimem::quoted(mix) + " (small or large)");
  }
  // A fixed linear congruential sequence: the same sizes in the same order for every subject.
  std::vector<std::size_t> sizes(count);
  std::uint32_t state = 12345;
  for (auto& size : sizes) {
    state = state * 1103515245U + 12345U;
    size = smallest << ((state >> 16U) % classes);
  }
  return sizes;
}

template <typename Subject>
void run_pairs(Subject& subject, const std::vector<std::size_t>& sizes) {
  for (std::size_t size : sizes) {
    auto handle = subject.allocate(size);
    subject.release(handle);
  }
}

template <typename Subject>
void run_replay(Subject& subject, const cli::Trace& trace, std::vector<typename Subject::Handle>& slots) {
  for (const cli::TraceEvent& event : trace.events) {
    if (event.action == cli::TraceAction::Allocate) {
      slots[event.slot] = subject.allocate(event.size);
    } else {
      subject.release(slots[event.slot]);
    }
  }
}

// Frees what the trace left live, so the next round starts from the same state.
template <typename Subject>
void release_leftovers(Subject& subject, const cli::Trace& trace,
                       std::vector<typename Subject::Handle>& slots) {
  std::vector<bool> live(trace.slot_count, false);
  for (const cli::TraceEvent& event : trace.events) {
    live[event.slot] = event.action == cli::TraceAction::Allocate;
  }
  for (std::uint32_t slot = 0; slot < trace.slot_count; ++slot) {
    if (live[slot]) {
      subject.release(slots[slot]);
    }
  }
}

// What a workload does with a subject: `measured` is the part callgrind counts or the clock times.
struct Workload {
  std::vector<std::size_t> sizes;     // pairs
  const cli::Trace* trace = nullptr;  // replay

  [[nodiscard]] std::size_t operations() const {
    return trace != nullptr ? trace->events.size() : sizes.size();
  }

  template <typename Subject, typename Measure>
  void run(Subject& subject, Measure&& measure) const {
    if (trace == nullptr) {
      run_pairs(subject, sizes);  // warm-up: the pools and caches hold what the measured loop needs
      measure([&] { run_pairs(subject, sizes); });
      return;
    }
    std::vector<typename Subject::Handle> slots(trace->slot_count);
    run_replay(subject, *trace, slots);
    release_leftovers(subject, *trace, slots);
    measure([&] { run_replay(subject, *trace, slots); });
    release_leftovers(subject, *trace, slots);
  }
};

// Builds the named subject and hands it to `use`; unimem stacks live for the call.
template <typename Use>
void with_subject(std::string_view name, Use&& use) {
  if (name == "null") {
    NullSubject subject;
    use(subject);
  } else if (name == "malloc") {
    FunctionSubject subject(&std::malloc, &std::free);
    use(subject);
  } else if (name == "jemalloc") {
    jemalloc_mallocx = reinterpret_cast<MallocxFn>(load_symbol("libjemalloc.so.2", "mallocx"));
    jemalloc_dallocx = reinterpret_cast<DallocxFn>(load_symbol("libjemalloc.so.2", "dallocx"));
    FunctionSubject subject(&jemalloc_allocate, &jemalloc_release);
    use(subject);
  } else if (name == "mimalloc") {
    FunctionSubject subject(
        reinterpret_cast<FunctionSubject::AllocateFn>(load_symbol("libmimalloc.so.2", "mi_malloc")),
        reinterpret_cast<FunctionSubject::ReleaseFn>(load_symbol("libmimalloc.so.2", "mi_free")));
    use(subject);
  } else if (name.starts_with("unimem:")) {
    const std::size_t at = name.rfind('@');
    const std::string_view where = at == std::string_view::npos ? std::string_view{} : name.substr(at + 1);
    if (where != "sim" && where != "host") {
      throw InvalidArgument("subject " + unimem::quoted(name) + " must end in @sim or @host");
    }
    const std::string_view spec = name.substr(7, at - 7);
    Backend& backend = registry().get(where == "sim" ? BackendKind::Simulated : BackendKind::Host);
    ResourceStack stack =
        make_resource_stack(spec, backend, 0, where == "sim" ? MemoryKind::Device : MemoryKind::Host);
    UnimemSubject subject(stack.top());
    use(subject);
  } else {
    throw InvalidArgument("unknown subject " + unimem::quoted(name) +
                          " (null, malloc, jemalloc, mimalloc, unimem:SPEC@sim, unimem:SPEC@host)");
  }
}

int count_instructions(const Workload& workload, std::string_view subject_name) {
  with_subject(subject_name, [&](auto& subject) {
    workload.run(subject, [](auto&& loop) {
      CALLGRIND_TOGGLE_COLLECT;
      loop();
      CALLGRIND_TOGGLE_COLLECT;
    });
  });
  std::printf("operations %zu\n", workload.operations());
  return 0;
}

int time_subjects(const Workload& workload, const std::vector<std::string>& subjects) {
  constexpr int kRounds = 5;
  std::vector<std::vector<double>> ns(subjects.size());
  for (int round = 0; round < kRounds; ++round) {
    for (std::size_t i = 0; i < subjects.size(); ++i) {
      with_subject(subjects[i], [&](auto& subject) {
        workload.run(subject, [&](auto&& loop) {
          const auto start = std::chrono::steady_clock::now();
          loop();
          const auto elapsed = std::chrono::steady_clock::now() - start;
          ns[i].push_back(std::chrono::duration<double, std::nano>(elapsed).count() /
                          static_cast<double>(workload.operations()));
        });
      });
    }
  }
  for (std::size_t i = 0; i < subjects.size(); ++i) {
    std::sort(ns[i].begin(), ns[i].end());
    std::printf("%s median_ns %.2f min_ns %.2f\n", subjects[i].c_str(), ns[i][kRounds / 2], ns[i][0]);
  }
  return 0;
}

std::size_t parse_count(const char* text) {
  char* end = nullptr;
  const unsigned long long value = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || value == 0 || value > (1ULL << 32U)) {
    throw InvalidArgument("count " + unimem::quoted(text) + " must be a whole number from 1 to 2^32");
  }
  return static_cast<std::size_t>(value);
}

int run(int argc, char** argv) {
  const std::vector<std::string> args(argv + 1, argv + argc);
  const bool counting = args.size() >= 1 && args[0] == "count";
  const bool timing = args.size() >= 1 && args[0] == "time";
  if ((!counting && !timing) || args.size() < 4) {
    throw InvalidArgument(
        "usage: unimem_instruction_driver count pairs SUBJECT MIX COUNT | count replay SUBJECT TRACE | "
        "time pairs MIX COUNT SUBJECT... | time replay TRACE SUBJECT...");
  }
  Workload workload;
  cli::Trace trace;
  std::vector<std::string> subjects;
  if (args[1] == "pairs") {
    if (args.size() < 5) {
      throw InvalidArgument("pairs needs a size mix, a count and a subject");
    }
    const std::string& mix = counting ? args[3] : args[2];
    const std::string& pairs = counting ? args[4] : args[3];
    workload.sizes = size_mix(mix, parse_count(pairs.c_str()));
    subjects =
        counting ? std::vector<std::string>{args[2]} : std::vector<std::string>(args.begin() + 4, args.end());
  } else if (args[1] == "replay") {
    trace = cli::load_trace(counting ? args[3] : args[2]);
    workload.trace = &trace;
    subjects =
        counting ? std::vector<std::string>{args[2]} : std::vector<std::string>(args.begin() + 3, args.end());
  } else {
    throw InvalidArgument("unknown workload " + unimem::quoted(args[1]) + " (pairs or replay)");
  }
  return counting ? count_instructions(workload, subjects.front()) : time_subjects(workload, subjects);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "unimem_instruction_driver: %s\n", error.what());
    return 1;
  }
}
