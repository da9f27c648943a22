#include "fs/fs_root.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>

namespace tier {
namespace {

// openat() wants "." for the root itself and no leading '/'.
std::string relativeForm(std::string_view relpath) {
  while (!relpath.empty() && relpath.front() == '/')
    relpath.remove_prefix(1);
  return relpath.empty() ? std::string(".") : std::string(relpath);
}

std::vector<std::string> splitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t next = path.find('/', pos);
    if (next == std::string_view::npos) next = path.size();
    if (next > pos) parts.emplace_back(path.substr(pos, next - pos));
    pos = next + 1;
  }
  return parts;
}

}  // namespace

std::string normalizePath(std::string_view path) {
  std::vector<std::string> out;
  for (auto& part : splitPath(path)) {
    if (part == ".") continue;
    if (part == "..") {
      if (!out.empty()) out.pop_back();  // clamp at the root, like chroot
      continue;
    }
    out.push_back(std::move(part));
  }
  std::string joined;
  for (const auto& part : out) {
    if (!joined.empty()) joined += '/';
    joined += part;
  }
  return joined;
}

std::string joinPath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  return std::string(a) + "/" + std::string(b);
}

std::string baseName(std::string_view path) {
  while (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string parentPath(std::string_view path) {
  while (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string() : std::string(path.substr(0, slash));
}

Result<FsRoot> FsRoot::open(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(errno, "open root directory " + dir);
  return FsRoot(fd, dir);
}

FsRoot::FsRoot(FsRoot&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), dir_(std::move(other.dir_)), log_(std::move(other.log_)) {}

FsRoot& FsRoot::operator=(FsRoot&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    dir_ = std::move(other.dir_);
    log_ = std::move(other.log_);
  }
  return *this;
}

FsRoot::~FsRoot() {
  if (fd_ >= 0) ::close(fd_);
}

bool FsRoot::isLive(std::string_view live_mount) const {
  struct stat mine {
  }, live{};
  if (::fstat(fd_, &mine) != 0) return false;
  if (::stat(std::string(live_mount).c_str(), &live) != 0) return false;
  return mine.st_dev == live.st_dev && mine.st_ino == live.st_ino;
}

void FsRoot::note(std::string_view relpath) const {
  if (log_) log_->note(normalizePath(relpath));
}

Result<std::string> FsRoot::readFile(std::string_view relpath) const {
  note(relpath);
  int fd = ::openat(fd_, relativeForm(relpath).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno, "open " + joinPath(dir_, relpath));
  std::string text;
  std::array<char, 4096> buf;
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return fail(err, "read " + joinPath(dir_, relpath));
    }
    if (n == 0) break;
    text.append(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

Result<HeldFile> FsRoot::hold(std::string_view relpath) const {
  note(relpath);
  int fd = ::openat(fd_, relativeForm(relpath).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno, "open " + joinPath(dir_, relpath));
  return HeldFile(fd, joinPath(dir_, relpath));
}

HeldFile::HeldFile(HeldFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      text_(std::move(other.text_)) {}

HeldFile& HeldFile::operator=(HeldFile&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    text_ = std::move(other.text_);
  }
  return *this;
}

HeldFile::~HeldFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::string_view> HeldFile::read() {
  if (fd_ < 0) return fail(EBADF, "read " + path_ + ": not open");
  text_.clear();
  std::array<char, 4096> buf;
  for (;;) {
    ssize_t n = ::pread(fd_, buf.data(), buf.size(), static_cast<off_t>(text_.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno, "read " + path_);
    if (n == 0) break;
    text_.append(buf.data(), static_cast<size_t>(n));
  }
  return std::string_view(text_);
}

Result<size_t> FsRoot::readAt(std::string_view relpath, uint64_t offset,
                              std::span<char> buffer) const {
  note(relpath);
  int fd = ::openat(fd_, relativeForm(relpath).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno, "open " + joinPath(dir_, relpath));
  size_t done = 0;
  while (done < buffer.size()) {
    ssize_t n =
        ::pread(fd, buffer.data() + done, buffer.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return fail(err, "read " + joinPath(dir_, relpath));
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return done;
}

Result<void> FsRoot::forEachEntry(std::string_view relpath,
                                  const std::function<void(std::string_view)>& visit) const {
  note(relpath);
  int fd = ::openat(fd_, relativeForm(relpath).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(errno, "open directory " + joinPath(dir_, relpath));
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    return fail(err, "list " + joinPath(dir_, relpath));
  }
  while (const dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") visit(name);
  }
  ::closedir(dir);
  return {};
}

Result<std::vector<std::string>> FsRoot::listDir(std::string_view relpath) const {
  std::vector<std::string> names;
  auto listed = forEachEntry(relpath, [&](std::string_view name) { names.emplace_back(name); });
  if (!listed) return std::unexpected(listed.error());
  std::sort(names.begin(), names.end());
  if (log_)
    for (const auto& name : names)
      log_->noteListed(normalizePath(joinPath(relpath, name)));
  return names;
}

Result<std::vector<uint64_t>> FsRoot::listNumbered(std::string_view relpath) const {
  std::vector<uint64_t> numbers;
  auto listed = forEachEntry(relpath, [&](std::string_view name) {
    uint64_t n = 0;
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), n, 10);
    if (name.empty() || ec != std::errc() || end != name.data() + name.size()) return;
    numbers.push_back(n);
    if (log_) log_->noteListed(normalizePath(joinPath(relpath, name)));
  });
  if (!listed) return std::unexpected(listed.error());
  std::sort(numbers.begin(), numbers.end());
  return numbers;
}

Result<std::string> FsRoot::readLink(std::string_view relpath) const {
  note(relpath);
  std::array<char, 4096> buf;
  ssize_t n = ::readlinkat(fd_, relativeForm(relpath).c_str(), buf.data(), buf.size());
  if (n < 0) return fail(errno, "readlink " + joinPath(dir_, relpath));
  return std::string(buf.data(), static_cast<size_t>(n));
}

bool FsRoot::exists(std::string_view relpath) const {
  note(relpath);
  struct stat st {};
  return ::fstatat(fd_, relativeForm(relpath).c_str(), &st, 0) == 0;
}

bool FsRoot::isDir(std::string_view relpath) const {
  struct stat st {};
  return ::fstatat(fd_, relativeForm(relpath).c_str(), &st, 0) == 0 && S_ISDIR(st.st_mode);
}

Result<unsigned> FsRoot::modeOf(std::string_view relpath) const {
  struct stat st {};
  if (::fstatat(fd_, relativeForm(relpath).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return fail(errno, "stat " + joinPath(dir_, relpath));
  return static_cast<unsigned>(st.st_mode);
}

Result<std::string> FsRoot::resolve(std::string_view relpath, LinkList* links) const {
  std::vector<std::string> pending = splitPath(relpath);
  std::reverse(pending.begin(), pending.end());
  std::string done;
  int links_followed = 0;
  while (!pending.empty()) {
    std::string part = std::move(pending.back());
    pending.pop_back();
    if (part == ".") continue;
    if (part == "..") {
      done = parentPath(done);
      continue;
    }
    std::string candidate = joinPath(done, part);
    struct stat st {};
    if (::fstatat(fd_, candidate.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
      return fail(errno, "resolve " + joinPath(dir_, relpath));
    if (!S_ISLNK(st.st_mode)) {
      done = std::move(candidate);
      continue;
    }
    if (++links_followed > 40) return fail(ELOOP, "resolve " + joinPath(dir_, relpath));
    auto target = readLink(candidate);
    if (!target) return std::unexpected(target.error());
    if (links) links->emplace_back(candidate, *target);
    // A relative link continues from the link's directory; an absolute one
    // from the root of this tree.
    if (!target->empty() && target->front() == '/') done.clear();
    auto parts = splitPath(*target);
    for (auto it = parts.rbegin(); it != parts.rend(); ++it)
      pending.push_back(*it);
  }
  note(done);
  return done;
}

}  // namespace tier
