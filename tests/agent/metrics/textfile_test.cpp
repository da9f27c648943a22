#include "metrics/textfile.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace tierd::metrics {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class TextfileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "tierd-metrics-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  static std::string slurp(const fs::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  fs::path dir_;
};

TEST_F(TextfileTest, WritesAndReplacesAtomically) {
  const std::string first = "# HELP tierd_x X.\n# TYPE tierd_x gauge\ntierd_x 1\n";
  auto written = writeTextfile(dir_.string(), "tierd", first);
  ASSERT_TRUE(written) << written.error().message();
  EXPECT_EQ(slurp(dir_ / "tierd.prom"), first);
  EXPECT_THAT(entries(), ElementsAre("tierd.prom"));  // no temporary left
  EXPECT_EQ(fs::status(dir_ / "tierd.prom").permissions() & fs::perms::others_read,
            fs::perms::others_read);  // node_exporter runs as another user

  // Replacing: a reader holding the old file keeps the old content whole.
  std::ifstream reader(dir_ / "tierd.prom");
  ASSERT_TRUE(writeTextfile(dir_.string() + "/", "tierd", "tierd_x 2\n"));
  EXPECT_EQ(slurp(dir_ / "tierd.prom"), "tierd_x 2\n");
  std::stringstream old;
  old << reader.rdbuf();
  EXPECT_EQ(old.str(), first);
  EXPECT_THAT(entries(), ElementsAre("tierd.prom"));
}

TEST_F(TextfileTest, MissingDirectoryIsNamed) {
  std::string missing = (dir_ / "no-such-dir").string();
  auto written = writeTextfile(missing, "tierd", "x 1\n");
  ASSERT_FALSE(written);
  EXPECT_EQ(written.error().errnum, ENOENT);
  EXPECT_THAT(written.error().context, HasSubstr(missing + "/.tierd.prom."));
  EXPECT_THAT(entries(), ElementsAre());
}

TEST_F(TextfileTest, FailedRenameRemovesTheTemporary) {
  // A non-empty directory where the file should go: rename(2) fails.
  fs::create_directories(dir_ / "tierd.prom" / "occupied");
  auto written = writeTextfile(dir_.string(), "tierd", "x 1\n");
  ASSERT_FALSE(written);
  EXPECT_NE(written.error().errnum, 0);
  EXPECT_THAT(written.error().context, HasSubstr((dir_ / "tierd.prom").string()));
  EXPECT_THAT(entries(), ElementsAre("tierd.prom"));
}

TEST_F(TextfileTest, RefusesNamesThatAreNotPlainFileNames) {
  for (const char* name : {"", "a/b", "../x", ".hidden"}) {
    auto written = writeTextfile(dir_.string(), name, "x 1\n");
    ASSERT_FALSE(written) << name;
    EXPECT_EQ(written.error().errnum, EINVAL) << name;
  }
  EXPECT_THAT(entries(), ElementsAre());
}

}  // namespace
}  // namespace tierd::metrics
