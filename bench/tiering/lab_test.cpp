// In the lab guest: tiering_load's per-second read-back against a move the
// test makes itself. The table starts on the far node (share 0); the test
// moves the whole process to the fast node with migrate_pages(2) mid-run;
// the JSON lines must parse, every share lie in [0, 1], and the share reach
// the oracle with the moves counted and no round trips.
#include <numa.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

int firstNode(bool with_cpus) {
  for (int node = 0; node <= numa_max_node(); ++node) {
    if (numa_node_size64(node, nullptr) <= 0) continue;
    bitmask* cpus = numa_allocate_cpumask();
    bool has_cpus = numa_node_to_cpus(node, cpus) == 0 && numa_bitmask_weight(cpus) > 0;
    numa_free_cpumask(cpus);
    if (has_cpus == with_cpus) return node;
  }
  return -1;
}

struct Lines {
  json config, summary;
  std::vector<json> samples;
};

Lines readLines(const fs::path& path) {
  Lines lines;
  std::ifstream in(path);
  std::string text;
  while (std::getline(in, text)) {
    json record = json::parse(text);  // throws, and fails the test, on a malformed line
    if (record.contains("config"))
      lines.config = record["config"];
    else if (record.contains("summary"))
      lines.summary = record["summary"];
    else
      lines.samples.push_back(record);
  }
  return lines;
}

TEST(TieringLoad, ReadsBackAMoveItDidNotMake) {
  if (numa_available() != 0 || firstNode(false) < 0) GTEST_SKIP() << "needs the lab's far node";
  int fast = firstNode(true), far = firstNode(false);
  fs::path dir = fs::temp_directory_path() / ("tiering_lab_" + std::to_string(getpid()));
  fs::create_directories(dir);
  fs::path samples = dir / "samples.jsonl", ready = dir / "ready";

  std::string far_text = std::to_string(far);
  std::vector<std::string> args = {
      TIERING_LOAD_PATH, "--pattern", "zipf",   "--table-mib",    "64",      "--seconds",   "12",
      "--far-node",      far_text,    "--json", samples.string(), "--ready", ready.string()};
  std::vector<char*> argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  pid_t child = 0;
  ASSERT_EQ(posix_spawn(&child, argv[0], nullptr, nullptr, argv.data(), environ), 0);

  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(ready) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(ready)) << "the workload never finished its table";
  std::this_thread::sleep_for(std::chrono::seconds(4));
  bitmask* from = numa_allocate_nodemask();
  bitmask* to = numa_allocate_nodemask();
  numa_bitmask_setbit(from, static_cast<unsigned>(far));
  numa_bitmask_setbit(to, static_cast<unsigned>(fast));
  EXPECT_GE(numa_migrate_pages(child, from, to), 0);
  numa_free_nodemask(from);
  numa_free_nodemask(to);

  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);

  Lines lines = readLines(samples);
  ASSERT_FALSE(lines.config.is_null());
  ASSERT_FALSE(lines.summary.is_null());
  EXPECT_EQ(lines.config["table_pages"], 64 * 256);
  // The fast node has far more room than 64 MiB: the oracle is all the mass.
  EXPECT_NEAR(lines.config["oracle"].get<double>(), 1.0, 1e-3);
  ASSERT_GE(lines.samples.size(), 10u);
  for (const json& s : lines.samples) {
    double share = s["share"];
    EXPECT_GE(share, 0.0);
    EXPECT_LE(share, 1.0 + 1e-9);
    EXPECT_NEAR(s["ratio"].get<double>(), share / s["oracle"].get<double>(), 1e-3);
  }
  EXPECT_EQ(lines.samples.front()["share"], 0.0) << "first touch was on the far node";
  EXPECT_GT(lines.samples.back()["share"].get<double>(), 0.99);
  EXPECT_GT(lines.samples.back()["pages_fast"].get<int>(), 64 * 256 * 99 / 100);
  EXPECT_GE(lines.summary["moves"].get<int>(), 64 * 256 * 99 / 100);
  EXPECT_EQ(lines.summary["round_trips"], 0);
  EXPECT_FALSE(lines.summary["seconds_to_90"].is_null());
  EXPECT_GE(lines.summary["seconds_to_90"].get<double>(), 3.0)
      << "nothing moved before the test did";
  fs::remove_all(dir);
}

}  // namespace
