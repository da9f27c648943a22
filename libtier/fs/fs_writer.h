// The write side of the filesystem-root seam: FsRoot (libtier/fs) reads, a
// FsWriter writes, both relative to the same directory. On the live /sys a
// write is a command to the kernel; on a fixture tree it just replaces the
// file's content, so tests can read back what was written (and, through a
// WriteLog, in which order).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace tier {

struct WriteRecord {
  std::string path;  // relative to the root
  std::string value;
  bool operator==(const WriteRecord&) const = default;
};

// Every write attempted through a FsWriter, in order (failed ones too).
class WriteLog {
 public:
  void note(std::string_view path, std::string_view value) {
    writes_.push_back({std::string(path), std::string(value)});
  }
  const std::vector<WriteRecord>& writes() const { return writes_; }
  void clear() { writes_.clear(); }

 private:
  std::vector<WriteRecord> writes_;
};

class FsWriter {
 public:
  // Opens `dir` (e.g. "/sys") as the root. Fails naming `dir`.
  static Result<FsWriter> open(const std::string& dir);

  FsWriter(FsWriter&&) noexcept;
  FsWriter& operator=(FsWriter&&) noexcept;
  ~FsWriter();

  const std::string& dir() const { return dir_; }

  // open(O_WRONLY|O_TRUNC) + one write(2) of `value` (sysfs takes a value in
  // one write). Never creates a file: a missing path is ENOENT. Errors name
  // the path and the value, e.g. "write 'on' to /sys/kernel/.../state".
  Result<void> write(std::string_view relpath, std::string_view value) const;

  void setWriteLog(std::shared_ptr<WriteLog> log) { log_ = std::move(log); }

 private:
  FsWriter(int fd, std::string dir) : fd_(fd), dir_(std::move(dir)) {}

  int fd_ = -1;
  std::string dir_;
  std::shared_ptr<WriteLog> log_;
};

}  // namespace tier
