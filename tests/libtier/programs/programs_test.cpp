// Real programs run under a preloaded allocator (the tierd shim by default):
// each test passes only when the program's own check passes AND the preload
// was really mapped into the program (read from /proc/<pid>/maps while the
// program waits on its stdin).
//
// The preload: $TIER_TEST_PRELOAD, else the one CMake configured (the shim's
// target, or TIERD_PROGRAMS_PRELOAD). Placement policy and other settings come
// from the environment (LIBTIER_*, or MEMKIND_* for libmemtier), passed on.
// In the lab with TIER_TEST_EXPECT_FAR=SHARE, python must have pages on the
// far node and the C++ program's large aligned blocks SHARE of theirs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "far_node.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string preloadPath() {
  const char* from_env = std::getenv("TIER_TEST_PRELOAD");
  std::string path = from_env != nullptr && *from_env != '\0' ? from_env : DEFAULT_PRELOAD;
  if (path.empty()) return path;
  std::error_code error;
  auto canonical = fs::canonical(path, error);  // /proc/<pid>/maps shows the resolved path
  return error ? path : canonical.string();
}

bool inLab() {
  return std::getenv("LAB_PRESET") != nullptr;
}

// TIER_TEST_EXPECT_FAR: the share of bytes the policy in the environment
// puts on the far tier (0.75 for LIBTIER_RATIO=fast:1,far:3); 0 when unset.
double expectedFarShare() {
  const char* text = std::getenv("TIER_TEST_EXPECT_FAR");
  return text != nullptr ? std::atof(text) : 0.0;
}

struct Outcome {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out, err;
  bool maps_checked = false;
  bool preload_mapped = false;
};

struct Spawn {
  std::vector<std::string> argv;
  std::string input;             // written to stdin, which is then closed
  std::vector<std::string> env;  // added (KEY=VALUE) after the preload
  std::string cwd;
  bool preload = true;     // false: a reference run with no preload
  bool check_maps = true;  // the program reads stdin before doing anything
};

std::string describe(const Spawn& spawn, const Outcome& outcome) {
  std::ostringstream text;
  text << "command:";
  for (const auto& arg : spawn.argv)
    text << " " << arg;
  text << "\nexit " << outcome.exit_code << " signal " << outcome.signal
       << (outcome.maps_checked ? "" : " (maps not checked)") << "\nstderr (end): "
       << outcome.err.substr(outcome.err.size() > 3000 ? outcome.err.size() - 3000 : 0)
       << "\nstdout (end): "
       << outcome.out.substr(outcome.out.size() > 2000 ? outcome.out.size() - 2000 : 0);
  return text.str();
}

std::vector<std::string> childEnvironment(const Spawn& spawn) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    if (std::strncmp(*entry, "LD_PRELOAD=", 11) != 0) env.emplace_back(*entry);
  }
  if (spawn.preload) env.push_back("LD_PRELOAD=" + preloadPath());
  env.insert(env.end(), spawn.env.begin(), spawn.env.end());
  return env;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Waits (the child is blocked reading stdin) until the dynamic loader has
// mapped libc, which it does only after every LD_PRELOAD object; then
// whether the preload is among the mappings.
void checkMaps(pid_t pid, Outcome& outcome) {
  auto deadline = Clock::now() + std::chrono::seconds(inLab() ? 300 : 60);
  std::string preload = preloadPath();
  while (Clock::now() < deadline) {
    std::string maps = readFile("/proc/" + std::to_string(pid) + "/maps");
    if (maps.find("/libc.so.6") != std::string::npos) {
      outcome.maps_checked = true;
      outcome.preload_mapped = maps.find(preload) != std::string::npos;
      return;
    }
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
        info.si_pid == pid) {
      return;  // ended before the check (and is left for waitpid to reap)
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Feeds stdin and drains stdout/stderr until both close, without deadlock.
void pump(int in_fd, int out_fd, int err_fd, const std::string& input, Outcome& outcome) {
  size_t written = 0;
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  std::string* sinks[] = {&outcome.out, &outcome.err};
  int fds[] = {out_fd, err_fd};
  while (fds[0] >= 0 || fds[1] >= 0) {
    pollfd polled[3] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}, {in_fd, POLLOUT, 0}};
    if (poll(polled, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (polled[i].revents == 0) continue;
      char buffer[65536];
      ssize_t got = read(fds[i], buffer, sizeof buffer);
      if (got > 0) {
        sinks[i]->append(buffer, static_cast<size_t>(got));
      } else if (got == 0 || errno != EAGAIN) {
        close(fds[i]);
        fds[i] = -1;
      }
    }
    if (in_fd >= 0 && polled[2].revents != 0) {
      ssize_t put = write(in_fd, input.data() + written, input.size() - written);
      if (put > 0) written += static_cast<size_t>(put);
      if (put < 0 && errno != EAGAIN) written = input.size();  // the program closed stdin
      if (written == input.size()) {
        close(in_fd);
        in_fd = -1;
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
}

Outcome run(const Spawn& spawn) {
  signal(SIGPIPE, SIG_IGN);  // a program may exit without reading all its input
  Outcome outcome;
  int in[2], out[2], err[2], exec_status[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
      pipe2(exec_status, O_CLOEXEC) != 0) {
    outcome.err = "pipe failed";
    return outcome;
  }
  std::vector<std::string> env = childEnvironment(spawn);
  std::vector<char*> envp, argv;
  for (auto& entry : env)
    envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spawn.argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (!spawn.cwd.empty() && chdir(spawn.cwd.c_str()) != 0) _exit(126);
    execvpe(argv[0], argv.data(), envp.data());
    int error = errno;
    (void)!write(exec_status[1], &error, sizeof error);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  close(exec_status[1]);
  int exec_error = 0;
  if (read(exec_status[0], &exec_error, sizeof exec_error) > 0) {
    outcome.err = "exec " + spawn.argv[0] + ": " + std::strerror(exec_error);
  }
  close(exec_status[0]);
  if (exec_error == 0 && spawn.check_maps) checkMaps(pid, outcome);
  pump(in[1], out[0], err[0], spawn.input, outcome);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
  return outcome;
}

// A run under the preload that must exit 0 with the preload mapped (when
// checked); returns its outcome for the caller's own checks.
Outcome runChecked(const Spawn& spawn) {
  Outcome outcome = run(spawn);
  EXPECT_EQ(outcome.exit_code, 0) << describe(spawn, outcome);
  if (spawn.preload && spawn.check_maps) {
    EXPECT_TRUE(outcome.maps_checked) << "could not read the maps in time\n"
                                      << describe(spawn, outcome);
    EXPECT_TRUE(outcome.preload_mapped) << preloadPath() << " is not mapped in the program\n"
                                        << describe(spawn, outcome);
  }
  return outcome;
}

class Programs : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(preloadPath().empty())
        << "no preload: set TIER_TEST_PRELOAD or configure TIERD_PROGRAMS_PRELOAD";
    ASSERT_EQ(access(preloadPath().c_str(), R_OK), 0) << preloadPath() << ": not readable";
    char pattern[] = "/tmp/tier-programs-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::error_code ignored;
    if (!HasFailure()) fs::remove_all(dir_, ignored);
  }
  std::string dir_;
};

// --- python3 and its own test suite --------------------------------------

TEST_F(Programs, PythonStandardTestSuite) {
  const std::string python = "/usr/bin/python3";
  ASSERT_EQ(access("/usr/lib/python3.11/test/__main__.py", R_OK), 0)
      << "Debian's libpython3.11-testsuite is needed (tools/install-deps.sh)";
  // Chosen to pass under glibc in well under 2 minutes here; the lab (15-30x
  // slower) runs a smaller set. Containers, strings, regexes, JSON, threads,
  // the garbage collector, arrays and structs: allocation-heavy code paths.
  std::vector<std::string> tests =
      inLab() ? std::vector<std::string>{"test_dict", "test_list", "test_json", "test_re"}
              : std::vector<std::string>{"test_dict",        "test_list",    "test_set",
                                         "test_json",        "test_re",      "test_threading",
                                         "test_collections", "test_unicode", "test_bytes",
                                         "test_itertools",   "test_gc",      "test_array",
                                         "test_struct"};
  // At exit the script reports its anonymous pages on the far node (lab).
  std::string script = R"(import os, sys, runpy
sys.argv = ['python3 -m test', '-j1')";
  for (const auto& test : tests)
    script += ", '" + test + "'";
  script += R"(]
try:
    runpy.run_module('test', run_name='__main__', alter_sys=True)
finally:
    far = os.environ.get('TIER_FAR_NODE')
    if far:
        pages = 0
        for line in open('/proc/self/numa_maps'):
            if 'anon=' in line:
                pages += sum(int(f.split('=')[1]) for f in line.split() if f.startswith('N' + far + '='))
        print('far_pages=%d' % pages, flush=True)
)";
  int far_node = tier::test::farNode();
  // -I: no PYTHON* variables or user site; "-": the script comes on stdin.
  Spawn spawn{.argv = {python, "-I", "-"}, .input = script, .env = {"TMPDIR=" + dir_}, .cwd = dir_};
  if (far_node >= 0) spawn.env.push_back("TIER_FAR_NODE=" + std::to_string(far_node));
  Outcome outcome = runChecked(spawn);
  if (far_node >= 0) {
    long far = -1;
    auto at = outcome.out.find("far_pages=");
    ASSERT_NE(at, std::string::npos) << describe(spawn, outcome);
    far = std::atol(outcome.out.c_str() + at + 10);
    std::printf("far node %d holds %ld anonymous pages of python3 (the test runner)\n", far_node,
                far);
    if (expectedFarShare() > 0) {
      EXPECT_GT(far, 0) << "a two-tier policy put none of python's heap on the far node";
    }
  }
  // The exit code's failure above already showed the output.
  bool passed =
      outcome.out.find("Tests result: SUCCESS") != std::string::npos &&
      outcome.out.find("All " + std::to_string(tests.size()) + " tests OK") != std::string::npos;
  EXPECT_TRUE(passed || outcome.exit_code != 0) << describe(spawn, outcome);
}

// --- sqlite3 on a real database -------------------------------------------

struct SqliteExpectation {
  long rows = 0, grp_sum = 0, payload_bytes = 0, moved = 0;
  std::string first_names;
};

// What the script below must leave: ids 1..50000 less multiples of 3, grp
// id % 97 plus 1000 for multiples of 5, payload 100 + id % 400 bytes.
SqliteExpectation expectedDatabase() {
  SqliteExpectation expected;
  std::vector<std::string> names;
  for (long id = 1; id <= 50000; ++id) {
    if (id % 3 == 0) continue;
    long grp = id % 97 + (id % 5 == 0 ? 1000 : 0);
    ++expected.rows;
    expected.grp_sum += grp;
    expected.payload_bytes += 100 + id % 400;
    expected.moved += grp >= 1000 ? 1 : 0;
    if (grp == 1005) names.push_back("item-" + std::to_string(id));
  }
  std::sort(names.begin(), names.end());
  for (size_t i = 0; i < 3; ++i)
    expected.first_names += (i ? "," : "") + names[i];
  return expected;
}

TEST_F(Programs, SqliteDatabase) {
  const std::string database = dir_ + "/items.db";
  const std::string build = R"(
CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, grp INTEGER, payload BLOB, price REAL);
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)
INSERT INTO items SELECT i, 'item-' || i, i % 97, randomblob(100 + i % 400), i * 0.25 FROM n;
COMMIT;
CREATE INDEX items_grp ON items(grp);
CREATE UNIQUE INDEX items_name ON items(name);
BEGIN;
DELETE FROM items WHERE id % 3 = 0;
UPDATE items SET grp = grp + 1000 WHERE id % 5 = 0;
COMMIT;
BEGIN;
INSERT INTO items SELECT id + 100000, name || '-copy', grp, payload, price FROM items;
ROLLBACK;
VACUUM;
PRAGMA integrity_check;
SELECT count(*), sum(grp), sum(length(payload)) FROM items;
)";
  const std::string reopen = R"(
PRAGMA integrity_check;
SELECT count(*) FROM items WHERE grp >= 1000;
SELECT group_concat(name) FROM (SELECT name FROM items WHERE grp = 1005 ORDER BY name LIMIT 3);
SELECT name FROM items INDEXED BY items_name WHERE name = 'item-4';
)";
  SqliteExpectation expected = expectedDatabase();
  Spawn first{.argv = {"sqlite3", "-batch", "-bail", database}, .input = build};
  Outcome built = runChecked(first);
  EXPECT_EQ(built.out, "ok\n" + std::to_string(expected.rows) + "|" +
                           std::to_string(expected.grp_sum) + "|" +
                           std::to_string(expected.payload_bytes) + "\n")
      << describe(first, built);
  Spawn second{.argv = {"sqlite3", "-batch", "-bail", database}, .input = reopen};
  Outcome reopened = runChecked(second);
  EXPECT_EQ(reopened.out,
            "ok\n" + std::to_string(expected.moved) + "\n" + expected.first_names + "\nitem-4\n")
      << describe(second, reopened);
}

// --- git on a repository of a few hundred files ---------------------------

std::string fileContent(int index, int version) {
  std::string text;
  int lines = 5 + (index * 37) % 400;
  for (int line = 0; line < lines; ++line) {
    text += "file " + std::to_string(index) + " version " + std::to_string(version) + " line " +
            std::to_string(line) + "\n";
  }
  return text;
}

void writeFile(const fs::path& path, const std::string& content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

std::string relativeName(int index) {
  return "src/dir" + std::to_string(index % 17) + "/file" + std::to_string(index) + ".txt";
}

// init, add, commit, change, commit, log, fsck, gc, fsck: the outputs that
// depend only on content (ids, log) must equal a reference run without the
// preload. Returns the outputs keyed by step.
std::map<std::string, std::string> gitSession(const std::string& root, bool preload) {
  fs::path work = fs::path(root) / "repo";
  for (int index = 0; index < 300; ++index)
    writeFile(work / relativeName(index), fileContent(index, 1));
  std::string binary(70000, '\0');
  std::mt19937 random(7);
  for (auto& byte : binary)
    byte = static_cast<char>(random());
  writeFile(work / "assets/blob.bin", binary);
  fs::create_directories(fs::path(root) / "home");
  std::vector<std::string> env = {"GIT_CONFIG_NOSYSTEM=1",
                                  "HOME=" + root + "/home",
                                  "GIT_AUTHOR_NAME=Tier Test",
                                  "GIT_AUTHOR_EMAIL=tier@example.invalid",
                                  "GIT_COMMITTER_NAME=Tier Test",
                                  "GIT_COMMITTER_EMAIL=tier@example.invalid",
                                  "GIT_AUTHOR_DATE=2026-01-01T00:00:00Z",
                                  "GIT_COMMITTER_DATE=2026-01-01T00:00:00Z",
                                  "LC_ALL=C"};
  std::map<std::string, std::string> outputs;
  auto git = [&](const std::string& step, std::vector<std::string> args,
                 const std::string& input = "") {
    args.insert(args.begin(), "git");
    Spawn spawn{.argv = args,
                .input = input,
                .env = env,
                .cwd = work.string(),
                .preload = preload,
                .check_maps = preload && !input.empty()};
    Outcome outcome = preload ? runChecked(spawn) : run(spawn);
    EXPECT_EQ(outcome.exit_code, 0) << describe(spawn, outcome);
    outputs[step] = outcome.out;
    outputs[step + ".err"] = outcome.err;
  };
  git("init", {"init", "-q", "-b", "main"});
  git("add", {"add", "."});
  git("commit1", {"commit", "-q", "-F", "-"}, "first: 301 files\n\nunder the preload\n");
  for (int index = 0; index < 300; index += 6)
    writeFile(work / relativeName(index), fileContent(index, 2));
  for (int index = 1; index < 300; index += 30)
    fs::remove(work / relativeName(index));
  for (int index = 300; index < 320; ++index)
    writeFile(work / relativeName(index), fileContent(index, 1));
  git("add2", {"add", "-A"});
  git("commit2", {"commit", "-q", "-F", "-"}, "second: changes, removals, additions\n");
  git("log", {"log", "--stat", "--format=%H %s"});
  git("fsck1", {"fsck", "--full", "--strict"});
  git("gc", {"gc", "-q", "--prune=now"});
  git("fsck2", {"fsck", "--full", "--strict"});
  git("count", {"rev-list", "--count", "HEAD"});
  git("show", {"cat-file", "-p", "HEAD:" + relativeName(42)});
  git("blob", {"cat-file", "-p", "HEAD:assets/blob.bin"});
  return outputs;
}

TEST_F(Programs, GitRepository) {
  fs::create_directories(dir_ + "/shim");
  fs::create_directories(dir_ + "/reference");
  auto under_shim = gitSession(dir_ + "/shim", true);
  auto reference = gitSession(dir_ + "/reference", false);
  EXPECT_EQ(under_shim["count"], "2\n");
  EXPECT_EQ(under_shim["log"], reference["log"]) << "same content, same ids expected";
  EXPECT_FALSE(under_shim["log"].empty());
  for (const char* step : {"fsck1.err", "fsck2.err", "fsck1", "fsck2"}) {
    EXPECT_EQ(under_shim[step].find("error"), std::string::npos)
        << step << ": " << under_shim[step];
    EXPECT_EQ(under_shim[step].find("missing"), std::string::npos)
        << step << ": " << under_shim[step];
  }
  EXPECT_EQ(under_shim["show"], fileContent(42, 2));
  EXPECT_EQ(under_shim["blob"].size(), 70000u);
  EXPECT_EQ(under_shim["blob"], reference["blob"]);
}

// --- a multi-threaded C++ program with over-aligned new ------------------

TEST_F(Programs, OveralignedNewAcrossThreads) {
  int far_node = tier::test::farNode();
  Spawn spawn{.argv = {OVERALIGNED_PATH}, .input = "go\n"};
  if (far_node >= 0) spawn.argv.push_back(std::to_string(far_node));
  Outcome outcome = runChecked(spawn);
  EXPECT_NE(outcome.out.find("ok objects=100\n"), std::string::npos) << describe(spawn, outcome);
  if (far_node >= 0) {
    long far = -1, of = 0;
    auto at = outcome.out.find("far_pages=");
    ASSERT_NE(at, std::string::npos) << describe(spawn, outcome);
    ASSERT_EQ(std::sscanf(outcome.out.c_str() + at, "far_pages=%ld of=%ld", &far, &of), 2);
    RecordProperty("far_pages", std::to_string(far) + "/" + std::to_string(of));
    std::printf("far node %d holds %ld of %ld pages of the 1 MiB aligned blocks\n", far_node, far,
                of);
    double share = static_cast<double>(far) / static_cast<double>(of);
    if (expectedFarShare() > 0) {
      // 64 blocks of 1 MiB, placed one by one by the byte balancer.
      EXPECT_NEAR(share, expectedFarShare(), 0.05) << far << " of " << of << " pages far";
    }
  }
}

// --- grep: patterns that make it allocate 0 bytes ------------------------

TEST_F(Programs, GrepWithMallocZeroPatterns) {
  std::string input;
  std::vector<std::string> lines;
  const char* words[] = {"alpha", "beta", "gamma", "delta", "ALPHA", "alphabet"};
  for (int i = 0; i < 3000; ++i) {
    lines.push_back("row " + std::to_string(i) + " " + words[i % 6] + " " + words[(i / 6) % 6]);
    input += lines.back() + "\n";
  }
  auto count = [&](auto predicate) {
    return std::to_string(std::count_if(lines.begin(), lines.end(), predicate)) + "\n";
  };
  auto has = [](const std::string& line, const char* word) {
    return line.find(word) != std::string::npos;
  };
  auto hasWord = [](const std::string& line, const std::string& word) {  // -i -w, ASCII
    std::string lower = line;
    std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
    std::istringstream tokens(lower);
    std::string token;
    while (tokens >> token) {
      if (token == word) return true;
    }
    return false;
  };
  auto firstTwo = [&](const char* word) {  // grep -m 2 -n
    std::string found;
    for (size_t i = 0, hits = 0; i < lines.size() && hits < 2; ++i) {
      if (!has(lines[i], word)) continue;
      found += std::to_string(i + 1) + ":" + lines[i] + "\n";
      ++hits;
    }
    return found;
  };
  struct Case {
    std::vector<std::string> argv;
    std::string expected;
  };
  std::vector<Case> cases = {
      {{"grep", ""}, input},  // the empty pattern: every line
      {{"grep", "-c", "alpha"}, count([&](auto& l) { return has(l, "alpha"); })},
      {{"grep", "-c", "-E", "gam+a$|^row 1"},
       count([&](auto& l) { return l.ends_with("gamma") || l.starts_with("row 1"); })},
      {{"grep", "-c", "-F", "-e", "beta", "-e", "delta"},
       count([&](auto& l) { return has(l, "beta") || has(l, "delta"); })},
      {{"grep", "-c", "-i", "-w", "alpha"}, count([&](auto& l) { return hasWord(l, "alpha"); })},
      {{"grep", "-c", "-v", "a"}, count([&](auto& l) { return !has(l, "a"); })},
      {{"grep", "-c", "-e", ""}, std::to_string(lines.size()) + "\n"},
      {{"grep", "-m", "2", "-n", "delta"}, firstTwo("delta")},
  };
  for (const auto& test : cases) {
    Spawn spawn{.argv = test.argv, .input = input, .env = {"LC_ALL=C"}};
    Outcome outcome = runChecked(spawn);
    EXPECT_EQ(outcome.out, test.expected) << describe(spawn, outcome);
  }
}

// --- stdout through a pipe: every byte arrives ---------------------------

TEST_F(Programs, StdoutThroughPipe) {
  const long lines = 200000;
  Spawn writer{.argv = {STDOUT_WRITER_PATH, std::to_string(lines)}, .input = "go\n"};
  Outcome written = runChecked(writer);
  std::string expected;
  for (long i = 0; i < lines; ++i)
    expected += "line " + std::to_string(i) + " of the stdout test\n";
  EXPECT_EQ(written.out.size(), expected.size()) << describe(writer, written);
  EXPECT_TRUE(written.out == expected) << "the bytes differ";

  // sort: a real program that allocates its input, then writes it all out.
  std::vector<long> numbers(150000);
  std::iota(numbers.begin(), numbers.end(), 0);
  std::shuffle(numbers.begin(), numbers.end(), std::mt19937(11));
  std::string input, sorted;
  for (long number : numbers)
    input += std::to_string(number) + "\n";
  std::sort(numbers.begin(), numbers.end());
  for (long number : numbers)
    sorted += std::to_string(number) + "\n";
  Spawn sort{.argv = {"sort", "-n"}, .input = input, .env = {"LC_ALL=C"}};
  Outcome outcome = runChecked(sort);
  EXPECT_EQ(outcome.out.size(), sorted.size()) << describe(sort, outcome);
  EXPECT_TRUE(outcome.out == sorted) << "sort's output differs";
}

}  // namespace
