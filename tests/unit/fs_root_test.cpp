#include "fs/fs_root.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "temp_tree.h"

namespace tier {
namespace {

using test::TempTree;

TEST(FsRoot, ReadsFilesRelativeToTheRoot) {
  TempTree tree;
  tree.file("devices/system/node/online", "0-1\n");
  auto root = FsRoot::open(tree.root());
  ASSERT_TRUE(root.has_value()) << root.error().message();
  EXPECT_EQ(root->readFile("devices/system/node/online").value(), "0-1\n");
  // A leading slash still means "inside the root", never the host's /.
  EXPECT_EQ(root->readFile("/devices/system/node/online").value(), "0-1\n");
}

TEST(FsRoot, MissingFileIsAnErrorNamingThePath) {
  TempTree tree;
  auto root = FsRoot::open(tree.root());
  auto text = root->readFile("kernel/mm/numa/demotion_enabled");
  ASSERT_FALSE(text.has_value());
  EXPECT_EQ(text.error().errnum, ENOENT);
  EXPECT_NE(text.error().message().find("kernel/mm/numa/demotion_enabled"), std::string::npos);
}

TEST(FsRoot, OpeningAMissingRootFailsWithItsName) {
  auto root = FsRoot::open("/nonexistent/tierd-root");
  ASSERT_FALSE(root.has_value());
  EXPECT_EQ(root.error().errnum, ENOENT);
  EXPECT_NE(root.error().context.find("/nonexistent/tierd-root"), std::string::npos);
}

TEST(FsRoot, ListsDirectoriesSorted) {
  TempTree tree;
  tree.file("d/node2/x", "");
  tree.file("d/node10/x", "");
  tree.file("d/node0/x", "");
  auto root = FsRoot::open(tree.root());
  EXPECT_EQ(root->listDir("d").value(), (std::vector<std::string>{"node0", "node10", "node2"}));
}

TEST(FsRoot, ListsNumberedEntriesAsNumbers) {
  TempTree tree;
  for (const char* name : {"20/stat", "3/stat", "self/stat", "3x/stat", "100/stat"})
    tree.file(std::string("p/") + name, "");
  tree.file("p/uptime", "");
  auto root = FsRoot::open(tree.root());
  EXPECT_EQ(root->listNumbered("p").value(), (std::vector<uint64_t>{3, 20, 100}));
  EXPECT_EQ(root->listNumbered("missing").error().errnum, ENOENT);
}

TEST(FsRoot, ResolvesRelativeSysfsLinksInsideTheRoot) {
  TempTree tree;
  tree.file("devices/platform/ACPI0017:00/root0/decoder0.0/region1/dax_region1/dax1.0/size", "1\n");
  tree.link("bus/dax/devices/dax1.0",
            "../../../devices/platform/ACPI0017:00/root0/decoder0.0/region1/dax_region1/dax1.0");
  auto root = FsRoot::open(tree.root());
  FsRoot::LinkList links;
  auto resolved = root->resolve("bus/dax/devices/dax1.0/size", &links);
  ASSERT_TRUE(resolved.has_value()) << resolved.error().message();
  EXPECT_EQ(*resolved,
            "devices/platform/ACPI0017:00/root0/decoder0.0/region1/dax_region1/dax1.0/size");
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].first, "bus/dax/devices/dax1.0");
}

TEST(FsRoot, DotDotNeverEscapesTheRoot) {
  TempTree tree;
  tree.file("inside", "x");
  tree.link("a/escape", "../../../../inside");
  auto root = FsRoot::open(tree.root());
  EXPECT_EQ(root->resolve("a/escape").value(), "inside");
}

TEST(FsRoot, LinkLoopsFailInsteadOfHanging) {
  TempTree tree;
  tree.link("a", "b");
  tree.link("b", "a");
  auto root = FsRoot::open(tree.root());
  auto resolved = root->resolve("a");
  ASSERT_FALSE(resolved.has_value());
  EXPECT_EQ(resolved.error().errnum, ELOOP);
}

TEST(FsRoot, AccessLogRecordsEveryPathTouched) {
  TempTree tree;
  tree.file("devices/system/node/online", "0\n");
  auto root = FsRoot::open(tree.root());
  auto log = std::make_shared<AccessLog>();
  root->setAccessLog(log);
  (void)root->readFile("devices/system/node/online");
  (void)root->readFile("devices/system/node/missing");
  (void)root->listDir("devices/system");
  EXPECT_EQ(log->paths(), (std::set<std::string>{"devices/system", "devices/system/node/missing",
                                                 "devices/system/node/online"}));
}

TEST(HeldFile, ReadsTheWholeFileAnewEachTime) {
  TempTree tree;
  tree.file("proc/1/sched", std::string(10000, 'a'));
  auto root = FsRoot::open(tree.root());
  auto held = root->hold("proc/1/sched");
  ASSERT_TRUE(held.has_value()) << held.error().message();
  EXPECT_EQ(held->read().value(), std::string(10000, 'a'));  // more than one 4 KiB read
  tree.file("proc/1/sched", "shorter\n");                    // rewritten in place
  EXPECT_EQ(held->read().value(), "shorter\n");
}

TEST(HeldFile, AMissingFileIsAnErrorNamingThePath) {
  TempTree tree;
  auto root = FsRoot::open(tree.root());
  auto held = root->hold("4242/sched");
  ASSERT_FALSE(held.has_value());
  EXPECT_EQ(held.error().errnum, ENOENT);
  EXPECT_NE(held.error().message().find("4242/sched"), std::string::npos);
}

// The kernel's own /proc: a held file of a process fails once the process
// is gone, where reopening by pid could read a newcomer's.
TEST(HeldFile, AProcFileFailsWithEsrchOnceItsProcessIsGone) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char byte = 0;
    (void)!::read(ready[0], &byte, 1);  // wait for the parent's word, then leave
    _exit(0);
  }
  auto proc = FsRoot::open("/proc");
  ASSERT_TRUE(proc.has_value());
  auto held = proc->hold(std::to_string(child) + "/stat");
  ASSERT_TRUE(held.has_value()) << held.error().message();
  auto first = held->read();
  ASSERT_TRUE(first.has_value()) << first.error().message();
  EXPECT_EQ(first->substr(0, first->find(' ')), std::to_string(child));
  EXPECT_TRUE(held->read().has_value());  // read again from the start
  ASSERT_EQ(::write(ready[1], "x", 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  auto gone = held->read();
  ASSERT_FALSE(gone.has_value());
  EXPECT_EQ(gone.error().errnum, ESRCH) << gone.error().message();
  ::close(ready[0]);
  ::close(ready[1]);
}

TEST(PathHelpers, NormalizeJoinBaseParent) {
  EXPECT_EQ(normalizePath("a/./b/../c//d"), "a/c/d");
  EXPECT_EQ(normalizePath("../x"), "x");
  EXPECT_EQ(joinPath("a", "b"), "a/b");
  EXPECT_EQ(joinPath("", "b"), "b");
  EXPECT_EQ(baseName("devices/x/mem0"), "mem0");
  EXPECT_EQ(parentPath("devices/x/mem0"), "devices/x");
  EXPECT_EQ(parentPath("mem0"), "");
}

}  // namespace
}  // namespace tier
