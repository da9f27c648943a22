// The shim's policy parsing and decisions (libtier/preload/policy.h), and the
// registration request it sends to tierd. Pure: no process, no OS.
#include "preload/policy.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "preload/agent_link.h"

namespace tier::preload {
namespace {

Policy parsed(std::initializer_list<std::pair<const char*, const char*>> settings) {
  Policy policy;
  for (auto [name, value] : settings) {
    auto applied = applySetting(name, value, policy);
    EXPECT_TRUE(applied) << name << "=" << value << ": " << applied.error().message;
  }
  return policy;
}

std::string errorOf(const char* name, const char* value) {
  Policy policy;
  auto applied = applySetting(name, value, policy);
  return applied ? "" : applied.error().message;
}

TEST(ParseSize, UnitsAreBinary) {
  struct {
    const char* text;
    uint64_t bytes;
  } const cases[] = {{"0", 0},        {"4096", 4096},      {"4K", 4096},
                     {"4k", 4096},    {"4KiB", 4096},      {"4kb", 4096},
                     {"1M", 1 << 20}, {"3G", 3ull << 30},  {"2T", 2ull << 40},
                     {"512B", 512},   {" 64K ", 64 << 10}, {"16777216", 16 << 20}};
  for (auto c : cases) {
    auto size = parseSize(c.text);
    ASSERT_TRUE(size) << c.text << ": " << size.error().message;
    EXPECT_EQ(*size, c.bytes) << c.text;
  }
}

TEST(ParseSize, RejectsWhatIsNotASize) {
  for (const char* text : {"", "K", "-1", "1.5M", "12Q", "1MM", "1 M B", "0x10",
                           "99999999999999999999", "20000000T"}) {
    auto size = parseSize(text);
    ASSERT_FALSE(size) << text;
    EXPECT_NE(std::string(size.error().message).find(text), std::string::npos)
        << size.error().message;
  }
}

TEST(ParseTarget, NamesAndIndices) {
  EXPECT_EQ(*parseTarget("fast", false), (Target{Target::kFast, 0}));
  EXPECT_EQ(*parseTarget("FAR", false), (Target{Target::kFar, 0}));
  EXPECT_EQ(*parseTarget("rank2", false), (Target{Target::kRank, 2}));
  EXPECT_EQ(*parseTarget("node3", true), (Target{Target::kNode, 3}));
  EXPECT_EQ(*parseTarget("ratio", true), (Target{Target::kRatio, 0}));
  EXPECT_FALSE(parseTarget("ratio", false));
  EXPECT_FALSE(parseTarget("rank", false));
  EXPECT_FALSE(parseTarget("rank-1", false));
  EXPECT_FALSE(parseTarget("node1024", false));
  EXPECT_FALSE(parseTarget("slow", false));
}

TEST(Ratio, ParsesTiersAndWeights) {
  Policy policy = parsed({{"LIBTIER_RATIO", " fast:1 , far:3 "}});
  ASSERT_EQ(policy.share_count, 2);
  EXPECT_EQ(policy.shares[0].tier.kind, Target::kFast);
  EXPECT_EQ(policy.shares[0].weight, 1u);
  EXPECT_EQ(policy.shares[1].tier.kind, Target::kFar);
  EXPECT_EQ(policy.shares[1].weight, 3u);
  EXPECT_TRUE(policy.placesBlocks());
  EXPECT_EQ(policy.targetFor(100).kind, Target::kRatio);
}

TEST(Ratio, ErrorsNameTheVariableTheValueAndThePart) {
  std::string message = errorOf("LIBTIER_RATIO", "fast:1,far:three");
  EXPECT_NE(message.find("LIBTIER_RATIO=\"fast:1,far:three\""), std::string::npos) << message;
  EXPECT_NE(message.find("\"three\""), std::string::npos) << message;
  EXPECT_NE(errorOf("LIBTIER_RATIO", "fast:1,fast:2").find("named twice"), std::string::npos);
  EXPECT_NE(errorOf("LIBTIER_RATIO", "node1:1").find("not nodes"), std::string::npos);
  EXPECT_NE(errorOf("LIBTIER_RATIO", "fast:0").find("every weight is 0"), std::string::npos);
  EXPECT_NE(errorOf("LIBTIER_RATIO", "").find("TIER:WEIGHT"), std::string::npos);
  EXPECT_NE(errorOf("LIBTIER_RATIO", "fast"), "");
  EXPECT_NE(errorOf("LIBTIER_RATIO", "fast:1,far:2000000"), "");
}

TEST(Rules, RangesAreHalfOpenAndThresholdComesFirst) {
  Policy policy = parsed({{"LIBTIER_RULES", "0-4K:fast;4K-1M:ratio;1M-:rank2;"},
                          {"LIBTIER_RATIO", "fast:1,far:1"},
                          {"LIBTIER_THRESHOLD", "64M"}});
  ASSERT_EQ(policy.rule_count, 3);
  EXPECT_TRUE(validate(policy));
  EXPECT_EQ(policy.targetFor(0).kind, Target::kFast);
  EXPECT_EQ(policy.targetFor(4095).kind, Target::kFast);
  EXPECT_EQ(policy.targetFor(4096).kind, Target::kRatio);
  EXPECT_EQ(policy.targetFor((1 << 20) - 1).kind, Target::kRatio);
  EXPECT_EQ(policy.targetFor(1 << 20), (Target{Target::kRank, 2}));
  EXPECT_EQ(policy.targetFor(64 << 20).kind, Target::kFar);
}

TEST(Rules, UncoveredSizesGoToTheRatioOrTheFastTier) {
  Policy rules_only = parsed({{"LIBTIER_RULES", "1K-2K:far"}});
  EXPECT_EQ(rules_only.targetFor(10).kind, Target::kFast);
  EXPECT_EQ(rules_only.targetFor(1500).kind, Target::kFar);
  Policy with_ratio = parsed({{"LIBTIER_RULES", "1K-2K:far"}, {"LIBTIER_RATIO", "far:1"}});
  EXPECT_EQ(with_ratio.targetFor(10).kind, Target::kRatio);
}

TEST(Rules, Errors) {
  EXPECT_NE(errorOf("LIBTIER_RULES", "0-4K:fast;2K-8K:far").find("overlaps"), std::string::npos);
  EXPECT_NE(errorOf("LIBTIER_RULES", "4K-4K:far").find("empty"), std::string::npos);
  EXPECT_NE(errorOf("LIBTIER_RULES", "4K:far").find("LOW-HIGH:TARGET"), std::string::npos);
  EXPECT_NE(errorOf("LIBTIER_RULES", "0-4K").find("no target"), std::string::npos);
  EXPECT_NE(errorOf("LIBTIER_RULES", "0-4X:far").find("4X"), std::string::npos);
  EXPECT_NE(errorOf("LIBTIER_RULES", "0-4K:warm").find("warm"), std::string::npos);
  Policy policy = parsed({{"LIBTIER_RULES", "0-:ratio"}});
  auto checked = validate(policy);
  ASSERT_FALSE(checked);
  EXPECT_NE(std::string(checked.error().message).find("LIBTIER_RATIO is not set"),
            std::string::npos);
}

TEST(Flags, DebugAndAgent) {
  EXPECT_TRUE(parsed({{"LIBTIER_DEBUG", "1"}}).debug);
  EXPECT_FALSE(parsed({{"LIBTIER_DEBUG", "off"}}).debug);
  EXPECT_EQ(parsed({{"LIBTIER_AGENT", "0"}}).agent, AgentMode::kOff);
  EXPECT_EQ(parsed({{"LIBTIER_AGENT", "yes"}}).agent, AgentMode::kOn);
  EXPECT_EQ(parsed({{"LIBTIER_AGENT", "auto"}}).agent, AgentMode::kAuto);
  EXPECT_STREQ(parsed({{"LIBTIER_TIERD_SOCKET", "/tmp/x.sock"}}).agent_socket, "/tmp/x.sock");
  EXPECT_NE(errorOf("LIBTIER_DEBUG", "2"), "");
  EXPECT_NE(errorOf("LIBTIER_AGENT", "sometimes"), "");
  EXPECT_NE(errorOf("LIBTIER_TIERD_SOCKET", std::string(200, 'x').c_str()), "");
  EXPECT_NE(errorOf("LIBTIER_THRESHOLD", "0").find("LIBTIER_RULES=0-:far"), std::string::npos);
}

TEST(Config, KeysAreSettingNamesAndErrorsNameTheLine) {
  Policy policy;
  ASSERT_TRUE(applyConfigText("# comment\n\nratio = fast:1,far:3\r\nThreshold=2M # big\n",
                              "/etc/t.conf", policy));
  EXPECT_EQ(policy.share_count, 2);
  EXPECT_EQ(policy.threshold, 2u << 20);
  auto bad = applyConfigText("ratio = fast:1\nthreshold 2M\n", "/etc/t.conf", policy);
  ASSERT_FALSE(bad);
  EXPECT_STREQ(bad.error().message, "/etc/t.conf:2: expected key = value");
  bad = applyConfigText("color = blue\n", "c", policy);
  ASSERT_FALSE(bad);
  EXPECT_NE(std::string(bad.error().message).find("c:1: unknown key \"color\""), std::string::npos);
  bad = applyConfigText("rules = 0-1K:far;512-:fast\n", "c", policy);
  ASSERT_FALSE(bad);
  EXPECT_NE(std::string(bad.error().message).find("c:1: LIBTIER_RULES="), std::string::npos);
}

TEST(ResolveShares, FarIsRankOneAndMissingRanksMerge) {
  Policy policy = parsed({{"LIBTIER_RATIO", "fast:1,far:3,rank2:4"}});
  Slots three = resolveShares(policy, 3);
  ASSERT_EQ(three.count, 3);
  EXPECT_EQ(three.rank[1], 1);
  EXPECT_EQ(three.rank[2], 2);
  Slots two = resolveShares(policy, 2);  // rank2 does not exist: the last tier serves it
  ASSERT_EQ(two.count, 2);
  EXPECT_EQ(two.weight[two.slotOfRank(1)], 7u);
  Slots one = resolveShares(policy, 1);
  ASSERT_EQ(one.count, 1);
  EXPECT_EQ(one.weight[0], 8u);
  Policy zero = parsed({{"LIBTIER_RATIO", "fast:0,far:1"}});
  EXPECT_EQ(resolveShares(zero, 2).count, 1);
}

// The balancer over a long mixed stream with frees: the achieved share stays
// within 2 % once 1 GiB has been allocated, and within one block throughout.
TEST(PickSlot, HoldsTheByteRatioOverMixedSizesAndFrees) {
  Policy policy = parsed({{"LIBTIER_RATIO", "fast:1,far:3"}});
  Slots slots = resolveShares(policy, 2);
  int64_t live[kMaxShares] = {};
  struct Block {
    int slot;
    uint64_t size;
  };
  std::vector<Block> blocks;
  std::mt19937_64 random(7);
  uint64_t allocated = 0;
  while (allocated < (1ull << 30)) {
    uint64_t size = 16ull << (random() % 17);  // 16 B .. 1 MiB
    int slot = pickSlot(slots, size, live);
    live[slot] += static_cast<int64_t>(size);
    blocks.push_back({slot, size});
    allocated += size;
    if (random() % 3 == 0) {
      size_t victim = random() % blocks.size();
      live[blocks[victim].slot] -= static_cast<int64_t>(blocks[victim].size);
      blocks[victim] = blocks.back();
      blocks.pop_back();
    }
  }
  double far = static_cast<double>(live[slots.slotOfRank(1)]);
  double total = far + static_cast<double>(live[slots.slotOfRank(0)]);
  EXPECT_NEAR(far / total, 0.75, 0.02);
  EXPECT_NEAR(far / total, 0.75, 2.0 * (1 << 20) / total) << "more than a block or two off";
}

TEST(PickSlot, EqualSmallBlocksFollowTheWeightsExactly) {
  Slots slots = resolveShares(parsed({{"LIBTIER_RATIO", "fast:2,far:3"}}), 2);
  int64_t live[kMaxShares] = {};
  int picks[2] = {};
  for (int i = 0; i < 5000; ++i) {
    int slot = pickSlot(slots, 64, live);
    live[slot] += 64;
    picks[slots.rank[slot]]++;
  }
  EXPECT_EQ(picks[0], 2000);
  EXPECT_EQ(picks[1], 3000);
}

TEST(Describe, OneLine) {
  char line[256];
  describe(Policy{}, line, sizeof line);
  EXPECT_STREQ(line, "default (fast tier first)");
  describe(parsed({{"LIBTIER_RATIO", "fast:1,far:3"},
                   {"LIBTIER_THRESHOLD", "1M"},
                   {"LIBTIER_RULES", "0-4K:node2"}}),
           line, sizeof line);
  EXPECT_STREQ(line, "ratio fast:1,far:3 threshold 1048576 rules 0-4096:node2");
  char tiny[8];
  describe(parsed({{"LIBTIER_RATIO", "fast:1,far:3"}}), tiny, sizeof tiny);
  EXPECT_EQ(std::string(tiny).size(), 7u);
}

TEST(Registration, IsOneJsonLineInTheControlProtocolsShape) {
  Policy policy = parsed({{"LIBTIER_RATIO", "fast:1,far:3"}, {"LIBTIER_RULES", "0-4K:fast"}});
  tier_stats_t tiers[2] = {};
  tiers[0].rank = 0;
  tiers[0].node_count = 1;
  tiers[0].nodes[0] = 0;
  tiers[0].reserved_bytes = 1ull << 36;
  tiers[1].rank = 1;
  tiers[1].node_count = 2;
  tiers[1].nodes[0] = 2;
  tiers[1].nodes[1] = 3;
  char line[2048];
  size_t length = formatRegistration(line, sizeof line, 4321, "my \"prog\"", policy, tiers, 2);
  ASSERT_GT(length, 0u);
  EXPECT_EQ(line[length - 1], '\n');
  auto request = nlohmann::json::parse(std::string(line, length));
  EXPECT_EQ(request, nlohmann::json::parse(R"({
    "version":1,"request":"register","pid":4321,"program":"my \"prog\"",
    "library":"libtier-preload",
    "policy":{"ratio":[{"tier":"fast","weight":1},{"tier":"far","weight":3}],
              "threshold":null,"rules":[{"low":0,"high":4096,"target":"fast"}]},
    "tiers":[{"rank":0,"nodes":[0],"reserved_bytes":68719476736},
             {"rank":1,"nodes":[2,3],"reserved_bytes":0}]})"));
  EXPECT_EQ(formatRegistration(line, 40, 1, "p", policy, tiers, 2), 0u) << "too small: nothing";
}

}  // namespace
}  // namespace tier::preload
