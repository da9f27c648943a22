// The built tierctl against a test server: text and JSON output, exit codes.
#include <gtest/gtest.h>

#include <algorithm>

#include "control/server.h"
#include "fake_handler.h"
#include "golden/run_command.h"
#include "unit/temp_tree.h"

namespace tierd::control {
namespace {

using test::FakeHandler;

std::string procStatus(uid_t uid) {
  return "Name:\tworker\nUid:\t" + std::to_string(uid) + "\t" + std::to_string(uid) + "\t0\t0\n" +
         "CapEff:\t0000000000000000\n";
}

class Tierctl : public testing::Test {
 protected:
  void SetUp() override {
    // A fixture /proc holding the targets the tests name; tests run as root
    // (privileged) or else as a user who owns them.
    procs_.file("1234/status", procStatus(::geteuid()));
    procs_.file("4321/status", procStatus(::geteuid()));
    auto proc = tier::FsRoot::open(procs_.root().string());
    ASSERT_TRUE(proc.has_value());
    proc_.emplace(std::move(*proc));
    socket_ = (run_.root() / "tierd.sock").string();
    auto server = Server::start(socket_, handler_, *proc_, {});
    ASSERT_TRUE(server.has_value()) << server.error().message();
    server_ = std::move(*server);
  }

  tier::test::CommandResult tierctl(std::vector<std::string> args) {
    args.insert(args.begin(), {TIERCTL_PATH, "--socket", socket_});
    return tier::test::runCommand(args);
  }

  static void expectOneErrorLine(const tier::test::CommandResult& result, const std::string& text) {
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_TRUE(result.out.empty()) << result.out;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_EQ(result.err, "tierctl: " + text + "\n");
  }

  tier::test::TempTree procs_, run_;
  std::optional<tier::FsRoot> proc_;
  std::string socket_;
  FakeHandler handler_;
  std::unique_ptr<Server> server_;
};

TEST_F(Tierctl, StatusText) {
  auto result = tierctl({"status"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "tierd 0.1.0: up 1h 02m 05s, mode coexist\n"
            "managed processes: 2\n"
            "migrated: 2048 pages (8.00 MiB)\n"
            "failed: 4 (EBUSY 3, ENOMEM 1)\n"
            "other managers: numa_balancing 1\n");
  EXPECT_TRUE(result.err.empty());
}

TEST_F(Tierctl, StatusJsonIsTheResult) {
  auto result = tierctl({"status", "-j"});
  EXPECT_EQ(result.exit_code, 0);
  EXPECT_EQ(Json::parse(result.out), test::cannedStatus());
}

TEST_F(Tierctl, SocketOptionMayComeAfterTheVerb) {
  auto result = tier::test::runCommand({TIERCTL_PATH, "status", "--socket", socket_, "-j"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(Json::parse(result.out), test::cannedStatus());
}

TEST_F(Tierctl, PsIsANumastatTable) {
  auto result = tierctl({"ps"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "Per-node process memory usage (in MBs)\n"
            "PID                  Workload          Node 0          Node 1          Node 2"
            "           Total\n"
            "-------------------  -------- --------------- --------------- ---------------"
            " ---------------\n"
            "1234 (python3)       vllm             1024.00          512.00            0.00"
            "         1536.00\n"
            "4321 (llama-server)  llama             100.00            0.00           50.00"
            "          150.00\n"
            "-------------------  -------- --------------- --------------- ---------------"
            " ---------------\n"
            "Total                                 1124.00          512.00           50.00"
            "         1686.00\n");
  ASSERT_EQ(handler_.calls().size(), 1u);
  EXPECT_EQ(handler_.calls()[0].request, Json::object());
}

TEST_F(Tierctl, PsOfOneProcessAsJson) {
  auto result = tierctl({"ps", "--pid", "1234", "-j"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(Json::parse(result.out), test::cannedPs());
  ASSERT_EQ(handler_.calls().size(), 1u);
  EXPECT_EQ(handler_.calls()[0].request, (Json{{"pid", 1234}}));
}

TEST_F(Tierctl, MigrateText) {
  auto result = tierctl({"migrate", "--pid", "1234", "--range", "0x1000-0x3000", "--to-node", "1"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out,
            "migrated 0x1000-0x3000 of process 1234 to node 1: 2560 of 4096 pages moved "
            "(10.00 MiB) in 0.42 s\n"
            "  already there: 1200 pages\n"
            "  failed: 336 pages (EBUSY 300, ENOMEM 36)\n"
            "  now on node 1: 3760 of 4096 present pages (91.8%)\n");
  ASSERT_EQ(handler_.calls().size(), 1u);
  EXPECT_EQ(handler_.calls()[0].request,
            (Json{{"pid", 1234}, {"range", {0x1000, 0x3000}}, {"to_node", 1}}));
}

TEST_F(Tierctl, MigrateToATierWithDecimalRangeAsJson) {
  auto result =
      tierctl({"migrate", "--pid", "1234", "--range", "4096-8192", "--to-tier", "2", "-j"});
  EXPECT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(Json::parse(result.out)["pages_moved"], 2560);
  ASSERT_EQ(handler_.calls().size(), 1u);
  EXPECT_EQ(handler_.calls()[0].request,
            (Json{{"pid", 1234}, {"range", {4096, 8192}}, {"to_tier", 2}}));
}

TEST_F(Tierctl, PinAndUnpin) {
  auto pin =
      tierctl({"pin", "--pid", "1234", "--range", "0x7f0000000000-0x7f0000200000", "--tier", "0"});
  EXPECT_EQ(pin.exit_code, 0) << pin.err;
  EXPECT_EQ(pin.out, "pinned 0x7f0000000000-0x7f0000200000 of process 1234 to tier 0\n");
  auto unpin = tierctl({"unpin", "--pid", "1234", "--range", "0x7f0000000000-0x7f0000200000"});
  EXPECT_EQ(unpin.exit_code, 0) << unpin.err;
  EXPECT_EQ(unpin.out, "unpinned 0x7f0000000000-0x7f0000200000 of process 1234\n");
  auto calls = handler_.calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].request,
            (Json{{"pid", 1234}, {"range", {0x7f0000000000, 0x7f0000200000}}, {"tier", 0}}));
  EXPECT_EQ(calls[1].what, "unpin");
}

TEST_F(Tierctl, ConfigShowAndReload) {
  auto show = tierctl({"config", "show"});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(Json::parse(show.out), (Json{{"interval_ms", 1000}, {"mode", "coexist"}}));
  auto reload = tierctl({"config", "reload"});
  EXPECT_EQ(reload.exit_code, 0) << reload.err;
  EXPECT_EQ(reload.out, "tierd reloaded its configuration\n");
  ASSERT_EQ(handler_.calls().size(), 2u);
  EXPECT_EQ(handler_.calls()[1].what, "config-reload");
}

TEST_F(Tierctl, ErrorRepliesAreOneLineAndExit1) {
  expectOneErrorLine(tierctl({"migrate", "--pid", "4321", "--to-node", "1"}),
                     "process 4321 is being migrated already: Device or resource busy");
  expectOneErrorLine(tierctl({"migrate", "--pid", "999", "--to-node", "1"}),
                     "process 999 does not exist: No such process");
}

TEST_F(Tierctl, MissingAgentIsOneClearLine) {
  auto result = tier::test::runCommand(
      {TIERCTL_PATH, "--socket", (run_.root() / "none.sock").string(), "status"});
  expectOneErrorLine(result, "cannot reach tierd at " + (run_.root() / "none.sock").string() +
                                 ": No such file or directory (is tierd running?)");
}

TEST_F(Tierctl, BadArgumentsAreUsageErrors) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"migrate", "--pid", "1234"},                                      // no target
           {"migrate", "--pid", "1234", "--to-node", "1", "--to-tier", "1"},  // two targets
           {"migrate", "--to-node", "1"},                                     // no pid
           {"migrate", "--pid", "0", "--to-node", "1"},                       // pid out of range
           {"pin", "--pid", "1234", "--range", "0x2000-0x1000", "--tier", "1"},
           {"pin", "--pid", "1234", "--range", "12", "--tier", "1"},
           {"pin", "--pid", "1234", "--range", "0xzz-0x10", "--tier", "1"},
           {"unpin", "--pid", "1234"},  // no range
           {"config"},                  // no sub-verb
       }) {
    auto result = tierctl(args);
    EXPECT_EQ(result.exit_code, 2) << args[0] << " " << result.err;
    EXPECT_TRUE(result.out.empty());
  }
  auto bad_range = tierctl({"pin", "--pid", "1234", "--range", "0x2000-0x1000", "--tier", "1"});
  EXPECT_NE(bad_range.err.find("START must be below END"), std::string::npos) << bad_range.err;
  EXPECT_TRUE(handler_.calls().empty());
}

}  // namespace
}  // namespace tierd::control
