// A throw-away directory tree for tests that need real files and symlinks.
#pragma once

#include <filesystem>
#include <fstream>
#include <string>

namespace tier::test {

class TempTree {
 public:
  TempTree() {
    std::string pattern = (std::filesystem::temp_directory_path() / "tierd-test-XXXXXX").string();
    root_ = ::mkdtemp(pattern.data());
  }
  ~TempTree() { std::filesystem::remove_all(root_); }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  const std::filesystem::path& root() const { return root_; }

  void file(const std::string& relpath, const std::string& text) const {
    auto path = root_ / relpath;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }
  void dir(const std::string& relpath) const {
    std::filesystem::create_directories(root_ / relpath);
  }
  void link(const std::string& relpath, const std::string& target) const {
    auto path = root_ / relpath;
    std::filesystem::create_directories(path.parent_path());
    std::filesystem::create_symlink(target, path);
  }

 private:
  std::filesystem::path root_;
};

}  // namespace tier::test
