// [[workloads]] rules: parsing (every error names file:line and the key),
// and matching a rule against a process.
#include "workloads/rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace tierd::workloads {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

tier::Result<std::vector<WorkloadRule>> parse(std::string_view text) {
  toml::table root = toml::parse(text, std::string_view("tierd.toml"));
  return parseWorkloadRules(root, "tierd.toml");
}

// The one error of `text`, which must fail.
std::string errorOf(std::string_view text) {
  auto rules = parse(text);
  if (rules) return "(no error)";
  EXPECT_EQ(rules.error().errnum, EINVAL);
  return rules.error().context;
}

WorkloadRule ruleOf(std::string_view text) {
  auto rules = parse(text);
  EXPECT_TRUE(rules) << rules.error().message();
  EXPECT_EQ(rules->size(), 1u);
  return rules->front();
}

TEST(ParseWorkloadRules, ReadsEverySelector) {
  auto rules = parse(R"(
[topology]
same_tier_tolerance = 0.1

[[workloads]]
name = "inference"
cgroup = "/system.slice/inference.service/"
comm = "python3?"
exe = "/opt/llm/bin/.*"

[[workloads]]
name = "pinned"
pids = [5678, 1234]
)");
  ASSERT_TRUE(rules) << rules.error().message();
  ASSERT_EQ(rules->size(), 2u);
  const auto& first = (*rules)[0];
  EXPECT_EQ(first.name, "inference");
  EXPECT_EQ(first.cgroup, "/system.slice/inference.service");  // trailing '/' dropped
  ASSERT_TRUE(first.comm);
  EXPECT_EQ(first.comm->text, "python3?");
  ASSERT_TRUE(first.exe);
  EXPECT_EQ(first.exe->text, "/opt/llm/bin/.*");
  EXPECT_THAT(first.pids, IsEmpty());
  EXPECT_EQ(first.line, 5);
  const auto& second = (*rules)[1];
  EXPECT_EQ(second.name, "pinned");
  EXPECT_THAT(second.pids, ElementsAre(1234, 5678));
  EXPECT_FALSE(second.cgroup || second.comm || second.exe);
  EXPECT_EQ(second.line, 11);
}

TEST(ParseWorkloadRules, NoWorkloadsMeansNoRules) {
  auto rules = parse("[topology]\n");
  ASSERT_TRUE(rules) << rules.error().message();
  EXPECT_THAT(*rules, IsEmpty());
}

TEST(ParseWorkloadRules, InlineTablesWorkToo) {
  auto rules =
      parse("workloads = [{ name = \"a\", comm = \"x\" }, { name = \"b\", pids = [1] }]\n");
  ASSERT_TRUE(rules) << rules.error().message();
  EXPECT_EQ(rules->size(), 2u);
}

TEST(ParseWorkloadRules, TheRootCgroupIsAllowed) {
  EXPECT_EQ(ruleOf("[[workloads]]\nname = \"all\"\ncgroup = \"/\"\n").cgroup, "/");
}

TEST(ParseWorkloadRules, ErrorsNameFileLineAndKey) {
  struct Case {
    std::string text, expected;
  };
  std::vector<Case> cases = {
      {"[[workloads]]\nname = \"a\"\ncomm = \"python(\"\n",
       "tierd.toml:3: workloads[0].comm: bad regex 'python(': "},
      {"[[workloads]]\nname = \"a\"\nexe = \"[a-\"\n",
       "tierd.toml:3: workloads[0].exe: bad regex '[a-'"},
      {"[[workloads]]\nname = \"a\"\ncomm = \"\"\n",
       "tierd.toml:3: workloads[0].comm: empty regex"},
      {"[[workloads]]\nname = \"a\"\ncomm = 3\n",
       "tierd.toml:3: workloads[0].comm: must be a string (a regex)"},
      {"[[workloads]]\nname = \"a\"\ncomm = \"x\"\npid = [1]\n",
       "tierd.toml:4: workloads[0].pid: unknown key (known: name, cgroup, pids, comm, exe)"},
      {"[[workloads]]\nname = 7\ncomm = \"x\"\n",
       "tierd.toml:2: workloads[0].name: must be a string"},
      {"[[workloads]]\nname = \"\"\ncomm = \"x\"\n",
       "tierd.toml:2: workloads[0].name: must not be empty"},
      {"\n[[workloads]]\ncomm = \"x\"\n", "tierd.toml:2: workloads[0].name: required"},
      {"[[workloads]]\nname = \"a\"\ncomm = \"x\"\n\n[[workloads]]\nname = \"b\"\n",
       "tierd.toml:5: workloads[1]: rule 'b' has no selector: give cgroup, pids, comm or exe"},
      {"[[workloads]]\nname = \"a\"\ncomm = \"x\"\n[[workloads]]\nname = \"a\"\npids = [3]\n",
       "tierd.toml:5: workloads[1].name: duplicate name 'a' (also workloads[0], line 1)"},
      {"[[workloads]]\nname = \"a\"\npids = 12\n",
       "tierd.toml:3: workloads[0].pids: must be an array of process ids"},
      {"[[workloads]]\nname = \"a\"\npids = []\n",
       "tierd.toml:3: workloads[0].pids: must not be empty"},
      {"[[workloads]]\nname = \"a\"\npids = [1,\n  0]\n",
       "tierd.toml:4: workloads[0].pids[1]: must be a process id from 1 to 4194304"},
      {"[[workloads]]\nname = \"a\"\npids = [\"12\"]\n",
       "tierd.toml:3: workloads[0].pids[0]: must be a process id"},
      {"[[workloads]]\nname = \"a\"\npids = [12, 12]\n",
       "tierd.toml:3: workloads[0].pids[1]: pid 12 is listed twice"},
      {"[[workloads]]\nname = \"a\"\npids = [4194305]\n", "tierd.toml:3: workloads[0].pids[0]"},
      {"[[workloads]]\nname = \"a\"\ncgroup = \"system.slice\"\n",
       "tierd.toml:3: workloads[0].cgroup: must be an absolute cgroup v2 path like "
       "\"/system.slice/inference.service\""},
      {"[[workloads]]\nname = \"a\"\ncgroup = \"/a/../b\"\n",
       "tierd.toml:3: workloads[0].cgroup: '/a/../b' has an empty, '.' or '..' component"},
      {"[[workloads]]\nname = \"a\"\ncgroup = \"/a//b\"\n",
       "workloads[0].cgroup: '/a//b' has an empty"},
      {"[[workloads]]\nname = \"a\"\ncgroup = [\"/a\"]\n",
       "tierd.toml:3: workloads[0].cgroup: must be a string (a cgroup v2 path)"},
      {"[workloads]\nname = \"a\"\n",
       "tierd.toml:1: workloads: must be an array of tables: write [[workloads]]"},
      {"workloads = [1]\n", "tierd.toml:1: workloads[0]: must be a table"},
  };
  for (const auto& c : cases)
    EXPECT_THAT(errorOf(c.text), HasSubstr(c.expected)) << c.text;
}

TEST(ParseWorkloadRules, TheFirstProblemInTheFileIsReported) {
  // toml++ keeps keys sorted ("comm" < "zzz"); the error follows the file.
  EXPECT_THAT(errorOf("[[workloads]]\nname = \"a\"\nzzz = 1\ncomm = \"(\"\n"),
              HasSubstr("tierd.toml:3: workloads[0].zzz: unknown key"));
}

ProcessInfo process(std::string comm, std::string exe, std::string cgroup, pid_t pid = 4242) {
  ProcessInfo info;
  info.key = {pid, 1000};
  info.comm = std::move(comm);
  info.exe = std::move(exe);
  info.cgroup = std::move(cgroup);
  info.cmdline = {info.comm};
  return info;
}

TEST(Matches, CommIsAFullMatch) {
  auto rule = ruleOf("[[workloads]]\nname = \"py\"\ncomm = \"python\"\n");
  EXPECT_TRUE(matches(rule, process("python", "/usr/bin/python", "/")));
  EXPECT_FALSE(matches(rule, process("python3", "/usr/bin/python3", "/")));
  EXPECT_FALSE(matches(rule, process("cpython", "/usr/bin/cpython", "/")));
  auto open = ruleOf("[[workloads]]\nname = \"py\"\ncomm = \"python.*\"\n");
  EXPECT_TRUE(matches(open, process("python3.11", "/usr/bin/python3.11", "/")));
}

TEST(Matches, ExeIsAFullMatchOnThePath) {
  auto rule = ruleOf("[[workloads]]\nname = \"llm\"\nexe = \"/opt/llm/bin/[^/]+\"\n");
  EXPECT_TRUE(matches(rule, process("server", "/opt/llm/bin/server", "/")));
  EXPECT_FALSE(matches(rule, process("server", "/opt/llm/bin/sub/server", "/")));
  EXPECT_FALSE(matches(rule, process("server", "/usr/opt/llm/bin/server", "/")));
  // An exe that could not be read matches no exe rule, even ".*".
  auto any = ruleOf("[[workloads]]\nname = \"any\"\nexe = \".*\"\n");
  EXPECT_FALSE(matches(any, process("server", "", "/")));
}

TEST(Matches, CgroupMatchesItselfAndItsDescendants) {
  auto rule =
      ruleOf("[[workloads]]\nname = \"svc\"\ncgroup = \"/system.slice/inference.service\"\n");
  EXPECT_TRUE(matches(rule, process("a", "/a", "/system.slice/inference.service")));
  EXPECT_TRUE(matches(rule, process("a", "/a", "/system.slice/inference.service/worker/0")));
  EXPECT_FALSE(matches(rule, process("a", "/a", "/system.slice/inference.service2")));
  EXPECT_FALSE(matches(rule, process("a", "/a", "/system.slice")));
  EXPECT_FALSE(matches(rule, process("a", "/a", "")));  // not in a v2 hierarchy
  auto root = ruleOf("[[workloads]]\nname = \"all\"\ncgroup = \"/\"\n");
  EXPECT_TRUE(matches(root, process("a", "/a", "/")));
  EXPECT_TRUE(matches(root, process("a", "/a", "/user.slice/x")));
}

TEST(Matches, SelectorsAreAnded) {
  auto rule = ruleOf(R"([[workloads]]
name = "both"
pids = [10, 20]
comm = "vllm"
cgroup = "/llm"
)");
  EXPECT_TRUE(matches(rule, process("vllm", "/x", "/llm", 10)));
  EXPECT_TRUE(matches(rule, process("vllm", "/x", "/llm/a", 20)));
  EXPECT_FALSE(matches(rule, process("vllm", "/x", "/llm", 30)));
  EXPECT_FALSE(matches(rule, process("vllm2", "/x", "/llm", 10)));
  EXPECT_FALSE(matches(rule, process("vllm", "/x", "/other", 10)));
}

TEST(Matches, KernelThreadsNeverMatch) {
  auto rule = ruleOf("[[workloads]]\nname = \"all\"\ncomm = \".*\"\n");
  auto kthread = process("kworker/0:1", "", "/");
  kthread.kernel_thread = true;
  kthread.cmdline.clear();
  EXPECT_FALSE(matches(rule, kthread));
}

TEST(CgroupContains, WholeComponentsOnly) {
  EXPECT_TRUE(cgroupContains("/a/b", "/a/b"));
  EXPECT_TRUE(cgroupContains("/a/b", "/a/b/c"));
  EXPECT_FALSE(cgroupContains("/a/b", "/a/bc"));
  EXPECT_FALSE(cgroupContains("/a/b", "/a"));
  EXPECT_TRUE(cgroupContains("/", "/a"));
  EXPECT_FALSE(cgroupContains("/", ""));
  EXPECT_FALSE(cgroupContains("", "/a"));
}

TEST(CompilePattern, LongExePathsMatchWithoutTrouble) {
  auto pattern = compilePattern("/opt/.*/server");
  ASSERT_TRUE(pattern) << pattern.error().message();
  std::string deep = "/opt";
  while (deep.size() < 4000)
    deep += "/dir";
  EXPECT_TRUE(pattern->fullMatch(deep + "/server"));
  EXPECT_FALSE(pattern->fullMatch(deep + "/client"));
}

}  // namespace
}  // namespace tierd::workloads
