#include "metrics/textfile.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <mutex>

namespace tierd::metrics {

namespace {

tier::Result<void> writeAll(int fd, const std::string& text, const std::string& path) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return tier::fail(errno, "write " + path);
    }
    done += static_cast<size_t>(n);
  }
  return {};
}

tier::Result<void> writeAndSync(const std::string& path, const std::string& text) {
  // O_NOFOLLOW: the directory may be shared with other writers; never write
  // through a symlink planted under our temporary name.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return tier::fail(errno, "open " + path);
  auto written = writeAll(fd, text, path);
  if (written && ::fsync(fd) != 0) written = tier::fail(errno, "fsync " + path);
  if (::close(fd) != 0 && written) written = tier::fail(errno, "close " + path);
  return written;
}

}  // namespace

tier::Result<void> writeTextfile(const std::string& directory, const std::string& name,
                                 const std::string& text) {
  if (name.empty() || name.front() == '.' || name.find('/') != std::string::npos) {
    return tier::fail(EINVAL, "textfile name \"" + name + "\" is not a plain file name");
  }
  std::string dir = directory.empty() ? "." : directory;
  if (dir.back() != '/') dir += '/';
  std::string target = dir + name + ".prom";
  std::string temp = dir + "." + name + ".prom." + std::to_string(::getpid()) + ".tmp";

  // One temporary name per process: serialize writers in this process.
  static std::mutex mutex;
  std::lock_guard lock(mutex);

  auto written = writeAndSync(temp, text);
  if (written && ::rename(temp.c_str(), target.c_str()) != 0) {
    written = tier::fail(errno, "rename " + temp + " to " + target);
  }
  // The directory itself is not fsynced: after a crash the collector sees
  // either the old or the new file, both whole, which is all it needs.
  if (!written) ::unlink(temp.c_str());
  return written;
}

}  // namespace tierd::metrics
