// The shim as a program sees it: shim_probe run under LD_PRELOAD with
// LIBTIER_* settings, its JSON report and its stderr checked. TIER_PRELOAD_LIB
// names the library (the real one, or the shim over the stand-in engine,
// which has two fake tiers so placement can be checked on any host).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "run_program.h"

namespace {

using nlohmann::json;
using tier::test::Ran;
using tier::test::runProgram;

std::string library() {
  const char* path = std::getenv("TIER_PRELOAD_LIB");
  return path ? path : "";
}

Ran probe(std::vector<std::string> args, std::vector<std::string> env) {
  args.insert(args.begin(), SHIM_PROBE_PATH);
  env.push_back("LD_PRELOAD=" + library());
  return runProgram(args, env);
}

json report(const Ran& ran) {
  EXPECT_EQ(ran.status, 0) << ran.err;
  return json::parse(ran.out, nullptr, false);
}

std::vector<int> tiersOf(const json& placed) {
  std::vector<int> tiers;
  for (const json& block : placed["blocks"])
    tiers.push_back(block["tier"].get<int>());
  return tiers;
}

int lineCount(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

class Shim : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(library().empty()) << "TIER_PRELOAD_LIB is not set";
    json idle = report(probe({"place", "16"}, {}));
    ASSERT_TRUE(idle.is_object());
    tiers_ = idle["tiers"].get<int>();
    ASSERT_GE(tiers_, 1) << "the probe does not see libtier: LD_PRELOAD did not take";
  }
  int tiers_ = 0;
};

TEST_F(Shim, DefaultPlacementIsTheFastTierAndSilent) {
  Ran ran = probe({"place", "100", "5000", "3000000"}, {});
  EXPECT_EQ(tiersOf(report(ran)), (std::vector<int>{0, 0, 0}));
  EXPECT_EQ(ran.err, "");
}

TEST_F(Shim, ThresholdSendsLargeBlocksFar) {
  if (tiers_ < 2) GTEST_SKIP() << "one tier on this host";
  Ran ran = probe({"place", "1000", "1048575", "1048576", "5000000"}, {"LIBTIER_THRESHOLD=1M"});
  EXPECT_EQ(tiersOf(report(ran)), (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(ran.err, "");
}

TEST_F(Shim, TierDefaultInTheApiFollowsThePolicy) {
  if (tiers_ < 2) GTEST_SKIP() << "one tier on this host";
  Ran ran = probe({"api", "1000", "2000000"}, {"LIBTIER_THRESHOLD=1M"});
  EXPECT_EQ(tiersOf(report(ran)), (std::vector<int>{0, 1}));
}

TEST_F(Shim, RulesPlaceBySizeRange) {
  if (tiers_ < 2) GTEST_SKIP() << "one tier on this host";
  Ran ran = probe({"place", "100", "4095", "4096", "1000000", "2000000"},
                  {"LIBTIER_RULES=0-4K:far; 4K-1M:fast ;1M-:far"});
  EXPECT_EQ(tiersOf(report(ran)), (std::vector<int>{1, 1, 0, 0, 1}));
  EXPECT_EQ(ran.err, "");
}

TEST_F(Shim, RatioHoldsWithinTwoPercent) {
  if (tiers_ < 2) GTEST_SKIP() << "one tier on this host";
  Ran ran = probe({"ratio", std::to_string(256 << 20), std::to_string(64 << 20)},
                  {"LIBTIER_RATIO=fast:1,far:3"});
  json result = report(ran);
  ASSERT_TRUE(result.is_object()) << ran.out;
  EXPECT_EQ(result["foreign"].get<int>(), 0) << "blocks not from libtier";
  double fast = result["live"][0].get<double>();
  double below = 0;
  for (size_t i = 1; i < result["live"].size(); ++i)
    below += result["live"][i].get<double>();
  EXPECT_NEAR(below / (fast + below), 0.75, 0.02) << ran.out;
}

TEST_F(Shim, ConfigFileWithVariablesOverIt) {
  if (tiers_ < 2) GTEST_SKIP() << "one tier on this host";
  std::string path = ::testing::TempDir() + "/libtier-shim-test.conf";
  std::ofstream(path) << "# placement for the test\n"
                         "threshold = 64K\n"
                         "  RULES = 0-1K:far   # small ones far\n\n";
  Ran ran = probe({"place", "100", "100000", "2000000"},
                  {"LIBTIER_CONFIG=" + path, "LIBTIER_THRESHOLD=1M"});
  EXPECT_EQ(tiersOf(report(ran)), (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(ran.err, "");
}

// Each bad setting: one line on stderr naming the variable and the value,
// the program runs, and placement is the default (everything fast).
TEST_F(Shim, BadValuesPrintOneLineAndFallBackToDefaultPlacement) {
  std::string bad_config = ::testing::TempDir() + "/libtier-shim-bad.conf";
  std::ofstream(bad_config) << "ratio = fast:1,far:3\nthreshold = 1M\nratoi = fast:2\n";
  struct Case {
    std::vector<std::string> env;
    std::vector<std::string> message_has;
  };
  const Case cases[] = {
      {{"LIBTIER_RATIO=fast:1,far:x"}, {"LIBTIER_RATIO", "fast:1,far:x", "weight"}},
      {{"LIBTIER_RATIO=fast:1,slow:3"}, {"LIBTIER_RATIO", "slow"}},
      {{"LIBTIER_RATIO=fast:0,far:0"}, {"LIBTIER_RATIO", "every weight is 0"}},
      {{"LIBTIER_THRESHOLD=12Q"}, {"LIBTIER_THRESHOLD", "12Q", "unit"}},
      {{"LIBTIER_THRESHOLD=-5"}, {"LIBTIER_THRESHOLD", "-5"}},
      {{"LIBTIER_RULES=0-4K:fast;2K-:far"}, {"LIBTIER_RULES", "2K-:far", "overlaps"}},
      {{"LIBTIER_RULES=4K:far"}, {"LIBTIER_RULES", "LOW-HIGH:TARGET"}},
      {{"LIBTIER_RULES=1M-4K:far"}, {"LIBTIER_RULES", "empty"}},
      {{"LIBTIER_RULES=0-:ratio"}, {"LIBTIER_RATIO is not set"}},
      {{"LIBTIER_DEBUG=2"}, {"LIBTIER_DEBUG", "\"2\""}},
      {{"LIBTIER_AGENT=maybe"}, {"LIBTIER_AGENT", "maybe"}},
      {{"LIBTIER_TIERS=0;;1"}, {"LIBTIER_TIERS", "0;;1", "separated by ';'"}},
      {{"LIBTIER_TIERS=fast"}, {"LIBTIER_TIERS", "\"fast\""}},
      {{"LIBTIER_CONFIG=/nonexistent/tier.conf"}, {"LIBTIER_CONFIG", "/nonexistent/tier.conf"}},
      {{"LIBTIER_CONFIG=" + bad_config, "LIBTIER_RATIO=fast:1,far:1"},
       {bad_config + ":3", "ratoi"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.env.back());
    Ran ran = probe({"place", "100", "2000000"}, c.env);
    EXPECT_EQ(ran.status, 0);
    EXPECT_EQ(lineCount(ran.err), 1) << ran.err;
    EXPECT_TRUE(ran.err.starts_with("libtier-preload: ")) << ran.err;
    EXPECT_NE(ran.err.find("running with default placement"), std::string::npos) << ran.err;
    for (const std::string& part : c.message_has)
      EXPECT_NE(ran.err.find(part), std::string::npos) << "\"" << part << "\" in " << ran.err;
    EXPECT_EQ(tiersOf(report(ran)), (std::vector<int>{0, 0}));
  }
}

TEST_F(Shim, DebugPrintsOneSummaryLineAtExit) {
  Ran ran = probe({"place", "100", "2000000"}, {"LIBTIER_DEBUG=1", "LIBTIER_THRESHOLD=1M"});
  EXPECT_EQ(ran.status, 0);
  EXPECT_EQ(lineCount(ran.err), 1) << ran.err;
  EXPECT_TRUE(ran.err.starts_with("libtier-preload: pid ")) << ran.err;
  EXPECT_NE(ran.err.find("threshold 1048576"), std::string::npos) << ran.err;
  EXPECT_NE(ran.err.find("tier 0: "), std::string::npos) << ran.err;
}

// The libmemtier bug: tiers torn down at exit while stdio's buffer lives in
// them. Every block far (the buffer included), then 8 MiB through a pipe.
TEST_F(Shim, BufferedStdoutSurvivesExit) {
  constexpr size_t kBytes = 8 << 20;
  Ran ran = probe({"flood", std::to_string(kBytes)}, {"LIBTIER_RULES=0-:far"});
  ASSERT_EQ(ran.status, 0) << ran.err;
  ASSERT_EQ(ran.out.size(), kBytes);
  for (size_t i = 0; i * 64 < kBytes; i += 997) {
    char expected[65];
    std::snprintf(expected, sizeof expected, "%012zu %050zu\n", i, i * 7);
    ASSERT_EQ(ran.out.compare(i * 64, 64, expected), 0) << "line " << i;
  }
  EXPECT_EQ(ran.out.substr(kBytes - 64, 13), "000000131071 ");
}

// A listening socket in a temporary directory stands in for tierd.
class FakeAgent {
 public:
  FakeAgent() {
    path_ = ::testing::TempDir() + "/tierd-fake-" + std::to_string(getpid()) + ".sock";
    unlink(path_.c_str());
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path_.c_str());
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
             listen(fd_, 4) == 0;
  }
  ~FakeAgent() {
    close(fd_);
    unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  const std::string& path() const { return path_; }

  // The first request line, answered as tierd answers an unknown request.
  std::string serveOne() {
    pollfd ready{fd_, POLLIN, 0};
    if (poll(&ready, 1, 60000) != 1) return "";  // no client at all: the test fails, never hangs
    int client = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    std::string line;
    char c;
    while (read(client, &c, 1) == 1 && c != '\n')
      line += c;
    std::string reply =
        "{\"ok\":false,\"error\":{\"code\":\"EINVAL\",\"errno\":22,\"message\":\"unknown "
        "request\"}}\n";
    (void)!send(client, reply.data(), reply.size(), MSG_NOSIGNAL);  // the shim may be gone
    close(client);
    return line;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST_F(Shim, RegistersItsPolicyAndTiersWithTheAgent) {
  FakeAgent agent;
  ASSERT_TRUE(agent.bound());
  std::string line;
  std::thread server([&] { line = agent.serveOne(); });
  Ran ran = probe({"idle"}, {"LIBTIER_AGENT=1", "LIBTIER_TIERD_SOCKET=" + agent.path(),
                             "LIBTIER_RATIO=fast:1,far:3", "LIBTIER_RULES=0-64:fast"});
  server.join();
  EXPECT_EQ(ran.status, 0);
  EXPECT_EQ(ran.err, "");
  json request = json::parse(line, nullptr, false);
  ASSERT_TRUE(request.is_object()) << line;
  EXPECT_EQ(request["version"], 1);
  EXPECT_EQ(request["request"], "register");
  EXPECT_GT(request["pid"].get<int>(), 0);
  EXPECT_EQ(request["program"], "shim_probe");
  EXPECT_EQ(request["policy"]["ratio"],
            json::parse(R"([{"tier":"fast","weight":1},{"tier":"far","weight":3}])"));
  EXPECT_EQ(request["policy"]["threshold"], nullptr);
  EXPECT_EQ(request["policy"]["rules"], json::parse(R"([{"low":0,"high":64,"target":"fast"}])"));
  ASSERT_EQ(request["tiers"].size(), static_cast<size_t>(tiers_));
  EXPECT_EQ(request["tiers"][0]["rank"], 0);
  EXPECT_FALSE(request["tiers"][0]["nodes"].empty());
}

TEST_F(Shim, AgentAbsentIsOneLineWhenAskedForAndSilentOtherwise) {
  std::string nowhere = ::testing::TempDir() + "/no-such-tierd.sock";
  Ran asked = probe({"idle"}, {"LIBTIER_AGENT=1", "LIBTIER_TIERD_SOCKET=" + nowhere});
  EXPECT_EQ(asked.status, 0);
  EXPECT_EQ(lineCount(asked.err), 1) << asked.err;
  EXPECT_NE(asked.err.find(nowhere), std::string::npos) << asked.err;
  Ran automatic = probe({"idle"}, {"LIBTIER_TIERD_SOCKET=" + nowhere});
  EXPECT_EQ(automatic.status, 0);
  EXPECT_EQ(automatic.err, "");
}

// An engine that cannot reserve its ranges (here: an address-space limit)
// leaves glibc serving; with a policy set, one line says so.
TEST_F(Shim, GlibcServesWhenTheEngineCannotStart) {
  Ran ran = runProgram(
      {"/bin/sh", "-c", "ulimit -v 200000 && exec \"$0\" place 100 5000000", SHIM_PROBE_PATH},
      {"LD_PRELOAD=" + library(), "LIBTIER_THRESHOLD=1M"});
  json result = report(ran);
  if (result["tiers"].get<int>() > 0) GTEST_SKIP() << "this engine started in 200 MB";
  EXPECT_EQ(tiersOf(result), (std::vector<int>{-1, -1}));
  EXPECT_EQ(lineCount(ran.err), 1) << ran.err;
  EXPECT_NE(ran.err.find("engine did not start"), std::string::npos) << ran.err;
}

// grep needs malloc(0) to be non-NULL (libmemtier: "grep: memory exhausted").
TEST_F(Shim, GrepAndSortRun) {
  Ran ran = runProgram({"/bin/sh", "-c",
                        "printf 'b\\na\\n\\nc\\n' | grep -c '' && "
                        "printf 'b\\na\\nc\\n' | sort | tr -d '\\n'"},
                       {"LD_PRELOAD=" + library(), "LIBTIER_RATIO=fast:1,far:1"});
  EXPECT_EQ(ran.status, 0) << ran.err;
  EXPECT_EQ(ran.out, "4\nabc");
  EXPECT_EQ(ran.err, "");
}

}  // namespace
