#include "fs/fs_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "fs/fs_root.h"

namespace tier {
namespace {

std::string relativeForm(std::string_view relpath) {
  while (!relpath.empty() && relpath.front() == '/')
    relpath.remove_prefix(1);
  return relpath.empty() ? std::string(".") : std::string(relpath);
}

}  // namespace

Result<FsWriter> FsWriter::open(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(errno, "open root directory " + dir);
  return FsWriter(fd, dir);
}

FsWriter::FsWriter(FsWriter&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), dir_(std::move(other.dir_)), log_(std::move(other.log_)) {}

FsWriter& FsWriter::operator=(FsWriter&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    dir_ = std::move(other.dir_);
    log_ = std::move(other.log_);
  }
  return *this;
}

FsWriter::~FsWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Result<void> FsWriter::write(std::string_view relpath, std::string_view value) const {
  if (log_) log_->note(tier::normalizePath(relpath), value);
  auto what = [&] {
    return "write '" + std::string(value) + "' to " + tier::joinPath(dir_, relpath);
  };
  // O_TRUNC: sysfs ignores it; on a fixture the new value replaces the old.
  int fd = ::openat(fd_, relativeForm(relpath).c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd < 0) return fail(errno, what());
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  int err = errno;
  ::close(fd);
  if (n < 0) return fail(err, what());
  if (static_cast<size_t>(n) != value.size()) return fail(EIO, what() + ": short write");
  return {};
}

}  // namespace tier
