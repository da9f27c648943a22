#include "config/config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "../../unit/temp_tree.h"

namespace tierd::config {
namespace {

using Files = std::vector<std::pair<std::string, std::string>>;

std::string joined(const Errors& errors) {
  std::string text;
  for (const auto& error : errors)
    text += error + "\n";
  return text;
}

TEST(Config, EmptyConfigGivesSafeDefaults) {
  auto config = parseConfig({{"tierd.toml", ""}});
  ASSERT_TRUE(config) << joined(config.error());
  EXPECT_EQ(config->mode, Mode::Coexist);
  EXPECT_EQ(config->interval, std::chrono::milliseconds(1000));
  EXPECT_FALSE(config->dry_run);
  EXPECT_DOUBLE_EQ(config->migration.rate_limit_mbps, 128);
  EXPECT_EQ(config->socket_path, "/run/tierd/tierd.sock");
  EXPECT_EQ(config->metrics_listen, "127.0.0.1:9464");
  EXPECT_TRUE(config->textfile_dir.empty());
}

TEST(Config, ReadsEverySection) {
  auto config = parseConfig({{"tierd.toml", R"(
[agent]
mode = "observe"
interval_ms = 500
dry_run = true
[migration]
rate_limit_mbps = 64
burst_mb = 4
batch_pages = 256
min_free_mb = 128
min_free_percent = 5
pingpong_window_s = 30
[policy]
enabled = false
sampler = "damon"
interval_ms = 5000
sample_interval_ms = 100
cpu_budget_percent = 2
low_watermark_percent = 3
benefit_margin = 1.5
cold_divisor = 8
fast_half_life_s = 3
slow_half_life_s = 30
heat_map_percent = 0.05
[control]
socket = "/tmp/t.sock"
max_connections = 4
[metrics]
listen = ""
textfile_dir = "/var/lib/node_exporter/textfile_collector"
textfile_interval_s = 30
[topology.tier_override]
node3 = 1
)"}});
  ASSERT_TRUE(config) << joined(config.error());
  EXPECT_EQ(config->mode, Mode::Observe);
  EXPECT_EQ(config->interval, std::chrono::milliseconds(500));
  EXPECT_TRUE(config->dry_run);
  EXPECT_DOUBLE_EQ(config->migration.rate_limit_mbps, 64);
  EXPECT_DOUBLE_EQ(config->migration.burst_mb, 4);
  EXPECT_EQ(config->migration.batch_pages, 256);
  EXPECT_DOUBLE_EQ(config->migration.min_free_mb, 128);
  EXPECT_DOUBLE_EQ(config->migration.min_free_percent, 5);
  EXPECT_DOUBLE_EQ(config->migration.pingpong_window_s, 30);
  EXPECT_FALSE(config->policy.enabled);
  EXPECT_EQ(config->policy.sampler, "damon");
  EXPECT_EQ(config->policy.interval, std::chrono::milliseconds(5000));
  EXPECT_EQ(config->policy.sample_interval, std::chrono::milliseconds(100));
  EXPECT_DOUBLE_EQ(config->policy.cpu_budget_percent, 2);
  EXPECT_DOUBLE_EQ(config->policy.low_watermark_percent, 3);
  EXPECT_DOUBLE_EQ(config->policy.benefit_margin, 1.5);
  EXPECT_DOUBLE_EQ(config->policy.cold_divisor, 8);
  EXPECT_DOUBLE_EQ(config->policy.fast_half_life_s, 3);
  EXPECT_DOUBLE_EQ(config->policy.slow_half_life_s, 30);
  EXPECT_DOUBLE_EQ(config->policy.heat_map_percent, 0.05);
  EXPECT_EQ(config->socket_path, "/tmp/t.sock");
  EXPECT_EQ(config->max_connections, 4);
  EXPECT_EQ(config->metrics_listen, "");
  EXPECT_EQ(config->textfile_dir, "/var/lib/node_exporter/textfile_collector");
  EXPECT_EQ(config->textfile_interval, std::chrono::seconds(30));
  EXPECT_EQ(config->topology.tier_override.at(3), 1);
}

TEST(Config, DropInsOverrideKeysTheySetAndKeepTheRest) {
  auto config = parseConfig({{"tierd.toml", "[migration]\nrate_limit_mbps = 64\nburst_mb = 4\n"},
                             {"conf.d/10-fast.toml", "[migration]\nrate_limit_mbps = 512\n"}});
  ASSERT_TRUE(config) << joined(config.error());
  EXPECT_DOUBLE_EQ(config->migration.rate_limit_mbps, 512);
  EXPECT_DOUBLE_EQ(config->migration.burst_mb, 4);
  EXPECT_EQ(config->sources, (std::vector<std::string>{"tierd.toml", "conf.d/10-fast.toml"}));
}

TEST(Config, ArraysOfTablesFromDropInsAppend) {
  auto config = parseConfig({{"a.toml", "[[workloads]]\nname = \"a\"\ncomm = \"x\"\n"},
                             {"b.toml", "[[workloads]]\nname = \"b\"\ncomm = \"y\"\n"}});
  ASSERT_TRUE(config) << joined(config.error());
  EXPECT_EQ(config->document["workloads"].as_array()->size(), 2u);
  ASSERT_EQ(config->workloads.size(), 2u);
  EXPECT_EQ(config->workloads[1].name, "b");
}

TEST(Config, ReportsEveryErrorWithFileLineAndKey) {
  auto config = parseConfig({{"tierd.toml", "[agent]\nmode = \"fast\"\n[migration]\nbogus = 1\n"},
                             {"conf.d/x.toml", "\n[control]\nsocket = \"relative\"\n"}});
  ASSERT_FALSE(config);
  std::string text = joined(config.error());
  EXPECT_NE(text.find("tierd.toml:2: agent.mode"), std::string::npos) << text;
  EXPECT_NE(text.find("tierd.toml:4: unknown key migration.bogus"), std::string::npos) << text;
  EXPECT_NE(text.find("conf.d/x.toml:3: control.socket must be an absolute path"),
            std::string::npos)
      << text;
  EXPECT_EQ(config.error().size(), 3u) << text;
}

TEST(Config, AWorkloadNameUsedInTwoFilesIsAnError) {
  auto config = parseConfig({{"a.toml", "[[workloads]]\nname = \"x\"\ncomm = \"a\"\n"},
                             {"b.toml", "\n[[workloads]]\nname = \"x\"\ncomm = \"b\"\n"}});
  ASSERT_FALSE(config);
  EXPECT_NE(joined(config.error()).find("b.toml:2: workloads: the name \"x\" is used twice"),
            std::string::npos)
      << joined(config.error());
}

TEST(Config, ASyntaxErrorNamesItsFile) {
  auto config = parseConfig({{"tierd.toml", "[agent]\n"}, {"conf.d/broken.toml", "[agent\n"}});
  ASSERT_FALSE(config);
  EXPECT_NE(joined(config.error()).find("conf.d/broken.toml:1"), std::string::npos)
      << joined(config.error());
}

TEST(Config, LoadsMainFileAndDropInsInNameOrder) {
  tier::test::TempTree tree;
  tree.file("tierd.toml", "[migration]\nrate_limit_mbps = 10\n");
  tree.file("conf.d/20-b.toml", "[migration]\nrate_limit_mbps = 30\n");
  tree.file("conf.d/10-a.toml", "[migration]\nrate_limit_mbps = 20\nburst_mb = 2\n");
  tree.file("conf.d/README", "not toml, ignored");
  auto config = loadConfig((tree.root() / "tierd.toml").string(), true);
  ASSERT_TRUE(config) << joined(config.error());
  EXPECT_DOUBLE_EQ(config->migration.rate_limit_mbps, 30);
  EXPECT_DOUBLE_EQ(config->migration.burst_mb, 2);
  EXPECT_EQ(config->sources.size(), 3u);
}

TEST(Config, AMissingFileIsAnErrorOnlyWhenAskedFor) {
  EXPECT_TRUE(loadConfig("/nonexistent/tierd.toml", false));
  auto required = loadConfig("/nonexistent/tierd.toml", true);
  ASSERT_FALSE(required);
  EXPECT_NE(joined(required.error()).find("/nonexistent/tierd.toml"), std::string::npos);
}

TEST(Config, KernelSectionAndMode) {
  auto defaults = parseConfig({{"tierd.toml", ""}});
  ASSERT_TRUE(defaults);
  EXPECT_EQ(defaults->kernel, kernel_tiering::KernelTieringOptions{});
  auto config = parseConfig({{"tierd.toml", R"(
[agent]
mode = "kernel"
[kernel]
machinery = "both"
promote_rate_limit_mbps = 64
hot_threshold_ms = 500
demotion_enabled = false
damos_hot_min_accesses = 3
damos_cold_min_age_s = 30
damos_quota_ms = 50
damos_quota_mbps = 200
damos_demote_free_percent = 40
damos_low_watermark_percent = 2
)"}});
  ASSERT_TRUE(config) << joined(config.error());
  EXPECT_EQ(config->mode, Mode::Kernel);
  EXPECT_EQ(modeName(config->mode), "kernel");
  const auto& k = config->kernel;
  EXPECT_EQ(k.machinery, kernel_tiering::Machinery::Both);
  EXPECT_EQ(k.promote_rate_limit_mbps, 64u);
  EXPECT_EQ(k.hot_threshold_ms, 500u);
  EXPECT_FALSE(k.demotion_enabled);
  EXPECT_EQ(k.damos_hot_min_accesses, 3u);
  EXPECT_DOUBLE_EQ(k.damos_cold_min_age_s, 30);
  EXPECT_EQ(k.damos_quota_ms, 50u);
  EXPECT_DOUBLE_EQ(k.damos_quota_mbps, 200);
  EXPECT_DOUBLE_EQ(k.damos_demote_free_percent, 40);
  EXPECT_DOUBLE_EQ(k.damos_low_watermark_percent, 2);
  // A drop-in overrides one key and keeps the rest.
  auto merged = parseConfig(
      {{"tierd.toml", "[kernel]\nmachinery = \"damos\"\npromote_rate_limit_mbps = 64\n"},
       {"conf.d/10.toml", "[kernel]\npromote_rate_limit_mbps = 32\n"}});
  ASSERT_TRUE(merged) << joined(merged.error());
  EXPECT_EQ(merged->kernel.machinery, kernel_tiering::Machinery::Damos);
  EXPECT_EQ(merged->kernel.promote_rate_limit_mbps, 32u);
}

// Each file in broken/ says on its first line ("# expect: ...") what the
// error must contain.
TEST(Config, EveryBrokenConfigIsRejectedWithItsOwnMessage) {
  namespace fs = std::filesystem;
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(BROKEN_CONFIGS_DIR)) {
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    std::string body = text.str();
    std::string expect = body.substr(std::string("# expect: ").size(), body.find('\n') - 10);
    auto config = parseConfig({{entry.path().filename().string(), body}});
    ASSERT_FALSE(config) << entry.path();
    EXPECT_NE(joined(config.error()).find(expect), std::string::npos)
        << entry.path() << "\nexpected: " << expect << "\ngot: " << joined(config.error());
    ++checked;
  }
  EXPECT_GE(checked, 10);
}

}  // namespace
}  // namespace tierd::config
