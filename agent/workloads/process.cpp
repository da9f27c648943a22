#include "workloads/process.h"

#include <fmt/format.h>

#include <cerrno>

namespace tierd::workloads {
namespace {

std::string context(pid_t pid) {
  return fmt::format("read process {}", pid);
}

// A file of a process that has gone: its directory is missing (ENOENT), or it
// was reaped while open (ESRCH).
bool gone(const tier::Error& error) {
  return error.errnum == ENOENT || error.errnum == ESRCH;
}

tier::Error wrapped(tier::Error error, pid_t pid) {
  if (gone(error)) return tier::Error{ESRCH, context(pid)};
  return tier::wrap(std::move(error), context(pid));
}

tier::Result<std::string> readPidFile(const tier::FsRoot& proc, pid_t pid, const char* name) {
  auto text = proc.readFile(fmt::format("{}/{}", pid, name));
  if (!text) return std::unexpected(wrapped(text.error(), pid));
  return text;
}

template <typename T>
tier::Result<T> parsed(tier::Result<T> value, pid_t pid, const char* name) {
  if (!value)
    return std::unexpected(
        tier::wrap(value.error(), fmt::format("{}: {}/{}", context(pid), pid, name)));
  return value;
}

}  // namespace

std::string describe(const ProcessKey& key) {
  return fmt::format("pid {} (start {})", key.pid, key.start_time);
}

tier::Result<ProcStat> readStat(const tier::FsRoot& proc, pid_t pid) {
  auto text = readPidFile(proc, pid, "stat");
  if (!text) return std::unexpected(text.error());
  auto stat = parsed(parseProcStat(*text), pid, "stat");
  if (stat && stat->pid != pid)
    return tier::fail(EINVAL,
                      fmt::format("{}: {}/stat names pid {}", context(pid), pid, stat->pid));
  return stat;
}

tier::Result<std::string> readCgroup(const tier::FsRoot& proc, pid_t pid) {
  auto text = proc.readFile(fmt::format("{}/cgroup", pid));
  if (!text) {
    // A kernel without cgroups has no such file; a gone process is caught by
    // the caller's next read.
    if (text.error().errnum == ENOENT) return std::string();
    return std::unexpected(wrapped(text.error(), pid));
  }
  return parsed(parseProcCgroup(*text), pid, "cgroup");
}

std::string readExe(const tier::FsRoot& proc, pid_t pid) {
  return proc.readLink(fmt::format("{}/exe", pid)).value_or(std::string());
}

tier::Result<ProcessInfo> completeProcess(const tier::FsRoot& proc, const ProcStat& stat,
                                          std::optional<std::string> exe,
                                          std::optional<std::string> cgroup) {
  const pid_t pid = stat.pid;
  ProcessInfo info;
  info.key = {pid, stat.start_time};
  info.ppid = stat.ppid;
  info.comm = stat.comm;

  auto status_text = readPidFile(proc, pid, "status");
  if (!status_text) return std::unexpected(status_text.error());
  auto status = parsed(parseProcStatus(*status_text), pid, "status");
  if (!status) return std::unexpected(status.error());
  info.uid = status->uid;
  info.euid = status->euid;

  if (!cgroup) {
    auto read = readCgroup(proc, pid);
    if (!read) return std::unexpected(read.error());
    cgroup = std::move(*read);
  }
  info.cgroup = std::move(*cgroup);

  auto cmdline = readPidFile(proc, pid, "cmdline");
  if (!cmdline) return std::unexpected(cmdline.error());
  info.cmdline = parseCmdline(*cmdline);
  info.kernel_thread = stat.kernelThread() || info.cmdline.empty();

  info.exe = exe ? std::move(*exe) : readExe(proc, pid);

  // Everything above must describe the process whose stat we parsed.
  auto again = readStat(proc, pid);
  if (!again) return std::unexpected(again.error());
  if (again->start_time != stat.start_time) return tier::fail(ESRCH, context(pid));
  return info;
}

tier::Result<ProcessInfo> readProcess(const tier::FsRoot& proc, pid_t pid) {
  auto stat = readStat(proc, pid);
  if (!stat) return std::unexpected(stat.error());
  return completeProcess(proc, *stat, std::nullopt, std::nullopt);
}

}  // namespace tierd::workloads
