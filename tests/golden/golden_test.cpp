// Each tree under tests/fixtures/ (a sysfs/procfs capture made with
// `tierctl gather`, or made by hand for hardware no lab can emulate) has the
// expected outputs of tierctl beside it in expected/. The JSON is compared
// parsed, so a failure names the first differing field.
// TIERD_UPDATE_GOLDEN=1 rewrites the expected files (review the diff!).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "run_command.h"

namespace tier::test {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> fixtureNames() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(FIXTURES_DIR))
    if (fs::is_directory(entry.path() / "sys")) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool updating() {
  const char* value = std::getenv("TIERD_UPDATE_GOLDEN");
  return value && std::string(value) == "1";
}

std::vector<std::string> tierctlArgs(const fs::path& tree, std::vector<std::string> verb_args) {
  std::vector<std::string> argv{TIERCTL_PATH};
  argv.insert(argv.end(), verb_args.begin(), verb_args.end());
  argv.push_back("--sysfs-root");
  argv.push_back(tree.string());
  // A tree without its own config must not pick up the host's /etc/tierd.
  argv.push_back("--config");
  argv.push_back(fs::exists(tree / "tierd.toml") ? (tree / "tierd.toml").string() : "/dev/null");
  return argv;
}

// Compares tierctl's output with expected/<file>, or writes it when updating.
void checkGolden(const fs::path& tree, const std::vector<std::string>& verb_args,
                 const std::string& file, bool json) {
  auto result = runCommand(tierctlArgs(tree, verb_args));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  fs::path expected_path = tree / "expected" / file;
  if (updating()) {
    fs::create_directories(expected_path.parent_path());
    std::ofstream(expected_path) << result.out;
    return;
  }
  ASSERT_TRUE(fs::exists(expected_path))
      << "missing " << expected_path << " (run with TIERD_UPDATE_GOLDEN=1 and review)";
  std::string expected = slurp(expected_path);
  if (!json) {
    EXPECT_EQ(result.out, expected);
    return;
  }
  auto actual_json = nlohmann::json::parse(result.out);
  auto expected_json = nlohmann::json::parse(expected);
  auto patch = nlohmann::json::diff(expected_json, actual_json);
  EXPECT_TRUE(patch.empty()) << "tierctl " << verb_args[0] << " on " << tree.filename()
                             << " differs from " << expected_path << ":\n"
                             << patch.dump(2);
}

class Golden : public ::testing::TestWithParam<std::string> {
 protected:
  fs::path tree() const { return fs::path(FIXTURES_DIR) / GetParam(); }
};

TEST_P(Golden, TopologyJson) {
  checkGolden(tree(), {"topology", "-j"}, "topology.json", true);
}

TEST_P(Golden, TopologyText) {
  checkGolden(tree(), {"topology", "-v"}, "topology.txt", false);
}

TEST_P(Golden, NumactlHardwareView) {
  checkGolden(tree(), {"topology", "-H"}, "numactl-H.txt", false);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Golden, ::testing::ValuesIn(fixtureNames()),
                         [](const ::testing::TestParamInfo<std::string>& param) {
                           std::string name = param.param;
                           for (char& c : name)
                             if (!isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

}  // namespace
}  // namespace tier::test
