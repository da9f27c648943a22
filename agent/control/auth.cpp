#include "control/auth.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace tierd::control {
namespace {

std::string_view skipBlanks(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
    text.remove_prefix(1);
  return text;
}

// The value after "Name:" on its line of /proc/PID/status.
std::optional<std::string_view> statusField(std::string_view status, std::string_view name) {
  size_t pos = 0;
  while (pos < status.size()) {
    size_t end = status.find('\n', pos);
    if (end == std::string_view::npos) end = status.size();
    std::string_view line = status.substr(pos, end - pos);
    if (line.size() > name.size() && line.substr(0, name.size()) == name &&
        line[name.size()] == ':')
      return skipBlanks(line.substr(name.size() + 1));
    pos = end + 1;
  }
  return std::nullopt;
}

// Reads one unsigned number from the front of `text` and drops it.
template <typename T>
std::optional<T> takeNumber(std::string_view& text, int base) {
  text = skipBlanks(text);
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  text.remove_prefix(static_cast<size_t>(end - text.data()));
  return value;
}

// A process that may have exited, for requests that name one.
std::optional<pid_t> targetOf(const Request& request) {
  return std::visit(
      [](const auto& r) -> std::optional<pid_t> {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, PsRequest>)
          return r.pid;
        else if constexpr (std::is_same_v<T, MigrateRequest> || std::is_same_v<T, PinRequest> ||
                           std::is_same_v<T, UnpinRequest> || std::is_same_v<T, RegisterRequest> ||
                           std::is_same_v<T, HintRequest>)
          return r.pid;
        else
          return std::nullopt;
      },
      request);
}

}  // namespace

tier::Result<ProcessIdentity> readProcessIdentity(pid_t pid, const tier::FsRoot& proc) {
  std::string path = fmt::format("{}/status", pid);
  auto status = proc.readFile(path);
  if (!status) {
    int err = status.error().errnum;
    if (err == ENOENT || err == ESRCH) return tier::fail(ESRCH, fmt::format("process {}", pid));
    return std::unexpected(tier::wrap(status.error(), fmt::format("process {}", pid)));
  }
  auto malformed = [&] {
    return tier::fail(EIO, fmt::format("process {}: no \"Uid:\" line in {}", pid,
                                       tier::joinPath(proc.dir(), path)));
  };
  auto uids = statusField(*status, "Uid");
  if (!uids) return malformed();
  ProcessIdentity identity;
  auto real = takeNumber<uid_t>(*uids, 10);
  auto effective = takeNumber<uid_t>(*uids, 10);
  if (!real || !effective) return malformed();
  identity.real_uid = *real;
  identity.effective_uid = *effective;
  if (auto caps = statusField(*status, "CapEff")) {
    if (auto value = takeNumber<uint64_t>(*caps, 16)) identity.cap_effective = *value;
  }
  return identity;
}

Caller callerFromCredentials(pid_t pid, uid_t uid, gid_t gid, const tier::FsRoot& proc) {
  Caller caller{.pid = pid, .uid = uid, .gid = gid, .privileged = uid == 0};
  if (!caller.privileged && pid > 0) {
    auto identity = readProcessIdentity(pid, proc);
    caller.privileged = identity && identity->effective_uid == uid &&
                        (identity->cap_effective >> kCapSysNice & 1) != 0;
  }
  return caller;
}

tier::Result<void> authorize(const Caller& caller, const Request& request,
                             const tier::FsRoot& proc) {
  if (std::holds_alternative<ConfigReloadRequest>(request)) {
    if (caller.privileged) return {};
    return tier::fail(
        EPERM,
        fmt::format("config-reload needs root or CAP_SYS_NICE (you are uid {})", caller.uid));
  }
  std::optional<pid_t> target = targetOf(request);
  if (!target) return {};  // status, config-show, ps of everything
  // Even privileged callers get ESRCH now rather than a handler error later.
  auto identity = readProcessIdentity(*target, proc);
  if (!identity) {
    if (identity.error().errnum == ESRCH)
      return tier::fail(ESRCH, fmt::format("process {} does not exist", *target));
    if (caller.privileged) return {};  // the handler will meet the same error and report it
    return std::unexpected(identity.error());
  }
  if (caller.privileged) return {};
  // A library speaks for its own process only: another process of the same
  // user must not rewrite its registration or move its pages by hint.
  bool own_process_only =
      std::holds_alternative<RegisterRequest>(request) || std::holds_alternative<HintRequest>(request);
  if (own_process_only && *target != caller.pid)
    return tier::fail(EPERM, fmt::format("{} names process {}, but only process {} itself (or root "
                                         "or CAP_SYS_NICE) may send it",
                                         requestName(request), *target, *target));
  if (identity->real_uid == caller.uid) return {};
  return tier::fail(EPERM, fmt::format("process {} belongs to uid {}, not to you (uid {})", *target,
                                       identity->real_uid, caller.uid));
}

}  // namespace tierd::control
