// A child process for tests against a real kernel: fork + exec, waiting until
// the exec has happened (so /proc shows the new program's comm), and killed
// and reaped when the test ends.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

namespace tierd::workloads::test {

class Child {
 public:
  // Runs `path` with `argv`. pid() is 0 and error() is set if it failed.
  Child(const std::string& path, const std::vector<std::string>& argv) {
    std::vector<char*> args;
    for (const auto& arg : argv)
      args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      error_ = errno;
      return;
    }
    pid_t pid = ::fork();
    if (pid < 0) {
      error_ = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      return;
    }
    if (pid == 0) {
      ::close(fds[0]);
      ::execv(path.c_str(), args.data());
      int err = errno;
      (void)!::write(fds[1], &err, sizeof err);
      ::_exit(127);
    }
    ::close(fds[1]);
    int err = 0;
    ssize_t n;
    do {
      n = ::read(fds[0], &err, sizeof err);
    } while (n < 0 && errno == EINTR);
    ::close(fds[0]);
    pid_ = pid;
    if (n > 0) {  // exec failed
      error_ = err;
      reap();
    }
  }
  ~Child() {
    kill();
    reap();
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return error_ == 0 ? pid_ : 0; }
  int error() const { return error_; }

  void kill() {
    if (pid_ > 0 && !reaped_) ::kill(pid_, SIGKILL);
  }
  // Waits until it is a zombie, without reaping it.
  bool waitZombie() {
    siginfo_t info{};
    return pid_ > 0 && !reaped_ &&
           ::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOWAIT) == 0;
  }
  void reap() {
    if (pid_ <= 0 || reaped_) return;
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
  }

 private:
  pid_t pid_ = 0;
  int error_ = 0;
  bool reaped_ = false;
};

// Seconds since boot on the clock /proc/PID/stat's start time follows.
inline double bootSeconds() {
  timespec now{};
  ::clock_gettime(CLOCK_BOOTTIME, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) / 1e9;
}

}  // namespace tierd::workloads::test
