// The pure half of the policy loop: room, budgets, move requests.
#include "policy/planner.h"

#include <gtest/gtest.h>

namespace tierd::policy {
namespace {

constexpr uint64_t kMiB = 1ULL << 20;

TierView view() {
  TierView v;
  v.initiator = 0;
  v.fast = {{0, 1024 * kMiB, 100 * kMiB}};
  v.slower = {{1, 2048 * kMiB, 1000 * kMiB}, {2, 2048 * kMiB, 1500 * kMiB}};
  return v;
}

TEST(Planner, CapacityIsFreeFastMemoryPlusManagedPagesAlreadyThere) {
  RoomSettings room;
  room.headroom_bytes = 8 * kMiB;
  room.low_watermark_bytes = 16 * kMiB;
  room.rate_bytes_per_second = 64.0 * kMiB;
  room.plan_seconds = 2;
  const auto in = classifyInput(view(), room, 5000);
  EXPECT_EQ(in.fast_free_pages, 100u * 256);
  EXPECT_EQ(in.capacity_pages, 100u * 256 + 5000);
  EXPECT_EQ(in.headroom_pages, 8u * 256);
  EXPECT_EQ(in.low_watermark_pages, 16u * 256);
  // 64 MiB/s for 2 s: 128 MiB of 4 KiB pages each way.
  EXPECT_EQ(in.promote_budget_pages, 128u * 256);
  EXPECT_EQ(in.demote_budget_pages, 128u * 256);
}

TEST(Planner, AFastNodesKernelReserveRaisesItsHeadroom) {
  // Node 0 reserves 40 MiB (its high watermark), more than the configured
  // 8 MiB; node 3 reserves 2 MiB, so the configured 8 MiB holds there.
  TierView v = view();
  v.fast = {{0, 1024 * kMiB, 100 * kMiB, 40 * kMiB}, {3, 1024 * kMiB, 50 * kMiB, 2 * kMiB}};
  RoomSettings room;
  room.headroom_bytes = 8 * kMiB;
  const auto in = classifyInput(v, room, 0);
  EXPECT_EQ(in.fast_free_pages, 150u * 256);
  EXPECT_EQ(in.headroom_pages, (40u + 8u) * 256);
}

TEST(Planner, NoRateLimitMeansNoBudgetCap) {
  RoomSettings room;
  const auto in = classifyInput(view(), room, 0);
  EXPECT_EQ(in.promote_budget_pages, UINT64_MAX);
}

TEST(Planner, PagesBecomeCoalescedRangesPerProcessAndTarget) {
  hotness::Plan plan;
  plan.promote = {{7, 10, 1, 5}, {7, 11, 1, 4}, {7, 13, 1, 3}, {9, 10, 1, 2}};
  plan.demote = {{7, 100, 2, 0}};
  const MovePlan moves = toMoveRequests(plan, view(), 12);
  ASSERT_EQ(moves.promote.size(), 2u);
  EXPECT_EQ(moves.promote_pages, 4u);
  EXPECT_EQ(moves.demote_pages, 2u);
  const auto& a = moves.promote[0];
  EXPECT_EQ(a.pid, 7);
  EXPECT_EQ(a.target_node, 0);
  EXPECT_TRUE(a.respect_backoff);
  ASSERT_EQ(a.ranges.size(), 2u);  // pages 10-11 and 13
  EXPECT_EQ(a.ranges[0].start, 10u << 12);
  EXPECT_EQ(a.ranges[0].end, 12u << 12);
  EXPECT_EQ(a.ranges[1].start, 13u << 12);
  EXPECT_EQ(a.ranges[1].end, 14u << 12);
  ASSERT_EQ(moves.demote.size(), 1u);
  EXPECT_EQ(moves.demote[0].target_node, 2);  // the slower node with the most free memory
  EXPECT_EQ(moves.demote[0].ranges[0].end - moves.demote[0].ranges[0].start, 2u << 12);
}

TEST(Planner, RequestsAreCutToTheirPageLimit) {
  hotness::Plan plan;
  for (uint64_t p = 0; p < 10; ++p)
    plan.promote.push_back({1, p * 2, 1, 1});
  const MovePlan moves = toMoveRequests(plan, view(), 12, 4);
  ASSERT_EQ(moves.promote.size(), 3u);
  EXPECT_EQ(moves.promote[0].ranges.size(), 4u);
  EXPECT_EQ(moves.promote[2].ranges.size(), 2u);
  EXPECT_EQ(moves.promote_pages, 10u);
}

TEST(Planner, AProcessBelongsToTheNodeHoldingItsCpus) {
  const std::map<int, std::vector<int>> cpus{{0, {0, 1}}, {1, {2, 3}}};
  EXPECT_EQ(initiatorOf({2, 3}, cpus), 1);
  EXPECT_EQ(initiatorOf({1, 2}, cpus), 0);
  EXPECT_EQ(initiatorOf({9}, cpus), std::nullopt);
}

TEST(Planner, NoSlowerNodeMeansNoDemotionRequests) {
  hotness::Plan plan;
  plan.demote = {{1, 5, 1, 0}};
  TierView v = view();
  v.slower.clear();
  EXPECT_TRUE(toMoveRequests(plan, v, 12).demote.empty());
}

}  // namespace
}  // namespace tierd::policy
