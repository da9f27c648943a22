#include "workloads/proc_parsers.h"

#include <fmt/format.h>

#include <array>
#include <charconv>
#include <optional>

#include "parse/parsers.h"

namespace tierd::workloads {
namespace {

using tier::fail;

std::string quoted(std::string_view text) {
  constexpr size_t kMaxShown = 60;
  std::string shown;
  for (char c : text.substr(0, kMaxShown)) {
    if (c == '\n') {
      shown += "\\n";
    } else if (c == '\0') {
      shown += "\\0";
    } else {
      shown += c;
    }
  }
  if (text.size() > kMaxShown) shown += "...";
  return "'" + shown + "'";
}

// A whole token of decimal digits (an optional '-' for signed types).
template <typename Int>
std::optional<Int> decimal(std::string_view token) {
  Int value{};
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value, 10);
  if (token.empty() || ec != std::errc() || end != token.data() + token.size()) return std::nullopt;
  return value;
}

std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = text.find_first_not_of(" \t\n");
  while (pos != std::string_view::npos) {
    size_t end = text.find_first_of(" \t\n", pos);
    if (end == std::string_view::npos) end = text.size();
    out.push_back(text.substr(pos, end - pos));
    pos = text.find_first_not_of(" \t\n", end);
  }
  return out;
}

// Calls fn(line, number) for each line (1-based), without the '\n'.
template <typename Fn>
tier::Result<void> forEachLine(std::string_view text, Fn&& fn) {
  int number = 0;
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++number;
    if (auto ok = fn(line, number); !ok) return ok;
  }
  return {};
}

}  // namespace

tier::Result<ProcStat> parseProcStat(std::string_view text) {
  size_t open = text.find('(');
  if (open == std::string_view::npos)
    return fail(EINVAL, "stat: no '(' before the comm in " + quoted(text));
  size_t close = text.rfind(')');
  if (close == std::string_view::npos || close < open)
    return fail(EINVAL, "stat: no ')' after the comm in " + quoted(text));

  ProcStat stat;
  std::string_view pid_text = tier::trim(text.substr(0, open));
  auto pid = decimal<pid_t>(pid_text);
  if (!pid || *pid <= 0)
    return fail(EINVAL, "stat: field 1 (pid) is not a pid: " + quoted(pid_text));
  stat.pid = *pid;
  stat.comm = std::string(text.substr(open + 1, close - open - 1));

  // Fields 3 onwards; index i holds field i + 3.
  auto fields = words(text.substr(close + 1));
  constexpr size_t kNeeded = 22 - 3 + 1;
  if (fields.size() < kNeeded)
    return fail(EINVAL,
                fmt::format("stat: {} fields after the comm, need at least {} (to field 22)",
                            fields.size(), kNeeded));
  auto field = [&](int number) { return fields[static_cast<size_t>(number - 3)]; };
  auto bad = [&](int number, std::string_view name) {
    return fail(EINVAL, fmt::format("stat: field {} ({}) is not a number: {}", number, name,
                                    quoted(field(number))));
  };

  if (field(3).size() != 1)
    return fail(EINVAL, "stat: field 3 (state) is not one letter: " + quoted(field(3)));
  stat.state = field(3).front();
  auto ppid = decimal<pid_t>(field(4));
  if (!ppid || *ppid < 0)
    return fail(EINVAL, "stat: field 4 (ppid) is not a pid: " + quoted(field(4)));
  stat.ppid = *ppid;
  auto flags = decimal<uint64_t>(field(9));
  if (!flags) return bad(9, "flags");
  stat.flags = *flags;
  auto start = decimal<uint64_t>(field(22));
  if (!start) return bad(22, "starttime");
  stat.start_time = *start;
  return stat;
}

tier::Result<ProcStatus> parseProcStatus(std::string_view text) {
  ProcStatus status;
  bool have_uid = false, have_cap = false;
  auto ok = forEachLine(text, [&](std::string_view line, int number) -> tier::Result<void> {
    if (line.starts_with("Uid:")) {
      auto ids = words(line.substr(4));
      std::optional<uid_t> real, effective;
      if (ids.size() == 4) {
        real = decimal<uid_t>(ids[0]);
        effective = decimal<uid_t>(ids[1]);
      }
      if (!real || !effective)
        return fail(EINVAL, fmt::format("status line {}: not 'Uid: real effective saved fs': {}",
                                        number, quoted(line)));
      status.uid = *real;
      status.euid = *effective;
      have_uid = true;
    } else if (line.starts_with("CapEff:")) {
      std::string_view hex = tier::trim(line.substr(7));
      uint64_t value = 0;
      auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), value, 16);
      if (hex.empty() || hex.size() > 16 || ec != std::errc() || end != hex.data() + hex.size())
        return fail(EINVAL, fmt::format("status line {}: CapEff is not a 64-bit hex mask: {}",
                                        number, quoted(line)));
      status.cap_eff = value;
      have_cap = true;
    }
    return {};
  });
  if (!ok) return std::unexpected(ok.error());
  if (!have_uid) return fail(EINVAL, "status: no 'Uid:' line");
  if (!have_cap) return fail(EINVAL, "status: no 'CapEff:' line");
  return status;
}

tier::Result<std::string> parseProcCgroup(std::string_view text) {
  std::optional<std::string> v2;
  auto ok = forEachLine(text, [&](std::string_view line, int number) -> tier::Result<void> {
    if (tier::trim(line).empty()) return {};
    // "hierarchy-ID:controller-list:cgroup-path"; the path itself may hold ':'.
    size_t first = line.find(':');
    size_t second = first == std::string_view::npos ? first : line.find(':', first + 1);
    auto id = decimal<unsigned>(line.substr(0, first));
    if (second == std::string_view::npos || !id)
      return fail(EINVAL, fmt::format("cgroup line {}: not 'id:controllers:path': {}", number,
                                      quoted(line)));
    std::string_view path = line.substr(second + 1);
    if (!path.starts_with('/'))
      return fail(EINVAL,
                  fmt::format("cgroup line {}: path is not absolute: {}", number, quoted(line)));
    if (*id != 0 || second != first + 1) return {};  // a v1 hierarchy
    if (v2)
      return fail(EINVAL,
                  fmt::format("cgroup line {}: a second '0::' line: {}", number, quoted(line)));
    v2 = std::string(path);
    return {};
  });
  if (!ok) return std::unexpected(ok.error());
  return v2.value_or(std::string());
}

std::vector<std::string> parseCmdline(std::string_view text) {
  std::vector<std::string> args;
  if (!text.empty() && text.back() == '\0') text.remove_suffix(1);
  if (text.empty()) return args;
  for (;;) {
    size_t end = text.find('\0');
    args.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return args;
}

tier::Result<std::vector<pid_t>> parseCgroupProcs(std::string_view text) {
  std::vector<pid_t> pids;
  auto ok = forEachLine(text, [&](std::string_view line, int number) -> tier::Result<void> {
    std::string_view token = tier::trim(line);
    if (token.empty()) return {};
    auto pid = decimal<pid_t>(token);
    if (!pid || *pid <= 0)
      return fail(EINVAL, fmt::format("cgroup.procs line {}: not a pid: {}", number, quoted(line)));
    pids.push_back(*pid);
    return {};
  });
  if (!ok) return std::unexpected(ok.error());
  return pids;
}

}  // namespace tierd::workloads
