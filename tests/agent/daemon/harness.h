// Test harness for the real tierd binary: child processes with their stdout
// readable line by line, and a running agent in a temporary directory.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../../golden/run_command.h"

namespace tierd::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using tier::test::CommandResult;
using tier::test::runCommand;
using tier::test::slurp;

// Sends `line` on a fresh connection to a unix socket and returns the reply.
inline std::string rawRequest(const std::string& socket_path, const std::string& line) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", socket_path.c_str());
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0) {
    // The agent may answer and hang up before taking all of an oversized request.
    for (size_t sent = 0; sent < line.size();) {
      ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    char chunk[4096];
    ssize_t n;
    while ((n = ::read(fd, chunk, sizeof(chunk))) > 0)
      reply.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  return reply;
}

// A child whose stdout comes back through a pipe.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv,
                 const std::string& stderr_path = "/dev/null") {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
    std::vector<char*> args;
    for (const auto& arg : argv)
      args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
    ::close(pipe_fds[1]);
    out_fd_ = pipe_fds[0];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (out_fd_ >= 0) ::close(out_fd_);
  }
  pid_t pid() const { return pid_; }

  // The next line of stdout, or nothing after `timeout`.
  std::optional<std::string> readLine(std::chrono::milliseconds timeout = 30s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      if (size_t end = buffer_.find('\n'); end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd fd{out_fd_, POLLIN, 0};
      if (::poll(&fd, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char chunk[4096];
      ssize_t n = ::read(out_fd_, chunk, sizeof(chunk));
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }
  void signal(int number) const { ::kill(pid_, number); }
  // Exit code (or 128 + signal).
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  bool reaped_ = false;
  std::string buffer_;
};

// The workload of workload.cpp: memory with a known pattern.
struct Workload {
  Workload(int node, size_t mib, bool write) : child(args(node, mib, write)) {
    auto line = child.readLine();
    if (line && line->starts_with("READY ")) {
      std::istringstream words(line->substr(6));
      words >> std::hex >> start >> end;
    }
  }
  static std::vector<std::string> args(int node, size_t mib, bool write) {
    std::vector<std::string> argv{WORKLOAD_PATH, "--node", std::to_string(node), "--mib",
                                  std::to_string(mib)};
    if (write) argv.push_back("--write");
    return argv;
  }
  bool ready() const { return end > start; }
  // Asks the workload to check every byte: "OK <rounds>" or "CORRUPT <offset>".
  std::string verify() {
    child.signal(SIGUSR1);
    return child.readLine(120s).value_or("no answer");
  }
  Child child;
  uint64_t start = 0, end = 0;
};

class Agent {
 public:
  // `args` go on tierd's command line after -c (e.g. "-v").
  explicit Agent(const std::string& extra_config = "", std::vector<std::string> args = {})
      : dir_(makeDir()), args_(std::move(args)) {
    writeConfig(extra_config);
    if (!launch()) ADD_FAILURE() << "tierd did not start:\n" << log();
  }
  ~Agent() {
    if (child_) child_->signal(SIGTERM);
    child_.reset();
    fs::remove_all(dir_);
  }
  const fs::path& dir() const { return dir_; }
  std::string socket() const { return (dir_ / "tierd.sock").string(); }
  std::string configPath() const { return (dir_ / "tierd.toml").string(); }
  std::string log() const { return slurp((dir_ / "tierd.log").string()); }
  Child& child() { return *child_; }

  // The harness's settings go in tierd.toml, the test's in a drop-in, which
  // overrides them key by key.
  void writeConfig(const std::string& extra) const {
    std::ofstream(configPath()) << "[control]\nsocket = \"" << socket() << "\"\n"
                                << "[metrics]\nlisten = \"\"\ntextfile_dir = \"" << dir_.string()
                                << "\"\ntextfile_interval_s = 1\n"
                                << "[agent]\ninterval_ms = 200\n";
    fs::create_directories(dir_ / "conf.d");
    std::ofstream(dir_ / "conf.d" / "50-test.toml") << extra;
  }
  // Starts tierd and waits until its socket answers.
  bool launch() {
    std::vector<std::string> command{TIERD_PATH, "-c", configPath()};
    command.insert(command.end(), args_.begin(), args_.end());
    child_.emplace(command, (dir_ / "tierd.log").string());
    for (int i = 0; i < 200; ++i) {
      if (tierctl({"status"}).exit_code == 0) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  void kill9() {
    child_->signal(SIGKILL);
    child_->wait();
    child_.reset();
  }
  CommandResult tierctl(std::vector<std::string> args) const {
    args.insert(args.begin(), {TIERCTL_PATH, "--socket", socket()});
    return runCommand(args);
  }
  nlohmann::json tierctlJson(std::vector<std::string> args) const {
    args.push_back("-j");
    auto result = tierctl(args);
    auto json = nlohmann::json::parse(result.out, nullptr, false);
    if (json.is_discarded()) return nlohmann::json{{"error", result.err}};
    return json;
  }
  std::string metrics() const { return slurp((dir_ / "tierd.prom").string()); }

 private:
  static fs::path makeDir() {
    std::string pattern = "/tmp/tierd-agent-XXXXXX";
    fs::path dir = ::mkdtemp(pattern.data());
    fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                             fs::perms::others_read | fs::perms::others_exec);
    return dir;
  }
  fs::path dir_;
  std::vector<std::string> args_;
  std::optional<Child> child_;
};

}  // namespace tierd::test
