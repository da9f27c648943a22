// The one seam through which discovery reads the kernel's filesystems.
// A FsRoot is a directory standing in for a mount point (/sys, /proc, or a
// captured tree of either); every path handed to it is relative to that
// directory, so the same code runs on the host, in the lab and on fixtures.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace tier {

// Remembers every path a FsRoot touched, so `tierctl gather` can capture
// exactly what discovery reads and nothing else.
class AccessLog {
 public:
  void note(std::string_view relpath) { paths_.emplace(relpath); }
  // Entries seen in a directory listing: discovery reads some symlinks (the
  // HMAT initiators/nodeN links) only by their names.
  void noteListed(std::string_view relpath) { listed_.emplace(relpath); }
  const std::set<std::string>& paths() const { return paths_; }
  const std::set<std::string>& listed() const { return listed_; }

 private:
  std::set<std::string> paths_, listed_;
};

// A file opened once and read from its start again on each read(): for a
// file polled several times a second (/proc/PID/sched), where the open's path
// walk costs more than the read. procfs and sysfs make a file's text anew at
// offset 0; a /proc/PID file stays bound to the process it was opened for
// and fails with ESRCH once that process is gone, even if its pid is reused.
class HeldFile {
 public:
  HeldFile() = default;
  HeldFile(HeldFile&& other) noexcept;
  HeldFile& operator=(HeldFile&& other) noexcept;
  ~HeldFile();
  // The whole file, valid until the next read().
  Result<std::string_view> read();

 private:
  friend class FsRoot;
  HeldFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_ = -1;
  std::string path_;  // for errors
  std::string text_;
};

class FsRoot {
 public:
  // Opens `dir` as the root. Fails with the errno of open(2) and names `dir`.
  static Result<FsRoot> open(const std::string& dir);

  FsRoot(FsRoot&&) noexcept;
  FsRoot& operator=(FsRoot&&) noexcept;
  ~FsRoot();

  const std::string& dir() const { return dir_; }
  // True when this root is the live kernel mount (e.g. "/sys" itself), so
  // that libraries which read hard-coded paths (libcxl, ...) see the same data.
  bool isLive(std::string_view live_mount) const;

  Result<std::string> readFile(std::string_view relpath) const;
  // Opens a file to be read many times (see HeldFile).
  Result<HeldFile> hold(std::string_view relpath) const;
  // pread(2) of part of a file, for files read by offset (/proc/PID/pagemap).
  // Returns the bytes read; fewer than asked at the end of the file.
  Result<size_t> readAt(std::string_view relpath, uint64_t offset, std::span<char> buffer) const;
  // Directory entries without "." and "..", sorted by name.
  Result<std::vector<std::string>> listDir(std::string_view relpath) const;
  // The entries whose names are decimal numbers (/proc's pids), ascending;
  // no strings made or sorted, for a directory listed every second.
  Result<std::vector<uint64_t>> listNumbered(std::string_view relpath) const;
  Result<std::string> readLink(std::string_view relpath) const;
  bool exists(std::string_view relpath) const;
  bool isDir(std::string_view relpath) const;
  // Follows symlinks lexically inside the root (sysfs links are relative) and
  // returns the canonical relative path, e.g. "bus/dax/devices/dax0.0" ->
  // "devices/platform/.../dax0.0". Components that are not links pass through.
  // Each link followed is appended to `links` as (its canonical path, its
  // target text), which is what `tierctl gather` needs to keep links as links.
  using LinkList = std::vector<std::pair<std::string, std::string>>;
  Result<std::string> resolve(std::string_view relpath, LinkList* links = nullptr) const;
  // lstat(2) mode of a path, without following a final symlink.
  Result<unsigned> modeOf(std::string_view relpath) const;

  void setAccessLog(std::shared_ptr<AccessLog> log) { log_ = std::move(log); }

 private:
  FsRoot(int fd, std::string dir) : fd_(fd), dir_(std::move(dir)) {}
  void note(std::string_view relpath) const;
  // Calls `visit` with each entry's name but "." and "..", in readdir order.
  Result<void> forEachEntry(std::string_view relpath,
                            const std::function<void(std::string_view)>& visit) const;

  int fd_ = -1;
  std::string dir_;
  std::shared_ptr<AccessLog> log_;
};

// Joins relative path pieces with '/', collapsing "." and "..".
std::string normalizePath(std::string_view path);
std::string joinPath(std::string_view a, std::string_view b);
std::string baseName(std::string_view path);
std::string parentPath(std::string_view path);

}  // namespace tier
