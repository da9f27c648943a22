// tierctl's contract with scripts: exit codes and where messages go.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "run_command.h"

namespace tier::test {
namespace {

CommandResult tierctl(std::vector<std::string> args) {
  args.insert(args.begin(), TIERCTL_PATH);
  return runCommand(args);
}

TEST(TierctlCli, UnknownVerbIsAUsageErrorOnStderr) {
  auto result = tierctl({"frobnicate"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_TRUE(result.out.empty());
  EXPECT_NE(result.err.find("unknown verb: frobnicate"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("Usage:"), std::string::npos);
}

TEST(TierctlCli, UnknownFlagIsAUsageErrorNamingTheFlag) {
  auto result = tierctl({"topology", "--frobnicate"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("--frobnicate"), std::string::npos) << result.err;
}

TEST(TierctlCli, NoVerbIsAUsageError) {
  auto result = tierctl({});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("Usage:"), std::string::npos);
}

TEST(TierctlCli, HelpGoesToStdoutAndSucceeds) {
  auto result = tierctl({"--help"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_NE(result.out.find("topology"), std::string::npos);
  EXPECT_NE(result.out.find("gather"), std::string::npos);
}

TEST(TierctlCli, UnreadableRootIsOneClearError) {
  auto result = tierctl({"topology", "--sysfs-root", "/nonexistent/sysfs"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_TRUE(result.out.empty());
  EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
  EXPECT_NE(result.err.find("/nonexistent/sysfs"), std::string::npos);
}

TEST(TierctlCli, RootWithoutNodeInformationIsAClearError) {
  auto result = tierctl({"topology", "--sysfs-root", "/usr"});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find("devices/system/node"), std::string::npos) << result.err;
}

TEST(TierctlCli, BadConfigNamesFileAndLine) {
  std::string path = "/tmp/tierd-cli-test.toml";
  std::ofstream(path) << "[topology]\nsame_tier_tolerance = 0.1\nbogus = 1\n";
  auto result = tierctl({"topology", "--config", path});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_NE(result.err.find(path + ":3"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("topology.bogus"), std::string::npos) << result.err;
  std::filesystem::remove(path);
}

TEST(TierctlCli, LiveHostShowsAtLeastOneDramTier) {
  auto result = tierctl({"topology", "-j", "--config", "/dev/null"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  auto json = nlohmann::json::parse(result.out);
  ASSERT_FALSE(json["initiators"].empty());
  EXPECT_EQ(json["initiators"][0]["tiers"][0]["kind"], "dram");
}

TEST(TierctlCli, GatherThenReadBackGivesTheSameTopology) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "tierd-gather-test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto gathered = tierctl({"gather", (dir / "host.tar").string()});
  ASSERT_EQ(gathered.exit_code, 0) << gathered.err;
  auto untar = runCommand({"/bin/tar", "-xf", (dir / "host.tar").string(), "-C", dir.string()});
  ASSERT_EQ(untar.exit_code, 0) << untar.err;
  auto live = tierctl({"topology", "-j", "--config", "/dev/null"});
  auto replay = tierctl({"topology", "-j", "--config", "/dev/null", "--sysfs-root", dir.string()});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  auto live_json = nlohmann::json::parse(live.out);
  auto replay_json = nlohmann::json::parse(replay.out);
  // Free memory moves between the two runs; everything else must match.
  for (auto* json : {&live_json, &replay_json})
    for (auto& node : (*json)["nodes"])
      node.erase("free");
  EXPECT_EQ(live_json, replay_json) << nlohmann::json::diff(live_json, replay_json).dump(2);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace tier::test
