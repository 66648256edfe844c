#include "unimem/buffer/workspace.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "buffer/buffer_fixture.hpp"
#include "unimem/backend/host_backend.hpp"
#include "unimem/core/error.hpp"
#include "unimem/core/size.hpp"

namespace unimem {
namespace {

using test::contains;
using test::message_of;
using test::ramp;

bool same_memory(const Allocation& a, const Allocation& b) {
  return a.segment == b.segment && a.offset == b.offset && a.size == b.size && a.cookie == b.cookie;
}

class WorkspaceOnEveryTarget : public test::OnEveryTarget {};

TEST_P(WorkspaceOnEveryTarget, PrepareIsIdempotent) {
  Workspace workspace(resource());
  workspace.prepare({{"im2col", 3 * MiB}, {"partials", 4 * KiB}, {"im2col", 2 * MiB}});
  EXPECT_EQ(workspace.slot_count(), 2U);
  EXPECT_EQ(workspace.capacity("im2col"), 3 * MiB) << "a name given twice keeps the larger size";
  EXPECT_EQ(workspace.reserved_bytes(), 3 * MiB + 4 * KiB);
  EXPECT_EQ(workspace.allocation_count(), 2U);
  const Allocation im2col = workspace.allocation("im2col");
  const Allocation partials = workspace.allocation("partials");
  const std::uint64_t upstream = resource().usage().upstream_allocations;

  workspace.prepare({{"im2col", 3 * MiB}, {"partials", 4 * KiB}});  // the same sizes
  workspace.prepare({{"partials", 1}, {"im2col", MiB}});            // smaller ones
  workspace.reserve("partials", 4 * KiB);
  EXPECT_EQ(workspace.allocation_count(), 2U);
  EXPECT_EQ(resource().usage().upstream_allocations, upstream) << "nothing new was allocated";
  EXPECT_TRUE(same_memory(workspace.allocation("im2col"), im2col));
  EXPECT_TRUE(same_memory(workspace.allocation("partials"), partials));
}

TEST_P(WorkspaceOnEveryTarget, GetReusesTheSlotWithoutReallocating) {
  Workspace workspace(resource());
  workspace.reserve("activations", 1000 * sizeof(float));
  BufferView<float> first = workspace.get<float>("activations", 1000);
  const std::vector<float> values = ramp<float>(1000, 0.5F);
  first.copy_from_host(values);
  const Allocation slot = workspace.allocation("activations");

  for (std::size_t count : {1000U, 10U, 999U}) {
    BufferView<float> again = workspace.get<float>("activations", count);
    EXPECT_EQ(again.size(), count);
    EXPECT_EQ(again.allocation().segment, slot.segment);
    EXPECT_EQ(again.allocation().offset, slot.offset);
    EXPECT_EQ(again.to_vector().front(), 0.5F) << "the contents stay between uses";
  }
  EXPECT_EQ(workspace.allocation_count(), 1U);
  EXPECT_TRUE(same_memory(workspace.allocation("activations"), slot));
}

TEST_P(WorkspaceOnEveryTarget, GrowsOnlyWhenAskedForMore) {
  Workspace workspace(resource());
  (void)workspace.get<std::int32_t>("scratch", 100);  // reserves on first use
  EXPECT_EQ(workspace.capacity("scratch"), 400U);
  (void)workspace.get<std::int32_t>("scratch", 50);
  EXPECT_EQ(workspace.allocation_count(), 1U);
  (void)workspace.get<std::int32_t>("scratch", 101);
  EXPECT_EQ(workspace.capacity("scratch"), 404U);
  EXPECT_EQ(workspace.allocation_count(), 2U);
  EXPECT_EQ(resource().live_allocations(), 1U) << "the old memory went back when the slot grew";
  workspace.reserve("scratch", 100);
  EXPECT_EQ(workspace.capacity("scratch"), 404U) << "never shrinks";
}

TEST_P(WorkspaceOnEveryTarget, ZeroesInPlace) {
  Workspace workspace(resource());
  BufferView<std::uint64_t> view = workspace.get<std::uint64_t>("accumulators", 512);
  view.fill(0x0123456789ABCDEFULL);
  const Allocation before = workspace.allocation("accumulators");
  workspace.zero("accumulators");
  EXPECT_TRUE(same_memory(workspace.allocation("accumulators"), before));
  const std::vector<std::uint64_t> out = view.to_vector();
  EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::uint64_t v) { return v == 0; }));
}

TEST_P(WorkspaceOnEveryTarget, WideLayerOfManySlots) {
  Workspace workspace(resource());
  std::vector<Workspace::Request> requests;
  std::vector<std::string> names;
  for (std::size_t i = 0; i < 300; ++i) names.push_back("layer" + std::to_string(i) + ".out");
  for (std::size_t i = 0; i < names.size(); ++i) requests.push_back({names[i], (i % 7 + 1) * KiB});
  workspace.prepare(requests);
  workspace.prepare(requests);
  EXPECT_EQ(workspace.slot_count(), 300U);
  EXPECT_EQ(workspace.allocation_count(), 300U);
  for (std::size_t i = 0; i < names.size(); i += 37) {
    BufferView<std::uint8_t> view = workspace.get<std::uint8_t>(names[i], (i % 7 + 1) * KiB);
    view.fill(static_cast<std::uint8_t>(i));
  }
  for (std::size_t i = 0; i < names.size(); i += 37) {
    EXPECT_EQ(workspace.get<std::uint8_t>(names[i], 1).to_vector()[0], static_cast<std::uint8_t>(i));
  }
  EXPECT_EQ(workspace.allocation_count(), 300U);
}

TEST_P(WorkspaceOnEveryTarget, LeaseTakesSlotsAndGivesThemBack) {
  Workspace workspace(resource());
  {
    Workspace::Lease lease = workspace.lease();
    BufferView<float> a = lease.get<float>("a", 64);
    BufferView<float> again = lease.get<float>("a", 32);  // the same lease may get it again
    EXPECT_EQ(a.allocation().segment, again.allocation().segment);
    EXPECT_EQ(lease.held(), 1U);

    std::string message = message_of<InvalidArgument>([&] { (void)workspace.get<float>("a", 8); });
    EXPECT_TRUE(contains(message, "'a' is held by a lease")) << message;
    Workspace::Lease other = workspace.lease();
    message = message_of<InvalidArgument>([&] { (void)other.get<float>("a", 8); });
    EXPECT_TRUE(contains(message, "another lease")) << message;
    message = message_of<InvalidArgument>([&] { workspace.reserve("a", 4 * KiB); });
    EXPECT_TRUE(contains(message, "cannot grow")) << message;
    EXPECT_THROW(workspace.release(), InvalidArgument);
    workspace.zero("a");  // in place is fine

    Workspace::Lease moved(std::move(lease));
    EXPECT_EQ(moved.held(), 1U);
    EXPECT_THROW((void)other.get<float>("a", 8), InvalidArgument) << "the moved-to lease holds it now";
    (void)moved.get<float>("a", 128);  // its holder may grow it
    EXPECT_EQ(workspace.capacity("a"), 512U);
  }
  EXPECT_NO_THROW((void)workspace.get<float>("a", 8)) << "the lease gave the slot back";
  Workspace::Lease later = workspace.lease();
  EXPECT_NO_THROW((void)later.get<float>("a", 8));
}

INSTANTIATE_TEST_SUITE_P(Backends, WorkspaceOnEveryTarget, ::testing::ValuesIn(test::memory_targets()),
                         test::target_name);

TEST(Workspace, ReusingANameWithAnotherTypeIsATypeMismatch) {
  HostBackend host;
  BackendResource resource(host, 0, MemoryKind::Device);
  Workspace workspace(resource);
  workspace.reserve("bytes", 256);
  (void)workspace.get<double>("bytes", 8);  // an untyped slot takes the type of its first get
  const std::string message = message_of<TypeMismatch>([&] { (void)workspace.get<float>("bytes", 8); });
  EXPECT_TRUE(contains(message, "'bytes'")) << message;
  EXPECT_TRUE(contains(message, "double")) << message;
  EXPECT_TRUE(contains(message, "float")) << message;
  EXPECT_EQ(workspace.allocation_count(), 1U) << "a mismatch allocates nothing";
}

TEST(Workspace, LargeSlotsOnAnUnbackedDevice) {
  Backend& sim = test::shared_registry().get(BackendKind::Simulated);
  BackendResource resource(sim, test::kUnbackedSimDevice, MemoryKind::Device);
  Workspace workspace(resource);
  std::vector<std::string> names;
  std::vector<Workspace::Request> requests;
  names.reserve(40);
  requests.reserve(40);
  for (int i = 0; i < 40; ++i) names.push_back("block" + std::to_string(i));
  for (const std::string& name : names) requests.push_back({name, GiB});
  workspace.prepare(requests);
  EXPECT_EQ(workspace.reserved_bytes(), 40 * GiB);
  workspace.prepare(requests);
  EXPECT_EQ(workspace.allocation_count(), 40U);
  EXPECT_EQ(workspace.get<float>("block3", GiB / sizeof(float)).bytes(), GiB);
  EXPECT_THROW(workspace.zero("block3"), NotSupported) << "nothing behind an unbacked range";
  workspace.release();
  EXPECT_EQ(workspace.slot_count(), 0U);
  EXPECT_EQ(resource.live_allocations(), 0U);
}

TEST(Workspace, RejectsBadRequests) {
  HostBackend host;
  BackendResource resource(host, 0, MemoryKind::Device);
  Workspace workspace(resource);
  EXPECT_THROW(workspace.reserve("", 10), InvalidArgument);
  std::string message = message_of<InvalidArgument>([&] { workspace.reserve("x", 0); });
  EXPECT_TRUE(contains(message, "'x'")) << message;
  EXPECT_THROW((void)workspace.get<int>("x", 0), InvalidArgument);
  message = message_of<InvalidArgument>([&] { workspace.zero("missing"); });
  EXPECT_TRUE(contains(message, "'missing'")) << message;
  EXPECT_THROW((void)workspace.allocation("missing"), InvalidArgument);
  EXPECT_THROW((void)workspace.get<int>("huge", SIZE_MAX / 2), InvalidArgument);
  EXPECT_EQ(resource.live_allocations(), 0U);
}

TEST(Workspace, FreesEverythingOnDestruction) {
  HostBackend host;
  BackendResource resource(host, 0, MemoryKind::Device);
  {
    Workspace workspace(resource);
    workspace.prepare({{"a", 100}, {"b", 200}, {"c", 300}});
    EXPECT_EQ(resource.live_allocations(), 3U);
  }
  EXPECT_EQ(resource.live_allocations(), 0U);
}

}  // namespace
}  // namespace unimem
