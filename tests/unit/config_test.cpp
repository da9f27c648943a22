// Unit tests for parseTopologyConfig: the [topology] section of tierd.toml.
// Every rejected file must say where: "<source>:<line>: ...".
#include "config/topology_config.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <string>

namespace tier {
namespace {

using Overrides = std::map<int, int>;

::testing::AssertionResult hasSubstr(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

::testing::AssertionResult startsWith(const std::string& text, const std::string& prefix) {
  if (text.starts_with(prefix)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not start with '" << prefix << "'";
}

constexpr const char* kSource = "tierd.toml";

Result<TopologyOptions> parse(const std::string& text) {
  return parseTopologyConfig(text, kSource);
}

// Expects `text` to be rejected with EINVAL and a context that starts with
// "tierd.toml:<line>:" and contains `detail`.
void expectRejected(const std::string& text, int line, const std::string& detail) {
  auto options = parse(text);
  ASSERT_FALSE(options) << "accepted:\n" << text;
  EXPECT_EQ(options.error().errnum, EINVAL);
  EXPECT_TRUE(
      startsWith(options.error().context, std::string(kSource) + ":" + std::to_string(line) + ":"))
      << "for:\n"
      << text;
  EXPECT_TRUE(hasSubstr(options.error().context, detail)) << "for:\n" << text;
}

TEST(TopologyConfigTest, EmptyTextGivesDefaults) {
  auto options = parse("");
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_DOUBLE_EQ(options->same_tier_tolerance, 0.10);
  EXPECT_TRUE((options->tier_override).empty());
}

TEST(TopologyConfigTest, EmptyTopologySectionGivesDefaults) {
  auto options = parse("# tierd configuration\n[topology]\n");
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_DOUBLE_EQ(options->same_tier_tolerance, 0.10);
  EXPECT_TRUE((options->tier_override).empty());
}

TEST(TopologyConfigTest, ReadsToleranceAndOverridesByNodeNameOrNumber) {
  auto options = parse(
      "[topology]\n"
      "same_tier_tolerance = 0.2\n"
      "[topology.tier_override]\n"
      "node3 = 1\n"
      "\"2\" = 0\n");
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_DOUBLE_EQ(options->same_tier_tolerance, 0.2);
  EXPECT_EQ(options->tier_override, (Overrides{{2, 0}, {3, 1}}));
}

TEST(TopologyConfigTest, ReadsInlineTableAndDottedKeys) {
  auto options = parse(
      "topology.same_tier_tolerance = 0.05\n"
      "topology.tier_override = { node0 = 0, node4095 = 64 }\n");
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_DOUBLE_EQ(options->same_tier_tolerance, 0.05);
  EXPECT_EQ(options->tier_override, (Overrides{{0, 0}, {4095, 64}}));
}

TEST(TopologyConfigTest, AcceptsToleranceBoundsIncludingIntegers) {
  for (const char* text :
       {"[topology]\nsame_tier_tolerance = 0\n", "[topology]\nsame_tier_tolerance = 1\n",
        "[topology]\nsame_tier_tolerance = 1.0\n"}) {
    auto options = parse(text);
    ASSERT_TRUE(options) << text << options.error().message();
  }
  EXPECT_DOUBLE_EQ(parse("[topology]\nsame_tier_tolerance = 1\n")->same_tier_tolerance, 1.0);
}

TEST(TopologyConfigTest, IgnoresOtherTopLevelSections) {
  auto options = parse(
      "[agent]\n"
      "interval_ms = 500\n"
      "unknown_knob = \"x\"\n"
      "[topology]\n"
      "same_tier_tolerance = 0.3\n"
      "[promotion]\n"
      "rate_limit_mbps = 1024\n");
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_DOUBLE_EQ(options->same_tier_tolerance, 0.3);
}

TEST(TopologyConfigTest, FileWithoutTopologyGivesDefaults) {
  auto options = parse("[agent]\ninterval_ms = 500\n");
  ASSERT_TRUE(options) << options.error().message();
  EXPECT_DOUBLE_EQ(options->same_tier_tolerance, 0.10);
  EXPECT_TRUE((options->tier_override).empty());
}

TEST(TopologyConfigTest, RejectsBadTomlSyntaxNamingSourceAndLine) {
  expectRejected("[topology\n", 1, "");
  expectRejected(
      "[agent]\n"
      "interval_ms = 500\n"
      "[topology]\n"
      "same_tier_tolerance = = 0.2\n",
      4, "");
}

TEST(TopologyConfigTest, RejectsDuplicateKeyAsTomlError) {
  expectRejected("[topology]\nsame_tier_tolerance = 0.2\nsame_tier_tolerance = 0.3\n", 3, "");
}

TEST(TopologyConfigTest, RejectsUnknownKeyUnderTopologyNamingKeyAndLine) {
  expectRejected(
      "[topology]\n"
      "same_tier_tolerance = 0.2\n"
      "same_tier_tolerence = 0.3\n",
      3, "unknown key topology.same_tier_tolerence");
}

TEST(TopologyConfigTest, RejectsUnknownSubtableUnderTopology) {
  expectRejected("[topology.overrides]\nnode1 = 1\n", 1, "topology.overrides");
}

TEST(TopologyConfigTest, RejectsToleranceOutOfRange) {
  expectRejected("[topology]\nsame_tier_tolerance = 1.5\n", 2, "topology.same_tier_tolerance");
  expectRejected("[topology]\n\nsame_tier_tolerance = -0.1\n", 3, "topology.same_tier_tolerance");
  expectRejected("[topology]\nsame_tier_tolerance = inf\n", 2, "topology.same_tier_tolerance");
}

TEST(TopologyConfigTest, RejectsToleranceThatIsNotANumber) {
  expectRejected("[topology]\nsame_tier_tolerance = \"0.2\"\n", 2, "topology.same_tier_tolerance");
  expectRejected("[topology]\nsame_tier_tolerance = true\n", 2, "topology.same_tier_tolerance");
}

// Regression (topology_config.cpp): `*fraction < 0 || *fraction > 1` is false for
// NaN, so "nan" is accepted as a tolerance.
TEST(TopologyConfigTest, RejectsNanTolerance) {
  expectRejected("[topology]\nsame_tier_tolerance = nan\n", 2, "topology.same_tier_tolerance");
}

TEST(TopologyConfigTest, RejectsNegativeRankNamingNodeAndLine) {
  expectRejected(
      "[topology.tier_override]\n"
      "node1 = 0\n"
      "node3 = -1\n",
      3, "topology.tier_override.node3");
}

TEST(TopologyConfigTest, RejectsRankAboveSixtyFour) {
  expectRejected("[topology.tier_override]\nnode3 = 65\n", 2, "topology.tier_override.node3");
}

TEST(TopologyConfigTest, RejectsRankThatIsNotAnInteger) {
  expectRejected("[topology.tier_override]\nnode3 = 1.5\n", 2, "topology.tier_override.node3");
  expectRejected("[topology.tier_override]\nnode3 = \"1\"\n", 2, "topology.tier_override.node3");
  expectRejected("[topology.tier_override]\nnode3 = [1]\n", 2, "topology.tier_override.node3");
}

// Regression (topology_config.cpp): rank.value<int64_t>() converts booleans and
// integral floats, so `node3 = true` becomes rank 1 and `node3 = 2.0` rank 2.
TEST(TopologyConfigTest, RejectsBooleanAndFloatRanks) {
  expectRejected("[topology.tier_override]\nnode3 = true\n", 2, "topology.tier_override.node3");
  expectRejected("[topology.tier_override]\nnode3 = 2.0\n", 2, "topology.tier_override.node3");
}

TEST(TopologyConfigTest, RejectsKeyThatIsNotANodeIdNamingIt) {
  expectRejected(
      "[topology]\n"
      "same_tier_tolerance = 0.1\n"
      "[topology.tier_override]\n"
      "nodeX = 1\n",
      4, "'nodeX' is not a node id");
  expectRejected("[topology.tier_override]\nnode = 1\n", 2, "'node' is not a node id");
  expectRejected("[topology.tier_override]\nnode-1 = 1\n", 2, "'node-1' is not a node id");
  expectRejected("[topology.tier_override]\nnode4096 = 1\n", 2, "'node4096' is not a node id");
  expectRejected("[topology.tier_override]\ncxl0 = 1\n", 2, "'cxl0' is not a node id");
}

// Regression (topology_config.cpp): "node3" and "3" name the same node; the second
// one in key order silently wins instead of being reported.
TEST(TopologyConfigTest, RejectsTwoOverridesForTheSameNode) {
  auto options = parse("[topology.tier_override]\nnode3 = 1\n\"3\" = 2\n");
  ASSERT_FALSE(options);
  EXPECT_TRUE(hasSubstr(options.error().context, "node 3 twice"));
}

TEST(TopologyConfigTest, RejectsTopologyThatIsNotATable) {
  expectRejected("topology = 3\n", 1, "[topology] must be a table");
  expectRejected("[agent]\nx = 1\n\n[[topology]]\nsame_tier_tolerance = 0.3\n", 4,
                 "[topology] must be a table");
}

TEST(TopologyConfigTest, RejectsTierOverrideThatIsNotATable) {
  expectRejected("[topology]\ntier_override = 1\n", 2, "topology.tier_override must be a table");
}

TEST(TopologyConfigTest, UsesTheGivenSourceNameInErrors) {
  auto options = parseTopologyConfig("[topology]\nbogus = 1\n", "/etc/tierd/tierd.toml");
  ASSERT_FALSE(options);
  EXPECT_TRUE(startsWith(options.error().context, "/etc/tierd/tierd.toml:2: "));
  EXPECT_TRUE(hasSubstr(options.error().context, "topology.bogus"));
}

}  // namespace
}  // namespace tier
